"""`make quality`: how good each method's pictures are, measured.

For a fixed sample of filters from every conv layer, each method's final
picture (the PNG a user sees) is scored by

(a) robustness: the filter's mean activation over randomly jittered, scaled
    and rotated copies of the picture, fed through the network's own
    preprocessing, divided by the filter's largest mean activation over a few
    natural photographs (data/photos/) — above 1 means the picture excites the
    filter more than any of the photos, even when moved about;
(b) high-frequency power: the fraction of the picture's spectral power above
    half the Nyquist frequency (pixel noise scores high, smooth images low).

Prints a table per layer and writes quality.json and a contact sheet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from .build import DEFAULT_CACHE_DIR, Settings, build
from .cache import Cache
from .imaging import decode_png
from .methods import DEFAULT_METHOD, METHODS
from .networks import network_input
from .networks import load_model, model_source
from .transforms import RandomAffine

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"
SAMPLE_FILTERS = "0,11,23,35,47,59"  # fixed, and valid in every VGG16 layer
SCORING_WARP = RandomAffine(jitter=8.0, scale=(0.9, 1.1), degrees=10.0)


def load_photos(size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    paths = sorted(PHOTOS.glob("*.png"))
    return np.stack([
        np.asarray(Image.open(p).convert("RGB").resize(size[::-1], Image.BILINEAR), np.float32) / 255.0
        for p in paths
    ])


def filter_means(submodel, images, filters) -> np.ndarray:
    acts = np.asarray(submodel(images))  # (n, h, w, channels)
    return acts.mean(axis=(1, 2))[:, filters]  # (n, len(filters))


def robust_activation(submodel, picture01: np.ndarray, index: int, copies: int, preprocess: str) -> float:
    import tensorflow as tf

    batch = tf.constant(np.repeat(picture01[None], copies, axis=0), tf.float32)
    moved = np.concatenate([SCORING_WARP(batch[k : k + 1], k, 12345).numpy() for k in range(copies)])
    return float(filter_means(submodel, network_input(moved, preprocess), [index]).mean())


def high_frequency_fraction(picture01: np.ndarray) -> float:
    gray = picture01.mean(axis=-1)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy = np.fft.fftfreq(gray.shape[0])[:, None]
    fx = np.fft.fftfreq(gray.shape[1])[None, :]
    radius = np.sqrt(fx * fx + fy * fy)  # cycles per pixel; Nyquist is 0.5
    total = power.sum()
    return float(power[radius > 0.25].sum() / total) if total > 0 else 0.0


def run(args) -> dict:
    from .networks import truncated

    methods = [m.strip() for m in args.methods.split(",")]
    settings = Settings(model=args.model, weights=args.weights, methods=tuple(methods), seed=args.seed)
    record = build(settings, Path(args.cache_dir), filters=args.filters, progress=not args.quiet,
                   write_record=False)
    cache = Cache(Path(args.cache_dir))
    net = load_model(args.model, model_source(args.model, args.weights))
    photos = load_photos(tuple(record["input_shape"][:2]))
    preprocess = record["preprocess"]["mode"]
    default = methods[0]
    report = {"weights": record["weights"], "methods": methods, "default": default,
              "copies": args.copies, "photos": [p.name for p in sorted(PHOTOS.glob("*.png"))], "layers": {}}
    sheet_rows = []
    for layer in record["layers"]:
        submodel = truncated(net, layer["name"])
        indices = [e["index"] for e in layer["entries"]]
        natural = filter_means(submodel, network_input(photos, preprocess), indices).max(axis=0)
        scores = {m: {"robust": [], "high_freq": []} for m in methods}
        pictures = {m: [] for m in methods}
        for entry, natural_max in zip(layer["entries"], natural):
            for img in entry["images"]:
                pixels, _ = decode_png(cache.path(img["key"]).read_bytes())
                picture = pixels.astype(np.float32) / 255.0
                robust = robust_activation(submodel, picture, entry["index"], args.copies, preprocess)
                scores[img["method"]]["robust"].append(robust / max(float(natural_max), 1e-6))
                scores[img["method"]]["high_freq"].append(high_frequency_fraction(picture))
                pictures[img["method"]].append(pixels)
        summary = {m: {"median_robust": statistics.median(s["robust"]),
                       "median_high_freq": statistics.median(s["high_freq"]),
                       "robust": s["robust"], "high_freq": s["high_freq"]} for m, s in scores.items()}
        if "seed" in scores and default != "seed":
            summary.update(default_wins(scores[default], scores["seed"]))
        report["layers"][layer["name"]] = summary
        print_layer(layer["name"], summary, methods)
        if layer["name"].endswith("_conv1"):
            sheet_rows.append((layer["name"], pictures))
    report["blocks_3_to_5"] = overall(report, default, ("block3", "block4", "block5"))
    write_sheet(sheet_rows, methods, Path(args.sheet))
    return report


def default_wins(default: dict, seed: dict) -> dict:
    """On the same filters, how often the default's picture is more robust than
    seed's, and how often it has less high-frequency power."""
    robust = [d > s for d, s in zip(default["robust"], seed["robust"])]
    smoother = [d < s for d, s in zip(default["high_freq"], seed["high_freq"])]
    return {"default_beats_seed_robust": sum(robust) / len(robust),
            "default_less_high_freq": sum(smoother) / len(smoother)}


def overall(report: dict, default: str, blocks) -> dict:
    """Across the sampled filters of the given blocks: how often the default wins."""
    layers = [layer for name, layer in report["layers"].items()
              if name.split("_")[0] in blocks and "default_beats_seed_robust" in layer]
    if not layers:
        return {}
    pooled = {method: {score: [x for layer in layers for x in layer[method][score]]
                       for score in ("robust", "high_freq")}
              for method in (default, "seed")}
    return {"filters": len(pooled[default]["robust"]), **default_wins(pooled[default], pooled["seed"])}


def print_layer(name: str, summary: dict, methods: list[str]) -> None:
    cells = "  ".join(
        f"{m}: robust {summary[m]['median_robust']:8.3f} high-freq {summary[m]['median_high_freq']:.3f}"
        for m in methods
    )
    wins = summary.get("default_beats_seed_robust")
    print(f"{name:14s} {cells}" + (f"  default wins {wins:.0%}" if wins is not None else ""), flush=True)


def write_sheet(rows, methods, path: Path) -> None:
    """One row per method for each sampled layer (the first conv of every block)."""
    from PIL import Image, ImageDraw

    tile, gap, label = 96, 4, 120
    lines = [(name, m, pictures[m]) for name, pictures in rows for m in methods]
    width = label + max(len(p) for _, _, p in lines) * (tile + gap)
    sheet = Image.new("RGB", (width, len(lines) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (name, method, pictures) in enumerate(lines):
        y = row * (tile + gap)
        draw.text((4, y + 40), f"{name}\n{method}", fill="black")
        for col, pixels in enumerate(pictures):
            sheet.paste(Image.fromarray(pixels).resize((tile, tile), Image.NEAREST), (label + col * (tile + gap), y))
    sheet.save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m generator.quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--weights", default=None)
    p.add_argument("--methods", default=",".join([DEFAULT_METHOD] + [m for m in METHODS if m != DEFAULT_METHOD]),
                   help="methods to score; the first is the one compared with seed")
    p.add_argument("--filters", default=SAMPLE_FILTERS, help="filters sampled from every layer")
    p.add_argument("--copies", type=int, default=8, help="transformed copies per picture")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    p.add_argument("--out", default="quality.json")
    p.add_argument("--sheet", default="quality-sheet.png")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=1))
    if report["blocks_3_to_5"]:
        b = report["blocks_3_to_5"]
        print(f"blocks 3-5 ({b['filters']} filters, {report['weights']}): {report['default']} beats seed on "
              f"robust activation for {b['default_beats_seed_robust']:.0%}, has less high-frequency power "
              f"for {b['default_less_high_freq']:.0%}")
    print(f"wrote {args.out} and {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
