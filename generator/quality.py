"""`make quality`: how good each method's pictures are on a real network, measured.

For a fixed sample of filters of every conv layer (8 by default, drawn with
fixed seeds), each method's final picture (the PNG a user sees) is scored by

(a) activation relative to nature: the unit's mean output before its
    nonlinearity, averaged over randomly jittered, scaled and rotated copies
    of the picture, set against the same quantity for each of a folder of
    photographs (default: ../shared/imagenet-samples/, 1,000 ImageNet photos),
    moved by the same copies' warps, so that both lose the same grey borders:
        score = (picture - natural mean) / (natural max - natural mean)
    1 is as strong as the best photo, 0 an average one. It is defined
    whatever the unit's sign, sparse units included;
(b) high-frequency power: the fraction of the picture's spectral power above
    half the Nyquist frequency (pixel noise scores high, smooth images low).
The measures themselves are in scores.py.

Prints a table per layer and writes quality.json and a contact sheet with
one row per block and method. Pictures come from, and are cached in, the
usual cache, so a second run computes only what is new.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from .build import DEFAULT_CACHE_DIR, build
from .cache import Cache
from .description import open_network
from .errors import AtlasError
from .imaging import decode_png
from .optvis.methods import DEFAULT_METHOD, METHODS
from .networks import truncated
from .photos import find_photos
from .sampling import sample_filters, sample_seed
from .specs import by_module_tail, parse_filters, select_layers
from .scores import high_frequency_fraction, natural_stats, relative_to_nature, robust_activation
from .settings import Settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_FILE = REPO.parent / "shared" / "models" / "mobilenet_v1_0.75_224_imagenet.keras"
DEFAULT_IMAGES = REPO.parent / "shared" / "imagenet-samples"


def build_methods(settings: Settings, cache_dir: Path, sample: dict, methods: list[str], quiet: bool) -> dict:
    """Build each method on its own (so its compute time is its own); the records by method."""
    records = {}
    for name in methods:
        records[name] = build(replace(settings, methods=(name,)), cache_dir, filters=sample, progress=not quiet,
                              write_record=False)
    return records


def quality_settings(args) -> Settings:
    """The build settings the arguments give: the model, and the code its file needs to load."""
    custom = str(Path(args.custom_objects).expanduser().resolve()) if args.custom_objects else None
    return Settings(model=args.model, weights=args.weights, seed=args.seed, preprocess=args.preprocess,
                    precision=args.precision, custom_objects=custom,
                    unsafe_deserialization=args.unsafe_deserialization)


def score(args) -> dict:
    """Build and score; returns the report."""
    methods = [m.strip() for m in args.methods.split(",")]
    settings = quality_settings(args)
    cache_dir = Path(args.cache_dir)
    net = open_network(settings, Cache(cache_dir))
    layers = select_layers(net.layers, args.layers)
    # conv_pw_8 names an ONNX file's features.conv_pw_8 here too (the default view layers)
    args.view_layers = ",".join(by_module_tail(name, [layer.name for layer in net.layers])
                                for name in args.view_layers.split(",") if name)
    sample = sample_filters(layers, args.per_layer, sample_seed(args))
    if args.filters:  # the same filters of every layer, to compare two files of one network
        sample = {layer.name: [i for i in parse_filters(args.filters) if i < layer.filters] for layer in layers}
    records = build_methods(settings, cache_dir, sample, methods, args.quiet)
    first = records[methods[0]]
    shape, preprocess = first["input_shape"], first["preprocess"]["mode"]
    keras_model = net.load()  # with the code the file needs
    photos = find_photos(Path(args.images))[: args.max_images or None]
    view_layers = [] if args.views == "none" else [name for name in args.view_layers.split(",") if name]
    natural = natural_stats(keras_model, first["network_sha256"], list(dict.fromkeys([l.name for l in layers] + view_layers)),
                            photos, shape, preprocess, cache_dir, args.copies)
    cache = Cache(cache_dir)
    report = {
        "model": first["model"], "weights": first["weights"], "network_sha256": first["network_sha256"],
        "input_shape": shape, "preprocess": preprocess, "precision": first["settings"]["precision"],
        "images": {"folder": str(args.images), "count": len(photos)}, "copies": args.copies,
        "methods": {m: {**records[m]["methods"][m], **timing(records[m])} for m in methods},
        "layers": {},
    }
    pictures = {}
    for index, layer in enumerate(layers):
        submodel = truncated(keras_model, layer.name, pre_activation=True)
        mean, top = natural[layer.name]
        row = {"block": layer.block}
        for m in methods:
            entries = next(l for l in records[m]["layers"] if l["name"] == layer.name)["entries"]
            scores, high = [], []
            for entry in entries:
                pixels, _ = decode_png(cache.path(entry["images"][0]["key"]).read_bytes())
                picture = pixels.astype(np.float32) / 255.0
                value = robust_activation(submodel, picture, entry["index"], args.copies, shape, preprocess)
                scores.append(relative_to_nature(value, float(mean[entry["index"]]), float(top[entry["index"]])))
                high.append(high_frequency_fraction(picture))
                pictures.setdefault((layer.name, m), []).append(pixels)
            row[m] = {"filters": [e["index"] for e in entries], "score": scores, "high_freq": high,
                      "median_score": statistics.median(scores), "median_high_freq": statistics.median(high)}
        report["layers"][layer.name] = row
        print_layer(layer.name, row, methods)
    report["summary"] = summarize(report, methods)
    write_sheet(report, layers, pictures, methods, Path(args.sheet))
    if view_layers:
        from .view_quality import score_views

        def channel_score(layer, submodel, picture, index):
            mean, top = natural[layer]
            value = robust_activation(submodel, picture, index, args.copies, shape, preprocess)
            return relative_to_nature(value, float(mean[index]), float(top[index]))

        report["views"] = score_views(replace(settings, methods=(methods[0],), diversity=args.diversity),
                                      keras_model, channel_score, args)
    return report


def timing(record: dict) -> dict:
    computed = record["computed"]
    if not computed["filters"]:
        return {"seconds_per_filter": None}  # all cached: nothing was timed
    return {"seconds_per_filter": computed["seconds"] / computed["filters"]}


def summarize(report: dict, methods: list[str]) -> dict:
    """Per method: median over layers of the per-layer median score, and over all pictures."""
    summary = {}
    for m in methods:
        rows = [row[m] for row in report["layers"].values()]
        summary[m] = {
            "median_of_layer_medians": statistics.median(r["median_score"] for r in rows),
            "layers_with_median_at_least_1": sum(r["median_score"] >= 1.0 for r in rows),
            "layers": len(rows),
            "median_high_freq": statistics.median(h for r in rows for h in r["high_freq"]),
            "seconds_per_filter": report["methods"][m]["seconds_per_filter"],
        }
    return summary


def print_layer(name: str, row: dict, methods: list[str]) -> None:
    cells = [f"{m}: score {row[m]['median_score']:6.2f} high-freq {row[m]['median_high_freq']:.3f}" for m in methods]
    joiner = "  " if len(methods) <= 2 else "\n" + " " * 17
    print(f"{name:16s} {joiner.join(cells)}", flush=True)


def write_sheet(report, layers, pictures, methods, path: Path) -> None:
    """One row per block and method: the deepest sampled layer of each block."""
    from PIL import Image, ImageDraw

    deepest = {layer.block: layer.name for layer in layers}
    tile, gap, label = 96, 4, 190
    lines = [(name, m, pictures[(name, m)]) for name in deepest.values() for m in methods]
    width = label + max(len(p) for _, _, p in lines) * (tile + gap)
    sheet = Image.new("RGB", (width, 20 + len(lines) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), f"{report['model']}: {report['weights']}", fill="black")
    for row, (name, method, tiles) in enumerate(lines):
        y = 20 + row * (tile + gap)
        median = report["layers"][name][method]["median_score"]
        draw.text((4, y + 30), f"{name}\n{method}\nmedian score {median:.2f}", fill="black")
        for col, pixels in enumerate(tiles):
            sheet.paste(Image.fromarray(pixels).resize((tile, tile), Image.BILINEAR), (label + col * (tile + gap), y))
    sheet.save(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m generator.quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_FILE), help="default: the real MobileNet in ../shared/models")
    p.add_argument("--weights", default=None)
    p.add_argument("--preprocess", default=None)
    p.add_argument("--custom-objects", default=None, metavar="FILE.py",
                   help="a Python file defining the model file's custom layers and functions, as build's")
    p.add_argument("--unsafe-deserialization", action="store_true",
                   help="let Keras run the Python code a Lambda layer stored in the model file, as build's")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="the pictures' format, as build's --precision (default: auto)")
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="photographs to compare with (default: %(default)s)")
    p.add_argument("--max-images", type=int, default=0, help="use only the first N photographs (0: all)")
    p.add_argument("--methods", default=",".join([DEFAULT_METHOD] + [m for m in METHODS if m != DEFAULT_METHOD]),
                   help="methods to score, comma-separated")
    p.add_argument("--layers", default=None, help="only these layers, comma-separated (default: all)")
    p.add_argument("--per-layer", type=int, default=8, help="filters sampled per layer (default: 8)")
    p.add_argument("--filters", default=None, help="these filters of each layer instead of a sample, e.g. 0-7")
    p.add_argument("--copies", type=int, default=8, help="transformed copies per picture")
    p.add_argument("--views", default="unit", help="unit: also measure the unit page's views; none: skip them")
    p.add_argument("--view-layers", default="conv_pw_4,conv_pw_8,conv_pw_12",
                   help="layers whose views are measured (default: %(default)s)")
    p.add_argument("--diversity", type=int, default=4, help="pictures in the diversity view (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-seed", type=int, default=None,
                   help="sample other filters, the pictures' seed unchanged (default: --seed)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    p.add_argument("--out", default="quality.json")
    p.add_argument("--sheet", default="quality-sheet.png")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        report = score(args)
    except AtlasError as exc:
        print(f"quality: error: {exc}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(report, indent=1))
    for m, s in report["summary"].items():
        per = f"{s['seconds_per_filter']:.2f} s/filter" if s["seconds_per_filter"] else "cached"
        print(f"{m}: median score {s['median_of_layer_medians']:.2f} over layers, "
              f"{s['layers_with_median_at_least_1']}/{s['layers']} layers at 1 or more, "
              f"high-freq {s['median_high_freq']:.3f}, {per} ({report['weights']})")
    print(f"wrote {args.out} and {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
