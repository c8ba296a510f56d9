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


def as_on_a_float32_machine(monkeypatch) -> None:
    """Builds run as on a machine without native bfloat16, whatever this one has:
    the same kernels' path, keys and speed on every CPU kind CI meets (AVX2 only,
    AVX512-BF16, AMX). `--precision auto` keeps that choice untimed."""
    import generator.optvis.engine
    import generator.precision

    monkeypatch.setattr(generator.optvis.engine, "default_precision", lambda: "float32")
    monkeypatch.setattr(generator.precision, "MEASURE_FROM_FLOPS", float("inf"))


@pytest.fixture(autouse=True)
def a_float32_machine(monkeypatch):
    """Every test's builds, as_on_a_float32_machine; tests of the other kind
    say so (tests/test_precision.py, tests/test_zoo.py)."""
    as_on_a_float32_machine(monkeypatch)


@pytest.fixture(autouse=True)
def keras_registry_as_it_was():
    """A --custom-objects file registers its classes in Keras's process-wide
    registry when imported; once there, Keras loads the model without the flag.
    Each test starts from the registry as it was, so a test that imports
    GoogLeNet's CaffeLRN cannot make another's "needs --custom-objects" pass by
    the order tests run in (our own layers, e.g. from_onnx's, stay registered)."""
    from keras.src.saving import object_registration as registry

    before = set(registry.GLOBAL_CUSTOM_OBJECTS)
    yield
    for name in set(registry.GLOBAL_CUSTOM_OBJECTS) - before:
        registered = registry.GLOBAL_CUSTOM_OBJECTS[name]
        if not getattr(registered, "__module__", "").startswith("generator."):
            del registry.GLOBAL_CUSTOM_OBJECTS[name]
            registry.GLOBAL_CUSTOM_NAMES.pop(registered, None)


# The tiny atlas most tests start from or compare with.
TINY_BUILD = ("--quiet", "--iters", 5)
# A build whose layers take a second or two each (the seed's loop, many steps):
# long enough for a signal to land mid-build, short enough to wait for. For
# other processes, where the float32 machine is not pretended: said outright.
SLOW = ("--method", "seed", "--iters", 3000, "--precision", "float32")


@pytest.fixture(scope="session")
def tiny_atlas(tiny_model, tmp_path_factory) -> Path:
    """A folder with cache/ and site/: `build --model tiny.keras --iters 5` and
    `render`, made once for the session. Read it; copy it (copy_atlas) to change it."""
    work = tmp_path_factory.mktemp("tiny-atlas")
    with pytest.MonkeyPatch.context() as monkeypatch:
        as_on_a_float32_machine(monkeypatch)
        assert main([str(a) for a in ("build", "--model", tiny_model, "--cache-dir", work / "cache",
                                      *TINY_BUILD)]) == 0
        assert main([str(a) for a in ("render", "--cache-dir", work / "cache", "--site-dir", work / "site")]) == 0
    return work


def copy_atlas(atlas_folder: Path, to: Path) -> Path:
    """A copy of a built atlas's cache/ and site/ in `to`, to change freely."""
    import shutil

    shutil.copytree(atlas_folder, to, dirs_exist_ok=True)
    return to


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
