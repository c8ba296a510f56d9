"""`make quality`, the unit page's views: each measured on a real network.

For sampled filters of a few layers (default: conv_pw_4, conv_pw_8 and
conv_pw_12 of the real MobileNet), every view is built and measured against
the photos, the same quantity on both sides:

- neuron: the picture's unit output at the centre position, against the
  photos' centre outputs: (picture - average) / (best - average);
- negative: how far below the photos it drives the unit's mean,
  (average - picture) / (average - lowest): above 1 is below every photo;
- diversity: the mean pairwise similarity of the k pictures' Gram matrices
  at the layer (the penalty's own measure) against k pictures of the
  channel from independent seeds, and each picture's channel score (as
  `make quality` scores a picture, 1 = as strong as the best photo);
- interpretability, with a model observer (observer.py): top against
  bottom photos, with the channel picture alone, the k diverse pictures,
  and the unit's next top photos (the natural ceiling) as references;
- the accent view (accent_quality.py): its seeds from one half of the
  photos, its test photos from the other; the activation score and the
  observer's 2AFC with the accentuations, natural exemplars and the channel
  picture as references.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

from .build import build
from .cache import Cache
from .errors import AtlasError
from .examples import ExampleOptions
from .imaging import decode_png
from .networks import layers_model, network_input, truncated
from .observer import Observer, pairs_right
from .optvis.views import VIEW_NAMES
from .sampling import sample_filters, sample_seed

DEFAULT_LAYERS = "conv_pw_4,conv_pw_8,conv_pw_12"
SHOWN = 10  # top and bottom photos a unit is judged on
NEXT_TOP = 9  # the unit's next top photos: the natural references
OBSERVER_RULES = {"": "mean", "_nearest": "nearest"}  # how "nearer the references" is measured
# References set against the channel picture alone, unit by unit
PAIRED_LABELS = {"diversity": "the diverse pictures (mean rule)", "diversity_nearest": "the diverse pictures (nearest rule)",
                 "diversity_and_channel_nearest": "the diverse and the channel pictures (nearest rule)"}


def build_views(settings, cache_dir: Path, sample: dict, images: Path, quiet: bool) -> tuple[dict, dict]:
    """Each view on its own (so its time is its own), then the record with every
    view and the photos; returns (record, seconds per filter per view)."""
    seconds = {}
    for view in VIEW_NAMES:
        record = build(replace(settings, views=(view,)), cache_dir, filters=sample, progress=not quiet,
                       write_record=False)
        computed = record["computed"]
        seconds[view] = computed["seconds"] / computed["filters"] if computed["filters"] else None
    options = ExampleOptions(Path(images), SHOWN + NEXT_TOP, bottom=True)
    record = build(replace(settings, views=VIEW_NAMES), cache_dir, filters=sample, progress=not quiet,
                   write_record=False, examples=options)
    return record, seconds


def independent_pictures(settings, cache_dir: Path, sample: dict, count: int, quiet: bool) -> dict:
    """Per (layer, filter), the channel pictures' keys from seeds 0 .. count-1."""
    keys: dict = {}
    for seed in range(count):
        record = build(replace(settings, seed=settings.seed + seed, views=("channel",)), cache_dir, filters=sample,
                       progress=not quiet, write_record=False)
        for layer in record["layers"]:
            for entry in layer["entries"]:
                keys.setdefault((layer["name"], entry["index"]), []).append(entry["images"][0]["key"])
    return keys


def picture(cache: Cache, key: str) -> np.ndarray:
    return decode_png(cache.path(key).read_bytes())[0].astype(np.float32) / 255


def gram_similarity(model, pictures: list[np.ndarray], preprocess: str) -> float:
    """Mean pairwise cosine similarity of the pictures' Gram matrices at the layer."""
    acts = np.asarray(model(network_input(np.stack(pictures), preprocess)), np.float32)
    flat = acts.reshape(len(pictures), -1, acts.shape[-1])
    grams = np.einsum("npc,npd->ncd", flat, flat).reshape(len(pictures), -1)
    grams /= np.maximum(np.linalg.norm(grams, axis=1, keepdims=True), 1e-10)
    return float(np.mean([grams[i] @ grams[j] for i, j in combinations(range(len(pictures)), 2)]))


def photo_crops(cache_dir: Path, examples: list[dict]) -> list[np.ndarray]:
    """The receptive-field crops, cut at full resolution from the photo as the network saw it."""
    from PIL import Image

    crops = []
    for example in examples:
        with Image.open(cache_dir / example["view"]) as view:
            crops.append(np.asarray(view.convert("RGB").crop(tuple(example["box"]))))
    return crops


def score_views(settings, keras_model, score_picture, args) -> dict:
    """The views' report; `score_picture(layer, submodel, picture01, index)` is make quality's channel score."""
    cache_dir, cache = Path(args.cache_dir), Cache(args.cache_dir)
    wanted = [name for name in args.view_layers.split(",") if name]
    layers = [layer for layer in settings_layers(settings, cache_dir) if layer.name in wanted]
    if len(layers) != len(wanted):
        missing = sorted(set(wanted) - {layer.name for layer in layers})
        raise AtlasError(f"--view-layers: no conv layer {', '.join(missing)} in this model")
    sample = sample_filters(layers, args.per_layer, sample_seed(args))
    record, seconds = build_views(settings, cache_dir, sample, Path(args.images), args.quiet)
    group = settings.diversity
    independent = independent_pictures(settings, cache_dir, sample, group, args.quiet)
    observer = Observer()
    preprocess = record["preprocess"]["mode"]
    report = {"seconds_per_filter": seconds, "observer": f"{observer.name} {observer.layer}", "layers": {}}
    for layer in record["layers"]:
        name = layer["name"]
        post = layers_model(keras_model, [name], pre_activation=False)
        submodel = truncated(keras_model, name, pre_activation=True)
        rows = []
        for entry in layer["entries"]:
            index, natural = entry["index"], entry["examples"]["natural"]
            shown = {view: [i for i in entry["images"] if i["view"] == view] for view in VIEW_NAMES}
            centre, mean = natural["centre"], natural["mean"]
            negative = shown["negative"][0]["unit"]["mean"]
            diverse = [picture(cache, i["key"]) for i in shown["diversity"]]
            seeds = [picture(cache, key) for key in independent[(name, index)]]
            top, bottom = entry["examples"]["top"], entry["examples"]["bottom"]
            embed = observer.embed
            top_e, bottom_e = embed(photo_crops(cache_dir, top[:SHOWN])), embed(photo_crops(cache_dir, bottom[:SHOWN]))
            channel_e = embed([picture(cache, shown["channel"][0]["key"])])
            diverse_e = embed(diverse)
            natural_e = embed(photo_crops(cache_dir, top[SHOWN:SHOWN + NEXT_TOP])) if len(top) > SHOWN else None
            references = {"channel": channel_e, "diversity": diverse_e,
                          "diversity_and_channel": np.concatenate([diverse_e, channel_e]), "ceiling": natural_e}
            rows.append({
                "filter": index,
                "neuron_score": (shown["neuron"][0]["unit"]["centre"] - centre["average"])
                / max(centre["max"] - centre["average"], 1e-9),
                "negative_depth": (mean["average"] - negative) / max(mean["average"] - mean["min"], 1e-9),
                "negative_below_every_photo": negative < mean["min"],
                "diversity_similarity": gram_similarity(post, diverse, preprocess),
                "independent_similarity": gram_similarity(post, seeds, preprocess),
                "diversity_scores": [score_picture(name, submodel, p, index) for p in diverse],
                **{f"observer_{which}{suffix}": None if refs is None else pairs_right(refs, top_e, bottom_e, rule)
                   for which, refs in references.items() for suffix, rule in OBSERVER_RULES.items()},
            })
        report["layers"][name] = summarize_rows(rows)
        print_row(name, report["layers"][name])
    every = [r for row in report["layers"].values() for r in row["filters"]]
    report["summary"] = summarize_rows(every)
    report["summary"].pop("filters")
    report["summary"]["observer_against_channel"] = {
        name: paired_gain(every, name) for name in PAIRED_LABELS}
    print_paired(report["summary"]["observer_against_channel"])
    report["accent"] = accent_report(settings, keras_model, score_picture, args, sample, observer)
    return report


def accent_report(settings, keras_model, score_picture, args, sample: dict, observer) -> dict:
    """The accent view on the same units, seeds and test photos from the two halves
    of the photo folder (accent_quality.py)."""
    from .accent_quality import print_report, score_accent

    submodels = {}

    def score(layer, picture01, index):
        if layer not in submodels:
            submodels[layer] = truncated(keras_model, layer, pre_activation=True)
        return score_picture(layer, submodels[layer], picture01, index)

    report = score_accent(settings, Path(args.cache_dir), sample, Path(args.images), args.quiet, observer, score)
    print_report(report)
    return report


def settings_layers(settings, cache_dir: Path):
    from .description import open_network

    return open_network(settings, Cache(cache_dir)).layers


def summarize_rows(rows: list[dict]) -> dict:
    median = statistics.median
    return {
        "filters": rows,
        "negative_below_every_photo": sum(r["negative_below_every_photo"] for r in rows) / len(rows),
        "median_negative_depth": median(r["negative_depth"] for r in rows),
        "median_neuron_score": median(r["neuron_score"] for r in rows),
        "median_diversity_similarity": median(r["diversity_similarity"] for r in rows),
        "median_independent_similarity": median(r["independent_similarity"] for r in rows),
        "diversity_less_alike": sum(r["diversity_similarity"] < r["independent_similarity"] for r in rows) / len(rows),
        "median_diversity_min_score": median(min(r["diversity_scores"]) for r in rows),
        "diversity_all_at_least_1": sum(min(r["diversity_scores"]) >= 1.0 for r in rows) / len(rows),
        "observer": {which + suffix: mean_of(r[f"observer_{which}{suffix}"] for r in rows)
                     for which in ("channel", "diversity", "diversity_and_channel", "ceiling")
                     for suffix in OBSERVER_RULES},
    }


def paired_gain(rows: list[dict], references: str, resamples: int = 10_000) -> dict:
    """Unit by unit, the observer with `references` minus with the channel picture
    alone: the mean gain, its 95% bootstrap interval (units resampled), and how
    many units gain. The references help measurably where the interval is above 0."""
    gains = np.array([r[f"observer_{references}"] - r["observer_channel"] for r in rows])
    rng = np.random.default_rng(0)  # the same interval for the same rows
    means = gains[rng.integers(0, len(gains), (resamples, len(gains)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(gains.mean()), "interval_95": [float(low), float(high)], "units": len(gains),
            "better": int((gains > 0).sum()), "worse": int((gains < 0).sum()), "measurably_better": bool(low > 0)}


def print_paired(paired: dict) -> None:
    for references, g in paired.items():
        low, high = g["interval_95"]
        print(f"observer with {PAIRED_LABELS[references]} against the channel picture alone: {g['mean']:+.3f} "
              f"(95% interval {low:+.3f} to {high:+.3f}; {g['better']} of {g['units']} units better, {g['worse']} worse)"
              f"{'' if g['measurably_better'] else ': not measurably better'}", flush=True)


def mean_of(values) -> float | None:
    """The mean of those that were measured (the ceiling needs more photos than the top ones shown)."""
    measured = [v for v in values if v is not None]
    return statistics.mean(measured) if measured else None


def print_row(name: str, row: dict) -> None:
    o = {k: "-" if v is None else f"{v:.3f}" for k, v in row["observer"].items()}
    print(f"{name:14s} negative below all photos {row['negative_below_every_photo']:.0%} "
          f"(depth {row['median_negative_depth']:.2f}); neuron {row['median_neuron_score']:.2f}; "
          f"diversity similarity {row['median_diversity_similarity']:.3f} vs {row['median_independent_similarity']:.3f} "
          f"independent, min score {row['median_diversity_min_score']:.2f}; observer (mean; nearest) channel {o['channel']}; "
          f"{o['channel_nearest']} diversity {o['diversity']}; {o['diversity_nearest']} ceiling {o['ceiling']}; "
          f"{o['ceiling_nearest']}", flush=True)
