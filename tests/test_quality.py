"""`make quality` and `make quality-sweep`: the scores mean what they say, the
natural baseline is what the photos give, and the reports have them per layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator import quality, scores
from generator import sweep
from generator.observer import GOOGLENET
from generator.networks import load_model, network_input, truncated
from generator.photos import find_photos, load_photo
from tests.conftest import REPO

PHOTOS = REPO / "data" / "photos"


def test_high_frequency_fraction_separates_smooth_from_noisy():
    y, x = np.mgrid[0:96, 0:96]
    smooth = np.repeat((0.5 + 0.4 * np.sin(2 * np.pi * x / 48))[..., None], 3, axis=-1)
    checker = np.repeat((((x + y) % 2) * 1.0)[..., None], 3, axis=-1)
    noise = np.random.default_rng(0).uniform(size=(96, 96, 3))
    assert scores.high_frequency_fraction(smooth) < 0.01
    assert scores.high_frequency_fraction(checker) > 0.99
    assert 0.6 < scores.high_frequency_fraction(noise) < 0.9  # white noise: ~80% of the disc-and-corners


@pytest.mark.parametrize(
    "value, mean, best, expected",
    [(2.0, 2.0, 6.0, 0.0), (6.0, 2.0, 6.0, 1.0), (14.0, 2.0, 6.0, 3.0),
     (3.0, -5.0, -1.0, 2.0)],  # a sparse unit, negative on every photo
)
def test_score_relative_to_nature(value, mean, best, expected):
    assert scores.relative_to_nature(value, mean, best) == pytest.approx(expected)


def quality_args(tiny_model, tmp_path, *extra):
    return ["--model", str(tiny_model), "--methods", "fourier,seed", "--per-layer", "2", "--copies", "2",
            "--images", str(PHOTOS), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "q.json"),
            "--sheet", str(tmp_path / "s.png"), "--quiet", *(extra or ["--views", "none"])]


def test_quality_report_on_a_tiny_model(tiny_model, tmp_path, capsys):
    assert quality.main(quality_args(tiny_model, tmp_path)) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert set(report["layers"]) == {"block1_conv1", "block1_conv2", "block2_conv1"}
    assert report["images"]["count"] == 5
    for layer in report["layers"].values():
        for method in ("fourier", "seed"):
            assert len(layer[method]["score"]) == 2
            assert all(0 <= f <= 1 for f in layer[method]["high_freq"])
    for method in ("fourier", "seed"):
        assert report["methods"][method]["seconds_per_filter"] > 0
    assert (tmp_path / "s.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "block2_conv1" in out and "s/filter" in out
    assert not (tmp_path / "cache" / "builds").exists()  # the atlas's record is left alone

    assert quality.main(quality_args(tiny_model, tmp_path)) == 0  # all cached now: nothing timed
    assert "cached (" in capsys.readouterr().out


def test_quality_on_a_model_with_a_custom_layer_and_a_lambda(tmp_path, capsys):
    """A model file with its own layer class and a Lambda is scored given
    --custom-objects and --unsafe-deserialization, which every load of it gets
    (make quality once loaded it again without them); without them, one line
    naming the flag it needs."""
    from generator.tf_quiet import import_keras
    from tests.test_own_model import scaled_input

    keras = import_keras()
    code_file, inputs, x = scaled_input(tmp_path)
    x = keras.layers.Lambda(lambda t: t - 0.5, name="shift")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="block1_conv1")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="block2_conv1")(x)
    model = tmp_path / "custom.keras"
    keras.Model(inputs, x).save(model)
    args = ["--model", str(model), "--methods", "seed", "--per-layer", "1", "--copies", "1", "--views", "none",
            "--images", str(PHOTOS), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "q.json"),
            "--sheet", str(tmp_path / "s.png"), "--quiet"]

    assert quality.main(args) == 1
    assert "custom layer class Scale" in capsys.readouterr().err
    assert quality.main([*args, "--custom-objects", str(code_file)]) == 1
    assert "--unsafe-deserialization" in capsys.readouterr().err

    assert quality.main([*args, "--custom-objects", str(code_file), "--unsafe-deserialization"]) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert set(report["layers"]) == {"block1_conv1", "block2_conv1"}
    assert all(len(layer["seed"]["score"]) == 1 for layer in report["layers"].values())


def test_the_natural_baseline_is_what_the_photos_give(tiny_model, tmp_path):
    net = load_model(str(tiny_model), tiny_model)
    photos = find_photos(PHOTOS)
    stats = scores.natural_stats(net, "sha", ["block1_conv2"], photos, (16, 16, 3), "tf", tmp_path)
    unit = truncated(net, "block1_conv2", pre_activation=True)
    means = unit(network_input(np.stack([load_photo(p, (16, 16)) for p in photos]), "tf")).numpy().mean(axis=(1, 2))
    assert np.allclose(stats["block1_conv2"][0], means.mean(axis=0), atol=1e-5)
    assert np.allclose(stats["block1_conv2"][1], means.max(axis=0), atol=1e-5)
    again = scores.natural_stats(None, "sha", ["block1_conv2"], photos, (16, 16, 3), "tf", tmp_path)  # cached
    assert np.array_equal(again["block1_conv2"][0], stats["block1_conv2"][0])


def test_photos_are_scored_on_the_same_moved_copies_as_pictures(tiny_model, tmp_path):
    """A picture is scored on warped copies with grey borders; each photo is
    moved by the same warps, so a photo scored as a picture gets its own value."""
    import tensorflow as tf

    net = load_model(str(tiny_model), tiny_model)
    photos = find_photos(PHOTOS)
    stats = scores.natural_stats(net, "sha", ["block1_conv2"], photos, (16, 16, 3), "tf", tmp_path, copies=2)
    unit = truncated(net, "block1_conv2", pre_activation=True)
    images = np.stack([load_photo(p, (16, 16)) for p in photos])
    moved = [scores.SCORING_WARP(tf.constant(images), k, scores.SCORING_SEED, (16, 16)).numpy() for k in range(2)]
    per_photo = np.mean([unit(network_input(m, "tf")).numpy().mean(axis=(1, 2)) for m in moved], axis=0)
    assert np.allclose(stats["block1_conv2"][0], per_photo.mean(axis=0), atol=1e-5)
    assert np.allclose(stats["block1_conv2"][1], per_photo.max(axis=0), atol=1e-5)
    as_picture = scores.robust_activation(unit, images[3], 2, 2, (16, 16, 3), "tf")
    assert as_picture == pytest.approx(float(per_photo[3, 2]), abs=1e-5)
    unmoved = scores.natural_stats(net, "sha", ["block1_conv2"], photos, (16, 16, 3), "tf", tmp_path)
    assert not np.allclose(unmoved["block1_conv2"][0], stats["block1_conv2"][0])  # cached apart


# One variant of each kind of change the sweep makes to the graph: coarse to fine
# on a random part, Lucid's padded warp, the objective after the nonlinearity.
SWEPT = ("crop-half-64", "lucid-stack", "post-activation")


def test_the_sweep_tables_the_variants_it_runs_and_leaves_the_methods_as_they_were(tiny_model, tmp_path, capsys):
    methods_before = dict(sweep.METHODS)
    args = quality_args(tiny_model, tmp_path, "--layers", "block2_conv1", "--per-layer", "1",
                        "--variants", ",".join(SWEPT))
    args = [a for a in args if a not in ("--methods", "fourier,seed")]
    assert sweep.main(args) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert [row["method"] for row in report["table"]] == ["fourier"] + [f"sweep-{n}" for n in SWEPT]
    assert all(row["seconds_per_filter"] > 0 and row["steady_seconds_per_filter"] > 0 for row in report["table"])
    assert "sweep-lucid-stack" in capsys.readouterr().out
    assert sweep.METHODS == methods_before  # nobody else in the process sees the variants


def test_every_sweep_variant_is_a_method_of_its_own():
    """Each variant changes the default's key, and no two change it alike: each
    would be cached, built and tabled as a method of its own."""
    keys = {}
    for name, method in sweep.as_methods(sweep.variants()).items():
        key = json.dumps({k: v for k, v in method.key().items() if k != "name"}, sort_keys=True)
        keys.setdefault(key, []).append(name)
    assert [names for names in keys.values() if len(names) > 1] == []
    base = {k: v for k, v in sweep.METHODS["fourier"].key().items() if k != "name"}
    assert list(keys).count(json.dumps(base, sort_keys=True)) == 1  # "base" alone is the default
    assert set(SWEPT) < set(sweep.variants())


def test_an_unknown_sweep_variant_is_named(tiny_model, tmp_path):
    with pytest.raises(SystemExit, match="unknown variant 'steps7'"):
        sweep.main(quality_args(tiny_model, tmp_path, "--variants", "steps7"))


@pytest.mark.skipif(not GOOGLENET.is_file(), reason="the GoogLeNet observer is in ../shared/models, absent here")
def test_every_view_is_measured_with_a_model_observer(tiny_model, tmp_path, capsys):
    args = quality_args(tiny_model, tmp_path, "--methods", "fourier", "--layers", "block2_conv1",
                        "--view-layers", "block2_conv1", "--diversity", "2")
    assert quality.main(args) == 0
    views = json.loads((tmp_path / "q.json").read_text())["views"]
    assert set(views["seconds_per_filter"]) == {"channel", "neuron", "negative", "diversity"}
    (row,) = views["layers"].values()
    for unit in row["filters"]:
        assert len(unit["diversity_scores"]) == 2
        assert -1e-6 <= unit["diversity_similarity"] <= 1 + 1e-6 and -1e-6 <= unit["independent_similarity"] <= 1 + 1e-6
        for which in ("channel", "diversity", "diversity_and_channel"):
            assert 0 <= unit[f"observer_{which}"] <= 1
    paired = views["summary"]["observer_against_channel"]["diversity_nearest"]
    gains = [u["observer_diversity_nearest"] - u["observer_channel"] for u in row["filters"]]
    assert paired["mean"] == pytest.approx(np.mean(gains)) and paired["units"] == len(gains)
    out = capsys.readouterr().out
    assert "negative below all photos" in out and "against the channel picture alone" in out
    # the accent view: seeds from one half of the 5 photos (3), test photos from the other (2)
    accent = views["accent"]
    assert accent["accentuations"] == 2 * 3 and len(accent["units"]) == 2
    for unit in accent["units"]:
        assert not set(unit["photos"]) & {Path(p).name for p in (Path(accent["tests"])).iterdir()}
        assert all(0 <= unit[f"observer_{which}_mean"] <= 1 for which in ("accent", "channel", "seeds"))
        assert unit["observer_natural_mean"] is None  # no photo of 3 is left for natural exemplars
    assert "accentuations above their photo" in out


def test_the_observer_gain_is_called_measurable_only_when_its_interval_is_above_zero():
    from generator.view_quality import paired_gain

    def rows(gains):
        return [{"observer_channel": 0.5, "observer_diversity": 0.5 + g} for g in gains]

    steady = paired_gain(rows([0.02, 0.03, 0.01, 0.04] * 6), "diversity")
    assert steady["measurably_better"] and 0 < steady["interval_95"][0] < 0.025 < steady["interval_95"][1]
    assert (steady["better"], steady["worse"], steady["units"]) == (24, 0, 24)
    noisy = paired_gain(rows([0.2, -0.18, 0.15, -0.12] * 6), "diversity")  # a mean gain of +0.0125, all noise
    assert noisy["mean"] == pytest.approx(0.0125) and noisy["interval_95"][0] < 0 and not noisy["measurably_better"]


def test_the_observer_counts_pairs_where_the_top_photo_is_nearer():
    from generator.observer import pairs_right

    axes = np.eye(3, dtype=np.float32)
    top, bottom = axes[[0, 1]], axes[[2, 2]]
    assert pairs_right(axes[[0]], top, bottom) == 0.75  # the top photo on the reference wins, the other ties
    two_faces = axes[[0, 1]]  # references that show two faces: each top photo matches one
    assert pairs_right(two_faces, top, bottom, "nearest") == 1.0
    assert pairs_right(two_faces, top, bottom, "mean") == 1.0
    assert pairs_right(two_faces, bottom, top, "nearest") == 0.0
