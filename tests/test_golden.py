"""The cache's promise, pinned: the same key means the same pixels.

Two small model files are kept in tests/golden/ (a fresh save would hash
differently), and a few filters' pictures and cache keys for each method
and view are kept beside them: tiny.keras, plain convolutions, and bn.keras,
MobileNet-like, whose BatchNorms a build folds into the convolutions. A change that alters either fails here. If
pictures change on purpose, bump ALGORITHM_VERSION in generator/keys.py
(so old caches are not read as new pictures) and rewrite the golden files:
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from generator.imaging import decode_png
from tests.conftest import read_record

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = GOLDEN / "expected.json"
TINY = ("tiny.keras", "block1_conv2,block2_conv1")
FOLDED = ("bn.keras", "conv_dw_1,conv_pw_1")  # BatchNorm folded before both
# (model, method, steps, views): small enough for seconds, long enough to move every pixel.
# The default method's first REDIRECT_STEPS steps redirect ReLU gradients; 24 steps
# pin the plain steps after them too.
CASES = [(TINY, "fourier", 24, "channel"), (TINY, "seed", 5, "channel"),
         (TINY, "fourier", 12, "neuron,negative,diversity"), (FOLDED, "fourier", 12, "channel")]
# Pictures may differ by rounding between CPU kinds (oneDNN picks other kernels);
# a changed algorithm moves them far more than this.
TOLERANCE = 3


def build_case(atlas, tmp_path: Path, model: tuple[str, str], method: str, steps: int, views: str) -> dict:
    file, layers = model
    cache = tmp_path / f"cache-{file}-{method}"
    args = ["build", "--model", GOLDEN / file, "--cache-dir", cache, "--quiet", "--precision", "float32",
            "--method", method, "--iters", steps, "--layers", layers, "--filters", "0-1"]
    if views != "channel":
        args += ["--views", views]
    code, _, err = atlas(*args)
    assert code == 0, err
    description = json.loads(next((cache / "models").glob("*.json")).read_text())
    assert description["folds_batchnorm"] is (model == FOLDED)
    pictures = {}
    prefix = "" if model == TINY else f"{file}/"  # the tiny model's names as they always were
    for layer in read_record(cache)["layers"]:
        for entry in layer["entries"]:
            for image in entry["images"]:
                name = "/".join(str(part) for part in (image["method"], image.get("view", "channel"),
                                                       layer["name"], entry["index"], image.get("member", 0)))
                key = image["key"]
                pictures[prefix + name] = (key, (cache / "filters" / key[:2] / f"{key}.png").read_bytes())
    return pictures


def test_pictures_and_keys_match_the_golden_files(atlas, tmp_path):
    built = {}
    for case in CASES:
        built.update(build_case(atlas, tmp_path, *case))
    if os.environ.get("UPDATE_GOLDEN"):
        for old in GOLDEN.glob("*.png"):
            old.unlink()
        for name, (key, data) in built.items():
            (GOLDEN / f"{key}.png").write_bytes(data)
        EXPECTED.write_text(json.dumps({name: key for name, (key, _) in sorted(built.items())}, indent=1) + "\n")
        pytest.skip("golden files rewritten")
    expected = json.loads(EXPECTED.read_text())
    assert sorted(built) == sorted(expected), "the golden pictures cover other methods or views than built"
    for name, (key, data) in sorted(built.items()):
        assert key == expected[name], (
            f"{name}: the cache key changed; old caches would no longer be found. If on purpose, "
            "bump ALGORITHM_VERSION in generator/keys.py and rewrite the golden files (see this file's docstring)")
        pixels, _ = decode_png(data)
        golden, _ = decode_png((GOLDEN / f"{key}.png").read_bytes())
        difference = np.abs(pixels.astype(int) - golden.astype(int))
        assert difference.max() <= TOLERANCE, (
            f"{name}: same key, other pixels (up to {difference.max()} levels apart). The cache promises "
            "the same key means the same pixels: bump ALGORITHM_VERSION in generator/keys.py and rewrite "
            "the golden files (see this file's docstring)")
