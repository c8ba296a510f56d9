"""Shared fixtures: a tiny conv model for pipeline tests, and VGG16 weights
made here (or the real ImageNet file where ../shared/weights/ has it)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main
from generator.networks import BUILTIN_MODELS, save_seeded_weights
from generator.tf_quiet import import_keras

REPO = Path(__file__).resolve().parent.parent
REAL_WEIGHTS = REPO.parent / "shared" / "weights" / BUILTIN_MODELS["vgg16"].weights_file


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """Two blocks of small convolutions on 16x16 input: seconds to build an atlas of."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(inputs)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="block1_conv2")(x)
    x = keras.layers.MaxPooling2D(name="block1_pool")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="block2_conv1")(x)
    keras.Model(inputs, x, name="tiny").save(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory) -> Path:
    """The real ImageNet no-top file if it is beside the checkout, else seeded random weights."""
    if REAL_WEIGHTS.is_file():
        digest = hashlib.md5(REAL_WEIGHTS.read_bytes()).hexdigest()
        if digest == BUILTIN_MODELS["vgg16"].weights_hash:
            return REAL_WEIGHTS
    return save_seeded_weights(tmp_path_factory.mktemp("weights") / "vgg16-seeded.h5", seed=0)


@pytest.fixture(autouse=True)
def hardware_precision(monkeypatch):
    """`--precision auto` keeps the hardware's choice here, untimed: where the
    two formats run close, a timed choice could differ between two caches of
    one test. tests/test_precision.py times on purpose."""
    import generator.precision

    monkeypatch.setattr(generator.precision, "MEASURE_FROM_FLOPS", float("inf"))


def read_record(cache: Path) -> dict:
    """The build record of the one model built into `cache`."""
    import json

    (path,) = (Path(cache) / "builds").glob("*.json")
    return json.loads(path.read_text())


@pytest.fixture
def atlas(tmp_path, capsys):
    """Run `filter-atlas ARGS` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_cli(*args: str, **kwargs) -> subprocess.Popen:
    """`filter-atlas ARGS` as a separate process, for signals."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "generator", *map(str, args)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )
