"""Loading a network: weights resolved the way a Keras user expects.

An explicit file first (`--weights PATH` or FILTER_ATLAS_WEIGHTS), then the
Keras cache (~/.keras/models/), then Keras's own download.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..cache import write_temporary
from ..errors import AtlasError
from ..tf_quiet import import_keras
from .custom import check_loadable, explain_load_error, import_custom_objects
from .from_onnx import is_onnx_file, load_onnx
from .nesting import clone_layer, copy_weights, flatten, needs_flattening
from .zoo import DEFAULT_MODEL, BuiltinModel, builtin_spec, is_model_file, not_keras_file

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
                file_hash=spec.weights_hash,
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
        not_keras_file(model)
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


def describe_weights(model: str, source: Path, sha256: str, md5: str) -> str:
    """Which weights a picture came from, in words: random weights show no real features."""
    if is_model_file(model):
        return f"Model file {source.name}"
    spec = builtin_spec(model)
    if spec.weights_hash in (sha256, md5):
        return "ImageNet weights"
    if spec.weights_hash is None and source.name == spec.weights_file:
        return "ImageNet weights (Keras's file name; Keras publishes no hash to check it by)"
    return f"Weights file {source.name}, not Keras's ImageNet file"


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """'227' or '227x300' (height x width) -> (227, 227) or (227, 300)."""
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in text.lower().split("x"))
        if len(sizes) not in (1, 2) or min(sizes) < 1:
            raise ValueError
    except ValueError:
        raise AtlasError(f"cannot parse --input-size {text!r}: expected a size like 224 or 227x300") from None
    return (sizes[0], sizes[-1])


def load_model(model: str, source: Path, input_size: tuple[int, int] | None = None,
               custom_objects: str | None = None, unsafe_deserialization: bool = False,
               sha256: str | None = None, conversions: Path | None = None):
    """Build the Keras model `model` with the weights in `source`, at `input_size`
    (height, width; default: the built-in model's size, or the model file's own).
    A model file's own code comes from the file `custom_objects` (see custom.py);
    nested models in it are flattened (see nesting.py). An ONNX file is
    converted (from_onnx/), the conversion kept in `conversions` by its `sha256`."""
    keras = import_keras()

    try:
        if is_onnx_file(model):
            return load_onnx(source, sha256 or "", input_size, conversions if sha256 else None)
        if is_model_file(model):
            objects = import_custom_objects(custom_objects) if custom_objects else {}
            check_loadable(Path(model).name, source, objects, unsafe_deserialization)
            try:
                net = keras.models.load_model(source, compile=False, custom_objects=objects or None,
                                              safe_mode=not unsafe_deserialization)
            except Exception as exc:
                explained = explain_load_error(Path(model).name, exc)
                if explained:
                    raise AtlasError(explained) from None
                raise
            if needs_flattening(net):
                net = flatten(net, input_size)
            return at_input_size(net, model, input_size)
        spec = builtin_spec(model)
        height, width = input_size or (spec.input_size, spec.input_size)
        if min(height, width) < spec.min_size:
            raise AtlasError(f"{model} needs an input of at least {spec.min_size}x{spec.min_size}, "
                             f"got {height}x{width}")
        builder = getattr(keras.applications, spec.builder)
        fresh_layer_names()
        return builder(include_top=False, weights=str(source), input_shape=(height, width, 3))
    except AtlasError:
        raise
    except Exception as exc:  # h5py, Keras and ValueError all mean "not this file"
        raise AtlasError(f"cannot load {model} from {source}: {first_line(exc)}") from None


def fresh_layer_names() -> None:
    """Keras numbers unnamed layers process-wide (InceptionV3's conv2d, conv2d_1,
    ...): start the count afresh, so a built-in model's layer names, and with
    them cache keys and page names, do not depend on what was built before."""
    import_keras().backend.clear_session()


def at_input_size(net, name: str, input_size: tuple[int, int] | None):
    """A loaded model file with a fixed spatial input: its own, or `input_size`
    where the model accepts any (a fully convolutional model)."""
    keras = import_keras()
    _, height, width, _ = net.input_shape
    if input_size is None:
        if height is None or width is None:
            raise AtlasError(f"{name} has no fixed input size; pass --input-size, e.g. --input-size 224")
        return net
    if (height, width) == tuple(input_size):
        return net
    if height is not None or width is not None:
        raise AtlasError(f"{name} has a fixed input of {height}x{width}; --input-size "
                         f"{input_size[0]}x{input_size[1]} applies only to models without one")
    fixed = keras.Input((*input_size, net.input_shape[-1]))
    copy = keras.models.clone_model(net, input_tensors=fixed, clone_function=clone_layer)
    copy_weights(copy, net)
    return copy


def save_seeded_weights(path: Path, seed: int = 0, model: str = DEFAULT_MODEL) -> Path:
    """Write randomly initialised weights in the layout of Keras's ImageNet file.

    For machines without the real file: the same loading code runs on it.
    """
    import h5py

    keras = import_keras()
    from keras.src.legacy.saving import legacy_h5_format

    spec = builtin_spec(model)
    keras.utils.set_random_seed(seed)
    fresh_layer_names()
    size = max(spec.min_size, 96)  # the weights do not depend on the input size
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
    """The line that says what went wrong: Keras's own where it wraps it
    ("Exception encountered when calling Lambda.call(). <what>")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]
