"""`make bench`: the seed's loop and the batched engine, side by side in one process.

On the same filters (8 from the last conv layer of every block by default),
same seeds and steps, it times the seed's eager loop one filter at a time and
the engine one batch per layer, counts the FLOPs the engine performs, measures
this machine's convolution peak on the spot, and compares bfloat16 pictures
with float32 ones. Then, for the default method, each view of a unit page
(channel, neuron, negative, diversity) on the same layers: seconds per picture,
the fraction of the peak, and the full atlas's time for the default and for
`--views unit` (timed in bench_views.py). Prints tables and writes bench.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .bench_views import (conv_flops_per_step, described_layers, preprocess_mode, print_views, selected_views,
                          summarize_views, time_views, timed)
from .optvis.methods import DEFAULT_METHOD, METHODS
from .imaging import filter_seed, to_uint8
from .networks import load_model, model_source
from .settings import Settings
from .tf_quiet import import_keras

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "imagenet-samples"
PHOTOS = REPO / "data" / "photos"


def time_seed_loop(net, layer, filters, iters, seed) -> tuple[float, dict]:
    from .optvis.seed_loop import visualize_filter

    visualize_filter(net, layer, filters[0], iters=1, seed=seed, log=None)  # warm up
    results = {}
    start = time.perf_counter()
    for f in filters:
        image, _, activation = visualize_filter(net, layer, f, iters=iters, seed=seed, log=None)
        results[f] = (image, activation)
    return time.perf_counter() - start, results


def time_engine(engine, layer, filters, iters, seed) -> tuple[float, np.ndarray, np.ndarray]:
    starts = engine.start([filter_seed(seed, layer, f) for f in filters])
    engine.run(starts, filters, 1, seed)  # trace and compile outside the timing
    start = time.perf_counter()
    _, images, activations = engine.run(starts, filters, iters, seed)
    return time.perf_counter() - start, images, activations


def measure_conv_peak(precision: str, repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution (VGG's block3 shape), best of `repeats`."""
    import_keras()
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    x = tf.cast(tf.random.uniform((64, 24, 24, 256)), dtype)
    k = tf.cast(tf.random.uniform((3, 3, 256, 256)), dtype)
    conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    conv(x, k).numpy()
    best = min(timed(lambda: conv(x, k).numpy()) for _ in range(repeats))
    flops = 2.0 * 64 * 24 * 24 * 3 * 3 * 256 * 256
    return flops / best / 1e9



def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def relative_change(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def run(args) -> dict:
    from .optvis.engine import LayerEngine
    from .precision import model_precision

    net = load_model(args.model, model_source(args.model, args.weights))
    precision = model_precision(net) if args.precision == "auto" else args.precision
    layers = {layer.block: layer for layer in described_layers(net)}.values()  # last of each block
    rows, side_by_side = [], []
    for layer in layers:
        filters = list(range(min(args.filters, layer.filters)))  # a model file's layer may have fewer
        seed_s, seed_results = time_seed_loop(net, layer.name, filters, args.iters, args.seed)
        engine = LayerEngine(net, layer.name, precision)
        engine_s, images, acts = time_engine(engine, layer.name, filters, args.iters, args.seed)
        full = list(range(min(engine.batch_size, layer.filters)))
        full_s, _, _ = time_engine(engine, layer.name, full, args.iters, args.seed)
        flops = conv_flops_per_step(engine.submodel) * args.iters
        row = {
            "layer": layer.name,
            "block": layer.block,
            "filters": len(filters),
            "seed_s_per_filter": seed_s / len(filters),
            "engine_s_per_filter": engine_s / len(filters),
            "engine_full_batch": len(full),
            "engine_full_batch_s_per_filter": full_s / len(full),
            "gflop_per_filter": flops / 1e9,
            "activation_change_vs_seed": [
                relative_change(seed_results[f][1], float(a)) for f, a in zip(filters, acts)
            ],
        }
        if precision != "float32":
            _, f32_images, f32_acts = time_engine(
                LayerEngine(net, layer.name, "float32"), layer.name, filters, args.iters, args.seed
            )
            row["bf16_activation_change_vs_float32"] = [
                relative_change(float(a32), float(a)) for a32, a in zip(f32_acts, acts)
            ]
            side_by_side.append((layer.name, [seed_results[f][0] for f in filters[:4]], f32_images[:4], images[:4]))
        rows.append(row)
        print(f"{layer.name}: seed {row['seed_s_per_filter']:.3f} s/filter, engine "
              f"{row['engine_s_per_filter']:.3f} s/filter ({len(filters)} at once), "
              f"{row['engine_full_batch_s_per_filter']:.3f} s/filter ({len(full)} at once)", flush=True)

    view_rows = time_views(net, layers, precision, args)
    report = summarize(rows, net, precision, args, view_rows)
    if side_by_side:
        write_contact_sheet(side_by_side, Path(args.sheet))
        report["precision_sheet"] = args.sheet
    return report


def summarize(rows, net, precision, args, view_rows=()) -> dict:
    seed_time = sum(r["seed_s_per_filter"] * r["filters"] for r in rows)
    engine_time = sum(r["engine_s_per_filter"] * r["filters"] for r in rows)
    count = sum(r["filters"] for r in rows)
    sample_flops = sum(r["gflop_per_filter"] * r["filters"] for r in rows)
    full_rate = {r["layer"]: r["gflop_per_filter"] / r["engine_full_batch_s_per_filter"] for r in rows}
    report = {
        "precision": precision,
        "iters": args.iters,
        "sample": {r["layer"]: r["filters"] for r in rows},
        "seed_filters_per_s": count / seed_time,
        "engine_filters_per_s": count / engine_time,
        "speedup": seed_time / engine_time,
        "engine_gflops": sample_flops / engine_time,
        "engine_full_batch_gflops": statistics.median(full_rate.values()),
        "peak_conv_gflops": measure_conv_peak(precision),
        "peak_conv_gflops_float32": measure_conv_peak("float32") if precision != "float32" else None,
        "full_atlas_estimate_s": estimate_full_atlas(net, rows, args.iters),
        "median_activation_change_vs_seed": statistics.median(
            c for r in rows for c in r["activation_change_vs_seed"]
        ),
        "layers": rows,
    }
    if precision != "float32":
        changes = [c for r in rows for c in r["bf16_activation_change_vs_float32"]]
        report["bf16_vs_float32_activation_change"] = {
            "median": statistics.median(changes), "max": max(changes),
        }
    if args.example_images:
        report["examples"] = time_examples(net, args)
        float32_peak = report["peak_conv_gflops_float32"] or report["peak_conv_gflops"]
        report["examples"]["fraction_of_float32_peak"] = report["examples"]["gflops"] / float32_peak
    if view_rows:
        report["views"] = summarize_views(view_rows, net, report["peak_conv_gflops"])
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def time_examples(net, args) -> dict:
    """The dataset-examples pass over `--example-images` photos, every conv
    layer at once (forward passes only, float32): photos per second, GFLOP/s."""
    import tempfile

    from .networks import forward_flops
    from .examples.scan import collect
    from .photos import find_photos

    photos = find_photos(Path(args.images))[: args.example_images]
    flops = forward_flops(net)
    names = list(flops)
    preprocess = preprocess_mode(net, args.model)
    with tempfile.TemporaryDirectory() as tmp:
        collect(lambda: net, names, photos[:8], net.input_shape[1:], preprocess, 9, Path(tmp) / "warm.npz",
                progress=False)  # trace and compile outside the timing
        start = time.perf_counter()
        collect(lambda: net, names, photos, net.input_shape[1:], preprocess, 9, Path(tmp) / "run.npz", progress=False)
        seconds = time.perf_counter() - start
    gflop = max(flops.values()) / 1e9 * len(photos)  # the forward pass through every conv layer
    return {"photos": len(photos), "seconds": seconds, "photos_per_s": len(photos) / seconds,
            "gflops": gflop / seconds, "layers": len(names), "folder": str(args.images)}


def estimate_full_atlas(net, rows, iters) -> float:
    """Seconds for every filter: each layer's FLOPs at the full-batch rate of the
    sampled layer of its block (whatever the block is called: VGG's block3,
    MobileNet's stage2, ResNet's conv2_block1)."""
    from .networks import truncated

    rate = {r["block"]: r["gflop_per_filter"] / r["engine_full_batch_s_per_filter"] for r in rows}
    total = 0.0
    for layer in described_layers(net):
        gflop = conv_flops_per_step(truncated(net, layer.name)) * iters / 1e9
        total += layer.filters * gflop / rate[layer.block]
    return total


def write_contact_sheet(side_by_side, path: Path) -> None:
    """Rows: layers and filters; columns: seed loop (float32) | engine float32 | engine bfloat16."""
    from PIL import Image

    tiles = []
    for _, seed_imgs, f32_imgs, bf16_imgs in side_by_side:
        for a, b, c in zip(seed_imgs, f32_imgs, bf16_imgs):
            gap = pad(height=to_uint8(a).shape[0])
            tiles.append(np.concatenate([to_uint8(a), gap, to_uint8(b), gap, to_uint8(c)], axis=1))
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)


def pad(width: int = 4, height: int = 96) -> np.ndarray:
    """A white gap between pictures of `height` pixels (the network's input height)."""
    return np.full((height, width, 3), 255, np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m generator.bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--weights", default=None)
    p.add_argument("--filters", type=int, default=8, help="filters per sampled layer (default: 8)")
    p.add_argument("--iters", type=int, default=METHODS["seed"].steps)
    p.add_argument("--seed", type=int, default=Settings.seed)
    p.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    p.add_argument("--images", default=str(DEFAULT_IMAGES if DEFAULT_IMAGES.is_dir() else PHOTOS),
                   help="photos for the dataset-examples pass (default: %(default)s)")
    p.add_argument("--example-images", type=int, default=256,
                   help="photos the examples pass is timed on (default: 256; 0: skip it)")
    p.add_argument("--views", type=selected_views, default="unit",
                   help="views of the default method timed on the sampled layers: unit (all of them), "
                   "names like channel,neuron, or none (default: %(default)s)")
    p.add_argument("--view-steps", type=int, default=None,
                   help=f"steps of each view's pictures (default: the method's, {METHODS[DEFAULT_METHOD].steps})")
    p.add_argument("--out", default="bench.json")
    p.add_argument("--sheet", default="bench-precision.png")
    args = p.parse_args(argv)
    if args.view_steps is not None and args.view_steps < 1:
        p.error(f"--view-steps must be at least 1, got {args.view_steps}")
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=1))
    for key in ("precision", "seed_filters_per_s", "engine_filters_per_s", "speedup", "engine_gflops",
                "engine_full_batch_gflops", "peak_conv_gflops", "peak_conv_gflops_float32",
                "full_atlas_estimate_s", "median_activation_change_vs_seed",
                "bf16_vs_float32_activation_change", "examples", "peak_rss_mb"):
        if key in report:
            value = report[key]
            print(f"{key:36s} {value:.3f}" if isinstance(value, float) else f"{key:36s} {value}")
    if "views" in report:
        print_views(report["views"])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
