"""Loading a network: weights resolved the way a Keras user expects.

An explicit file first (`--weights PATH` or FILTER_ATLAS_WEIGHTS), then the
Keras cache (~/.keras/models/), then Keras's own download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..cache import write_temporary
from ..errors import AtlasError
from ..tf_quiet import import_keras
from .zoo import DEFAULT_MODEL, BuiltinModel, builtin_spec, is_model_file

WEIGHTS_ENV = "FILTER_ATLAS_WEIGHTS"


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def resolve_weights(model: str, explicit: str | None = None) -> Path:
    """The weights file to use for a built-in model, downloading as Keras would."""
    spec = builtin_spec(model)
    explicit = explicit or os.environ.get(WEIGHTS_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise AtlasError(f"weights file not found: {path}")
        return path
    cached = keras_cache_dir() / spec.weights_file
    if cached.is_file():
        return cached
    return download_weights(spec)


def download_weights(spec: BuiltinModel) -> Path:
    keras = import_keras()

    try:
        return Path(
            keras.utils.get_file(
                spec.weights_file,
                spec.weights_url,
                cache_subdir="models",
                file_hash=spec.weights_md5,
            )
        )
    except Exception as exc:  # Keras wraps network failures in plain Exceptions
        raise AtlasError(
            f"could not download {spec.weights_file} ({first_line(exc)}); "
            f"download it yourself and pass --weights PATH, set {WEIGHTS_ENV}=PATH, "
            f"or put it in {keras_cache_dir()}/"
        ) from None


def model_source(model: str, weights: str | None) -> Path:
    """The one file whose bytes determine the network: weights or a saved model."""
    if is_model_file(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise AtlasError(f"model file not found: {path}")
        return path
    return resolve_weights(model, weights)


def file_digests(path: Path) -> tuple[str, str]:
    """SHA-256 (the cache's fingerprint) and MD5 (what Keras publishes) of a file."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def describe_weights(model: str, source: Path, md5: str) -> str:
    """Which weights a picture came from, in words: random weights show no real features."""
    if is_model_file(model):
        return f"Model file {source.name}"
    if md5 == builtin_spec(model).weights_md5:
        return "ImageNet weights"
    return f"Weights file {source.name}, not Keras's ImageNet file"


def load_model(model: str, source: Path):
    """Build the Keras model `model` with the weights in `source`."""
    keras = import_keras()

    try:
        if is_model_file(model):
            return keras.models.load_model(source, compile=False)
        spec = builtin_spec(model)
        size = spec.input_size
        builder = getattr(keras.applications, spec.builder)
        return builder(include_top=False, weights=str(source), input_shape=(size, size, 3))
    except AtlasError:
        raise
    except Exception as exc:  # h5py, Keras and ValueError all mean "not this file"
        raise AtlasError(f"cannot load {model} from {source}: {first_line(exc)}") from None


def save_seeded_weights(path: Path, seed: int = 0, model: str = DEFAULT_MODEL) -> Path:
    """Write randomly initialised weights in the layout of Keras's ImageNet file.

    For machines without the real file: the same loading code runs on it.
    """
    import h5py

    keras = import_keras()
    from keras.src.legacy.saving import legacy_h5_format

    spec = builtin_spec(model)
    keras.utils.set_random_seed(seed)
    size = spec.input_size
    net = getattr(keras.applications, spec.builder)(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    # A temporary of its own, so two writers of the same file never collide.
    tmp = Path(write_temporary(path.parent, f".{path.name}.", b""))
    try:
        with h5py.File(tmp, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, net)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
