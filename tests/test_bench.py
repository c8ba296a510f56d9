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
