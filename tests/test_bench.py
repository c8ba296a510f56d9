"""`make bench` runs end to end and reports what the issue asks for (timing is not tested)."""

from __future__ import annotations

import json

from generator import bench


def test_bench_report_on_a_tiny_model(tiny_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(["--model", str(tiny_model), "--filters", "2", "--iters", "2", "--precision", "float32",
                       "--images", str(bench.PHOTOS), "--example-images", "5",
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
    assert "speedup" in capsys.readouterr().out


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
                       "--example-images", "0", "--out", str(out), "--sheet", str(sheet)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["sample"] == {"conv1": 4, "conv_pw_1": 5}  # the last conv of each stage, as many filters as it has
    assert [r["block"] for r in report["layers"]] == ["stage1", "stage2"]
    assert report["full_atlas_estimate_s"] > 0
    with Image.open(sheet) as image:  # 2 layers x 4 filters, seed | float32 | bfloat16 side by side
        assert image.size == (3 * 28 + 2 * 4, 8 * 20)
