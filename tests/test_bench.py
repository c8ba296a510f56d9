"""`make bench` runs end to end and reports what the issue asks for (timing is not tested)."""

from __future__ import annotations

import json

import pytest

from generator import bench


def test_bench_report_on_a_tiny_model(tiny_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(["--model", str(tiny_model), "--filters", "2", "--iters", "2", "--precision", "float32",
                       "--images", str(bench.PHOTOS), "--example-images", "5", "--view-steps", "2",
                       "--out", str(out), "--sheet", str(tmp_path / "sheet.png")])
    assert code == 0
    report = json.loads(out.read_text())
    for key in ("seed_filters_per_s", "engine_filters_per_s", "speedup", "engine_gflops",
                "peak_conv_gflops", "peak_rss_mb", "full_atlas_estimate_s"):
        assert report[key] > 0, key
    assert set(report["sample"]) == {"block1_conv2", "block2_conv1"}  # the last conv of each block
    # float32 engine and the eager seed loop agree on every sampled filter
    assert report["median_activation_change_vs_seed"] < 1e-3
    assert report["examples"]["photos"] == 5 and report["examples"]["photos_per_s"] > 0
    assert report["examples"]["layers"] == 3 and 0 < report["examples"]["fraction_of_float32_peak"]
    printed = capsys.readouterr().out
    assert "speedup" in printed

    # each view of the default method, on each sampled layer: its pictures cost time, a share of the peak
    views = report["views"]
    assert views["method"] == "fourier" and views["steps"] == 2
    every_view = ("channel", "neuron", "negative", "diversity")
    assert [(r["layer"], r["view"]) for r in views["layers"]] == [
        (layer, view) for layer in ("block1_conv2", "block2_conv1") for view in every_view
    ]
    for row in views["layers"]:
        assert row["s_per_picture"] > 0 and row["gflop_per_picture"] > 0 and 0 < row["fraction_of_peak"]
        assert row["s_per_filter"] == pytest.approx(row["s_per_picture"] * row["group"])
    assert {r["view"]: r["group"] for r in views["layers"]}["diversity"] == 4
    assert set(views["per_view"]) == set(every_view)
    estimate = views["full_atlas_estimate"]
    assert estimate["unit"]["seconds"] > estimate["default"]["seconds"] > 0
    assert estimate["default"]["views"] == ["channel"]
    assert "s/picture" in printed and "full atlas, unit" in printed
    # block1_conv2's centre sees 5x5 of the 16x16 input: its neuron's pictures run on that window
    flops = {(r["layer"], r["view"]): r["gflop_per_picture"] for r in views["layers"]}
    assert flops["block1_conv2", "neuron"] < flops["block1_conv2", "channel"] / 4
    assert flops["block1_conv2", "negative"] == flops["block1_conv2", "channel"]


def make_stage_model(path, size=(20, 28)):
    """MobileNet-like names (no block in them, so blocks are resolution stages), a
    non-square input of neither 96 nor 224 pixels."""
    from generator.tf_quiet import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((*size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="conv_dw_1")(x)
    x = keras.layers.Conv2D(5, 1, activation="relu", name="conv_pw_1")(x)
    keras.Model(inputs, x, name="stages").save(path)
    return path


def test_bench_on_stage_named_layers_and_a_non_square_input(tmp_path):
    """Rates are keyed by block, whatever blocks are called; the bfloat16 contact
    sheet fits the network's own picture size."""
    from PIL import Image

    model = make_stage_model(tmp_path / "stages.keras")
    out, sheet = tmp_path / "bench.json", tmp_path / "sheet.png"
    code = bench.main(["--model", str(model), "--filters", "5", "--iters", "2", "--precision", "bfloat16",
                       "--example-images", "0", "--views", "none", "--out", str(out), "--sheet", str(sheet)])
    assert code == 0
    report = json.loads(out.read_text())
    assert "views" not in report
    assert report["sample"] == {"conv1": 4, "conv_pw_1": 5}  # the last conv of each stage, as many filters as it has
    assert [r["block"] for r in report["layers"]] == ["stage1", "stage2"]
    assert report["full_atlas_estimate_s"] > 0
    with Image.open(sheet) as image:  # 2 layers x 4 filters, seed | float32 | bfloat16 side by side
        assert image.size == (3 * 28 + 2 * 4, 8 * 20)
