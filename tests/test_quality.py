"""`make quality`: the scores mean what they say, and the report has them per layer."""

from __future__ import annotations

import json

import numpy as np

from generator import quality


def test_high_frequency_fraction_separates_smooth_from_noisy():
    y, x = np.mgrid[0:96, 0:96]
    smooth = np.repeat((0.5 + 0.4 * np.sin(2 * np.pi * x / 48))[..., None], 3, axis=-1)
    checker = np.repeat((((x + y) % 2) * 1.0)[..., None], 3, axis=-1)
    noise = np.random.default_rng(0).uniform(size=(96, 96, 3))
    assert quality.high_frequency_fraction(smooth) < 0.01
    assert quality.high_frequency_fraction(checker) > 0.99
    assert 0.6 < quality.high_frequency_fraction(noise) < 0.9  # white noise: ~80% of the disc-and-corners


def test_quality_report_on_a_tiny_model(tiny_model, tmp_path, capsys):
    out = tmp_path / "quality.json"
    code = quality.main([
        "--model", str(tiny_model), "--methods", "fourier,seed", "--filters", "0,1", "--copies", "2",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--sheet", str(tmp_path / "s.png"), "--quiet",
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["layers"]) == {"block1_conv1", "block1_conv2", "block2_conv1"}
    for layer in report["layers"].values():
        for method in ("fourier", "seed"):
            assert len(layer[method]["robust"]) == 2
            assert all(0 <= f <= 1 for f in layer[method]["high_freq"])
        assert 0 <= layer["default_beats_seed_robust"] <= 1
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "block2_conv1" in capsys.readouterr().out
    assert not (tmp_path / "cache" / "last-build.json").exists()  # the atlas's record is left alone
