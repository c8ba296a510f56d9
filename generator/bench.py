"""`make bench`: the seed's loop and the batched engine, side by side in one process.

On the same filters (8 from the last conv layer of every block by default),
same seeds and steps, it times the seed's eager loop one filter at a time and
the engine one batch per layer, counts the FLOPs the engine performs, measures
this machine's convolution peak on the spot, and compares bfloat16 pictures
with float32 ones. Then, for the default method, each view of a unit page
(channel, neuron, negative, diversity) on the same layers: seconds per picture,
the fraction of the peak, and the full atlas's time for the default and for
`--views unit`. Prints tables and writes bench.json.
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

from .description import describe
from .optvis.methods import DEFAULT_METHOD, METHODS
from .optvis.views import DEFAULT_VIEWS, VIEW_NAMES, make_view, parse_views
from .imaging import filter_seed, to_uint8
from .errors import AtlasError
from .networks import ConvLayer, folds_batchnorm, load_model, model_source
from .settings import Settings
from .tf_quiet import import_keras

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "imagenet-samples"
PHOTOS = REPO / "data" / "photos"


def conv_flops_per_step(submodel) -> float:
    """FLOPs of one ascent step: the forward pass plus the gradient with respect
    to the input, which costs a convolution of the same size per layer. Each
    kernel weight is one multiply-add per output position (depthwise and
    separable kernels included)."""
    from .networks.units import conv_kind

    forward = 0.0
    for layer in submodel.layers:
        if conv_kind(layer):
            _, h, w, _ = layer.output.shape
            kernels = sum(int(np.prod(v.shape)) for v in layer.weights if len(v.shape) == 4)
            forward += 2.0 * h * w * kernels
    return 2.0 * forward


def described_layers(net) -> list[ConvLayer]:
    return [ConvLayer(**layer) for layer in describe(net)["layers"]]


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


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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


def preprocess_mode(net, model: str) -> str:
    """The network's preprocessing: a built-in network's own, else guessed from the model file."""
    from .networks import builtin_spec, guess_preprocess, is_model_file

    return guess_preprocess(net)[0] if is_model_file(model) else builtin_spec(model).preprocess


def time_views(net, layers, precision, args) -> list[dict]:
    """Each view of the default method on the sampled layers, `--filters` filters at once."""
    from .optvis.engine import LayerEngine

    if not args.views:
        return []
    method = METHODS[DEFAULT_METHOD].with_steps(args.view_steps)
    preprocess = preprocess_mode(net, args.model)
    rows = []
    for layer in layers:
        for name in args.views:
            shown = make_view(name)
            engine = LayerEngine(net, layer.name, precision, shown.render_method(method), preprocess, shown.objective,
                                 fold=folds_batchnorm(net))
            # at most one build batch (a group's pictures count against it, as in build)
            filters = list(range(min(args.filters, layer.filters, max(1, engine.batch_size // engine.group))))
            rows.append(time_view(engine, layer, name, filters, args.seed))
            print(f"{layer.name} {name}: {rows[-1]['s_per_picture']:.3f} s/picture", flush=True)
    return rows


def time_view(engine, layer, view: str, filters, seed) -> dict:
    """One view's pictures for `filters`, compiled first: seconds, FLOPs and their rate."""
    starts = engine.start([filter_seed(seed, layer.name, f, member) for f in filters for member in range(engine.group)])
    engine.run(starts, filters, 1, seed)  # trace and compile outside the timing
    s_per_filter = timed(lambda: engine.run(starts, filters, seed=seed)) / len(filters)
    share = area_share(engine.window, engine.input_shape[:2])
    steps = render_steps(engine)
    gflop = conv_flops_per_step(engine.submodel) * share * steps / 1e9
    return {
        "view": view, "layer": layer.name, "block": layer.block, "filters": len(filters),
        "group": engine.group, "steps": engine.method.steps, "render_steps": steps, "area_share": share,
        "s_per_filter": s_per_filter, "s_per_picture": s_per_filter / engine.group,
        "gflop_per_picture": gflop, "gflops": gflop * engine.group / s_per_filter,
    }


def area_share(window, input_size) -> float:
    """The share of the input's area a view's steps run on: its window's (the
    neuron's receptive field), else all of it. A conv net's FLOPs scale with
    its input's area (every feature map does), so a step on a part of the
    input costs that part's share of a step on the whole."""
    if window is None:
        return 1.0
    rows, cols = window
    return (rows.stop - rows.start) * (cols.stop - cols.start) / (input_size[0] * input_size[1])


def render_steps(engine) -> float:
    """The engine's steps counted at the size it renders at: a step of a stage
    at a smaller size (coarse steps) counts as its share of that area."""
    height, width = engine.render_shape[:2]
    steps, total, start = engine.method.steps, 0.0, 0
    for end, _, (h, w) in engine.stages():
        stop = steps if end is None else min(end, steps)
        total += max(0, stop - start) * h * w / (height * width)
        start = max(start, stop)
    return total


def summarize_views(rows, net, peak: float) -> dict:
    """The views' rows with their fraction of the conv peak, each view over the
    whole sample, and the full atlas's seconds for the default and for `--views unit`."""
    for row in rows:
        row["fraction_of_peak"] = row["gflops"] / peak
    names = list(dict.fromkeys(row["view"] for row in rows))
    per_view_s = estimate_views_atlas(net, rows)
    estimates = {}
    for label, views in (("default", DEFAULT_VIEWS), ("unit", VIEW_NAMES)):
        if all(view in per_view_s for view in views):  # only views that were measured
            seconds = sum(per_view_s[view] for view in views)
            estimates[label] = {"views": list(views), "seconds": seconds, "hours": seconds / 3600}
    return {
        "method": DEFAULT_METHOD,
        "steps": rows[0]["steps"],
        "peak_conv_gflops": peak,
        "per_view": {name: sample_totals([r for r in rows if r["view"] == name], peak) for name in names},
        "layers": rows,
        "full_atlas_estimate_s_per_view": per_view_s,
        "full_atlas_estimate": estimates,
    }


def sample_totals(rows, peak: float) -> dict:
    """One view over all its sampled filters."""
    seconds = sum(r["s_per_filter"] * r["filters"] for r in rows)
    filters = sum(r["filters"] for r in rows)
    pictures = sum(r["filters"] * r["group"] for r in rows)
    gflop = sum(r["gflop_per_picture"] * r["filters"] * r["group"] for r in rows)
    return {"s_per_picture": seconds / pictures, "s_per_filter": seconds / filters, "gflop_per_picture": gflop / pictures,
            "gflops": gflop / seconds, "fraction_of_peak": gflop / seconds / peak}


def estimate_views_atlas(net, rows) -> dict[str, float]:
    """Seconds per view for every filter of every conv layer, as `estimate_full_atlas`
    does: each layer's FLOPs at the rate the view achieved on the sampled layer of
    its block. A windowed view's window is the layer's own."""
    from .networks import truncated
    from .optvis.window import receptive_window

    sampled = {(r["view"], r["block"]): r for r in rows}
    views = list(dict.fromkeys(r["view"] for r in rows))
    windowed = [v for v in views if METHODS[DEFAULT_METHOD].field_window and make_view(v).objective.local]
    seconds = dict.fromkeys(views, 0.0)
    for layer in described_layers(net):
        submodel = truncated(net, layer.name)
        step_flops = conv_flops_per_step(submodel)
        window = receptive_window(net, layer.name) if windowed else None  # one gradient
        for view in views:
            row = sampled[(view, layer.block)]
            share = area_share(window if view in windowed else None, submodel.input_shape[1:3])
            gflop_per_filter = step_flops * share * row["render_steps"] * row["group"] / 1e9
            seconds[view] += layer.filters * gflop_per_filter / row["gflops"]
    return seconds


def print_views(views: dict) -> None:
    print(f"\nviews of the default method ({views['method']}, {views['steps']} steps), "
          f"against the {views['peak_conv_gflops']:.0f} GFLOP/s conv peak:")
    print(f"{'layer':24s} {'view':10s} {'s/picture':>10s} {'s/filter':>10s} {'GFLOP/picture':>14s} {'of peak':>8s}")
    totals = [dict(sample, layer="(all sampled)", view=name) for name, sample in views["per_view"].items()]
    for r in views["layers"] + totals:
        print(f"{r['layer']:24s} {r['view']:10s} {r['s_per_picture']:10.4g} {r['s_per_filter']:10.4g} "
              f"{r['gflop_per_picture']:14.4g} {r['fraction_of_peak']:8.2%}")
    for label, estimate in views["full_atlas_estimate"].items():
        print(f"full atlas, {label} ({', '.join(estimate['views'])}): "
              f"{estimate['seconds']:.5g} s = {estimate['hours']:.3g} h")


def selected_views(spec: str) -> tuple[str, ...]:
    """--views: unit (every view), names like channel,neuron, or none."""
    if spec == "none":
        return ()
    try:
        return parse_views(spec)
    except AtlasError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
