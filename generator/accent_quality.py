"""`make quality`, the accent view: feature accentuation measured on a real network.

The photo folder is split in two halves (every other photo in sorted order):
the seed half gives each sampled unit its top photos, the first 3 of which
the accent view accentuates and the next 9 of which are the natural
references; the test half gives the unit's 10 top and 10 bottom photos that
the model observer (observer.py) tells apart. Seeds and test photos never
overlap, so the test is not circular. Per unit:

- whether each accentuation raises the unit (its mean over the map, before
  the nonlinearity) above the photo it started from, and by how much;
- how far each moved: mean absolute difference in levels (0-255), and in the
  regularized layer's features, relative to the photo's (as the page says);
- whether each stays recognisably its photo: with the observer's embedding
  of whole images, its own photo is the nearest of the seed half's photos;
- its activation score (scores.py: 1 = as strong as the best photo);
- the observer's 2AFC with, as references, the 3 accentuations (crops at the
  seed photo's receptive-field box, as the unit page shows them; and whole),
  the 9 natural exemplars, the channel picture, and (a control) the 3 seed
  photos' own crops unchanged; each set against the accentuations unit by
  unit with a 95% bootstrap interval.

Run alone (`python -m generator.accent_quality`) it measures only this view,
with the settings it is tuned by; `make quality` (view_quality.py) calls
`score_accent`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .build import build
from .cache import Cache, cache_key
from .errors import AtlasError
from .examples import ExampleOptions
from .imaging import decode_png
from .observer import REPO, Observer, pairs_right
from .optvis.views import ACCENT_PHOTOS
from .photos import find_photos, load_photo

SHOWN = 10  # test photos, top and bottom
NEXT_TOP = 9  # natural exemplars: the seed half's photos after the seeds
RULES = ("mean", "nearest")
REFERENCES = ("accent", "accent_whole", "natural", "channel", "seeds")
# make quality's defaults (quality.py), named again here: quality imports this module through view_quality
DEFAULT_MODEL_FILE = REPO.parent / "shared" / "models" / "mobilenet_v1_0.75_224_imagenet.keras"
DEFAULT_IMAGES = REPO.parent / "shared" / "imagenet-samples"


def split_photos(folder: Path, cache_dir: Path) -> tuple[Path, Path]:
    """Two folders of links under the cache: every other photo of `folder` (in
    sorted order) as seeds, the rest as test photos. Named by the photo set, so
    another folder gets other halves."""
    photos = find_photos(folder)
    if len(photos[0::2]) < ACCENT_PHOTOS:  # with fewer than 2 * (ACCENT_PHOTOS + NEXT_TOP), fewer natural exemplars
        raise AtlasError(f"{folder}: {len(photos)} photos; the accent view's measure needs at least "
                         f"{2 * ACCENT_PHOTOS - 1}")
    names = [p.relative_to(folder).as_posix() for p in photos]
    root = Path(cache_dir) / "quality" / f"halves-{cache_key({'folder': str(Path(folder).resolve()), 'photos': names})[:16]}"
    halves = (root / "seeds", root / "tests")
    for half, members in zip(halves, (photos[0::2], photos[1::2])):
        for photo in members:
            link = half / photo.relative_to(folder)
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(photo.resolve())
    return halves


def picture(cache: Cache, key: str) -> tuple[np.ndarray, dict]:
    pixels, meta = decode_png(cache.path(key).read_bytes())
    return pixels, meta


def crop(pixels: np.ndarray, box) -> np.ndarray:
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


def photo_crops(cache_dir: Path, examples: list[dict]) -> list[np.ndarray]:
    """The receptive-field crops, cut at full resolution from the photo as the network saw it."""
    from PIL import Image

    crops = []
    for example in examples:
        with Image.open(Path(cache_dir) / example["view"]) as view:
            crops.append(crop(np.asarray(view.convert("RGB")), example["box"]))
    return crops


def bootstrap(values, resamples: int = 10_000) -> dict | None:
    """The mean of per-unit values and its 95% bootstrap interval (units resampled);
    None where none was measured (too few photos for natural exemplars)."""
    values = np.asarray([v for v in values if v is not None], np.float64)
    if not len(values):
        return None
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "interval_95": [float(low), float(high)], "units": len(values)}


def score_accent(settings, cache_dir: Path, sample: dict, images: Path, quiet: bool = True,
                 observer: Observer | None = None, score_picture=None) -> dict:
    """Build and measure the accent view on `sample` ({layer: [filters]}); returns the report.
    `score_picture(layer, picture01, index)`: make quality's activation score, where given."""
    cache_dir, cache = Path(cache_dir), Cache(cache_dir)
    seeds_dir, tests_dir = split_photos(Path(images), cache_dir)
    started = time.perf_counter()
    channel = build(replace(settings, views=("channel",)), cache_dir, filters=sample, progress=not quiet,
                    write_record=False)
    channel_seconds = per_filter(channel)
    accent = build(replace(settings, views=("accent",)), cache_dir, filters=sample, progress=not quiet,
                   write_record=False, examples=ExampleOptions(seeds_dir, ACCENT_PHOTOS + NEXT_TOP))
    accent_seconds = per_filter(accent)
    tests = build(replace(settings, views=("channel",)), cache_dir, filters=sample, progress=not quiet,
                  write_record=False, examples=ExampleOptions(tests_dir, SHOWN, bottom=True))
    observer = observer or Observer()
    shape = accent["input_shape"]
    seed_photos = find_photos(seeds_dir)
    pool = observer.embed([load_photo(p, shape[:2]) for p in seed_photos])  # for "recognisably its photo"
    pool_names = [p.relative_to(seeds_dir).as_posix() for p in seed_photos]
    rows = []
    for layer in accent["layers"]:
        name = layer["name"]
        channel_entries = {e["index"]: e for l in channel["layers"] if l["name"] == name for e in l["entries"]}
        test_entries = {e["index"]: e for l in tests["layers"] if l["name"] == name for e in l["entries"]}
        for entry in layer["entries"]:
            index = entry["index"]
            accents = [picture(cache, image["key"]) for image in entry["images"]]
            metas = [meta["accent"] for _, meta in accents]
            seed_examples = entry["examples"]["top"]
            test = test_entries[index]["examples"]
            top_e = observer.embed(photo_crops(cache_dir, test["top"][:SHOWN]))
            bottom_e = observer.embed(photo_crops(cache_dir, test["bottom"][:SHOWN]))
            natural = seed_examples[ACCENT_PHOTOS:ACCENT_PHOTOS + NEXT_TOP]
            refs = {
                "accent": observer.embed([crop(p, m["box"]) for (p, _), m in zip(accents, metas)]),
                "accent_whole": observer.embed([p for p, _ in accents]),
                "natural": observer.embed(photo_crops(cache_dir, natural)) if natural else None,
                "channel": observer.embed([picture(cache, channel_entries[index]["images"][0]["key"])[0]]),
                # control: the seed photos' own crops, unchanged (what the accentuation adds to them)
                "seeds": observer.embed(photo_crops(cache_dir, seed_examples[:ACCENT_PHOTOS])),
            }
            whole = observer.embed([p for p, _ in accents])
            nearest = [pool_names[int(np.argmax(pool @ w))] for w in whole]
            row = {
                "layer": name, "filter": index, "keys": [image["key"] for image in entry["images"]],
                "photos": [m["photo"] for m in metas],
                "unit_on_photo": [m["unit_on_photo"] for m in metas],
                "unit": [m["unit"] for m in metas],
                "raised": [m["unit"] > m["unit_on_photo"] for m in metas],
                "moved_levels": [m["moved_levels"] for m in metas],
                "moved_features": [m["moved_features"] for m in metas],
                "features_layer": metas[0]["features_layer"],
                "own_photo_nearest": [n == m["photo"] for n, m in zip(nearest, metas)],
                **{f"observer_{which}_{rule}": None if r is None else pairs_right(r, top_e, bottom_e, rule)
                   for which, r in refs.items() for rule in RULES},
            }
            if score_picture is not None:
                row["score"] = [score_picture(name, p.astype(np.float32) / 255, index) for p, _ in accents]
                row["score_photo"] = [score_picture(name, load_photo(seeds_dir / m["photo"], shape[:2]), index)
                                      for m in metas]
            rows.append(row)
    report = summarize(rows)
    report.update(seconds_per_filter={"channel": channel_seconds, "accent": accent_seconds},
                  observer_network=f"{observer.name} {observer.layer}", seeds=str(seeds_dir), tests=str(tests_dir),
                  minutes=(time.perf_counter() - started) / 60, units=rows)
    return report


def per_filter(record: dict) -> float | None:
    computed = record["computed"]
    return computed["seconds"] / computed["filters"] if computed["filters"] else None


def summarize(rows: list[dict]) -> dict:
    pictures = [r for row in rows for r in zip(row["unit_on_photo"], row["unit"], row["moved_levels"],
                                               row["own_photo_nearest"])]
    summary = {
        "accentuations": len(pictures),
        "raised": sum(unit > photo for photo, unit, _, _ in pictures),
        "median_gain": statistics.median(unit - photo for photo, unit, _, _ in pictures),
        "median_ratio": median_of([unit / photo for photo, unit, _, _ in pictures if photo > 0]),
        "median_moved_levels": statistics.median(m for _, _, m, _ in pictures),
        "median_moved_features": median_of([m for row in rows for m in row["moved_features"] if m is not None]),
        "own_photo_nearest": sum(own for *_, own in pictures),
        "observer": {f"{which}_{rule}": bootstrap([r[f"observer_{which}_{rule}"] for r in rows])
                     for which in REFERENCES for rule in RULES},
        "accent_minus": {f"{which}_{rule}": bootstrap([None if r[f"observer_{which}_{rule}"] is None
                                                       else r[f"observer_accent_{rule}"] - r[f"observer_{which}_{rule}"]
                                                       for r in rows])
                         for which in ("natural", "channel", "seeds") for rule in RULES},
        "layers": {},
    }
    if rows and "score" in rows[0]:
        summary["median_score"] = statistics.median(s for r in rows for s in r["score"])
        summary["median_score_photo"] = statistics.median(s for r in rows for s in r["score_photo"])
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = [r for r in rows if r["layer"] == layer]
        summary["layers"][layer] = {f"{which}_{rule}": mean_of(r[f"observer_{which}_{rule}"] for r in mine)
                                    for which in REFERENCES for rule in RULES}
    return summary


def median_of(values: list) -> float | None:
    return statistics.median(values) if values else None


def mean_of(values) -> float | None:
    measured = [v for v in values if v is not None]
    return statistics.mean(measured) if measured else None


def print_report(report: dict) -> None:
    print(f"accent: {report['raised']} of {report['accentuations']} accentuations above their photo; "
          f"median gain {report['median_gain']:.3g} (x{report['median_ratio'] or float('nan'):.2f}); moved "
          f"{report['median_moved_levels']:.1f} levels, features {report['median_moved_features'] or 0:.1%} (medians); "
          f"own photo the observer's nearest of the seed half for {report['own_photo_nearest']}"
          + (f"; score {report['median_score']:.2f} (its photos {report['median_score_photo']:.2f})"
             if "median_score" in report else ""), flush=True)
    for layer, row in report["layers"].items():
        print(f"  {layer:12s} observer (mean; nearest) " + ", ".join(
            f"{which} {row[which + '_mean']:.3f}; {row[which + '_nearest']:.3f}" for which in REFERENCES
            if row[which + "_mean"] is not None))
    for key, value in report["observer"].items():
        if value is None:
            continue
        low, high = value["interval_95"]
        print(f"  observer with {key:20s} {value['mean']:.3f} (95% interval {low:.3f} to {high:.3f})")
    for key, value in report["accent_minus"].items():
        if value is None:
            continue
        low, high = value["interval_95"]
        print(f"  accent minus {key:16s} {value['mean']:+.3f} (95% interval {low:+.3f} to {high:+.3f})")
    seconds = report["seconds_per_filter"]
    if seconds["accent"] and seconds["channel"]:
        print(f"  seconds per filter: accent {seconds['accent']:.2f}, channel {seconds['channel']:.2f} "
              f"({seconds['accent'] / seconds['channel']:.1f}x)")


def contact_sheet(report: dict, cache_dir: Path, out: Path, size: int = 128) -> None:
    """One row per unit: each seed photo (its receptive-field box drawn) and its accentuation."""
    from PIL import Image, ImageDraw

    rows = report["units"]
    cache = Cache(cache_dir)
    label = 150
    sheet = Image.new("RGB", (label + 2 * ACCENT_PHOTOS * size, len(rows) * size), "white")
    draw = ImageDraw.Draw(sheet)
    seeds_dir = Path(report["seeds"])
    for r, row in enumerate(rows):
        draw.text((4, r * size + 4), f"{row['layer']} {row['filter']}", fill="black")
        for m, (photo_name, key) in enumerate(zip(row["photos"], row["keys"])):
            pixels, meta = picture(cache, key)
            photo = Image.fromarray(np.round(load_photo(seeds_dir / photo_name, pixels.shape[:2]) * 255).astype(np.uint8))
            box = meta["accent"]["box"]
            ImageDraw.Draw(photo).rectangle(box, outline=(255, 0, 0))
            accent = Image.fromarray(pixels)
            ImageDraw.Draw(accent).rectangle(box, outline=(255, 0, 0))
            x = label + 2 * m * size
            sheet.paste(photo.resize((size, size)), (x, r * size))
            sheet.paste(accent.resize((size, size)), (x + size, r * size))
            draw.text((4, r * size + 20 + 14 * m),
                      f"{row['unit_on_photo'][m]:.2f} -> {row['unit'][m]:.2f}", fill="black")
    sheet.save(out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m generator.accent_quality", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_FILE))
    p.add_argument("--images", default=str(DEFAULT_IMAGES))
    p.add_argument("--layers", default="conv_pw_4,conv_pw_8,conv_pw_12")
    p.add_argument("--per-layer", type=int, default=16)
    p.add_argument("--filters", default=None, help="LAYER:I,J;LAYER:K instead of a sample")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--precision", default="auto")
    p.add_argument("--weight", type=float, default=None, help="the regularizer's weight (views.ACCENT_WEIGHT)")
    p.add_argument("--depth", type=float, default=None, help="views.ACCENT_DEPTH")
    p.add_argument("--pixels", type=float, default=None, help="views.ACCENT_PIXELS")
    p.add_argument("--steps-share", type=float, default=None, help="views.ACCENT_STEPS_SHARE")
    p.add_argument("--no-score", action="store_true", help="skip the activation score")
    p.add_argument("--cache-dir", default=".atlas-cache")
    p.add_argument("--out", default="accent-quality.json")
    p.add_argument("--sheet", default="accent-sheet.png")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None) -> int:
    from .optvis import views
    from .sampling import sample_filters
    from .settings import Settings
    from .description import open_network

    args = parser().parse_args(argv)
    for option, constant in (("weight", "ACCENT_WEIGHT"), ("depth", "ACCENT_DEPTH"), ("pixels", "ACCENT_PIXELS"),
                             ("steps_share", "ACCENT_STEPS_SHARE")):
        if getattr(args, option) is not None:  # a tuning run: the view's constant, for this process
            setattr(views, constant, getattr(args, option))
    try:
        settings = Settings(model=args.model, precision=args.precision)
        net = open_network(settings, Cache(args.cache_dir))
        if args.filters:
            sample = {part.split(":")[0]: [int(i) for i in part.split(":")[1].split(",")]
                      for part in args.filters.split(";")}
        else:
            layers = [layer for layer in net.layers if layer.name in args.layers.split(",")]
            sample = sample_filters(layers, args.per_layer, args.sample_seed)
        score_picture = None if args.no_score else scorer(net, args)
        report = score_accent(settings, Path(args.cache_dir), sample, Path(args.images), args.quiet,
                              score_picture=score_picture)
    except AtlasError as exc:
        print(f"accent_quality: error: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    report["settings"] = {"weight": views.ACCENT_WEIGHT, "depth": views.ACCENT_DEPTH, "pixels": views.ACCENT_PIXELS,
                          "steps_share": views.ACCENT_STEPS_SHARE, "precision": args.precision}
    Path(args.out).write_text(json.dumps(report, indent=1))
    contact_sheet(report, Path(args.cache_dir), Path(args.sheet))
    return 0


def scorer(net, args):
    """make quality's activation score for a picture of a unit (scores.py)."""
    from .networks import truncated
    from .scores import natural_stats, relative_to_nature, robust_activation

    keras_model = net.load()
    photos = find_photos(Path(args.images))
    shape, preprocess = net.description["input_shape"], net.preprocess
    layers = args.layers.split(",") if not args.filters else [p.split(":")[0] for p in args.filters.split(";")]
    natural = natural_stats(keras_model, net.sha256, layers, photos, shape, preprocess, Path(args.cache_dir), 8)
    submodels = {}

    def score(layer, picture01, index):
        if layer not in submodels:
            submodels[layer] = truncated(keras_model, layer, pre_activation=True)
        mean, top = natural[layer]
        value = robust_activation(submodels[layer], picture01, index, 8, shape, preprocess)
        return relative_to_nature(value, float(mean[index]), float(top[index]))

    return score


if __name__ == "__main__":
    sys.exit(main())
