"""Loading the network and finding its conv layers.

Weights are resolved the way a Keras user expects: an explicit file first
(`--weights PATH` or FILTER_ATLAS_WEIGHTS), then the Keras cache
(~/.keras/models/), then Keras's own download.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .cache import write_temporary
from .errors import AtlasError
from .tf_quiet import import_keras

WEIGHTS_ENV = "FILTER_ATLAS_WEIGHTS"
DEFAULT_MODEL = "vgg16"


@dataclass(frozen=True)
class BuiltinModel:
    """A model from keras.applications, headless, at a fixed input size."""

    builder: str  # attribute of keras.applications
    weights_file: str  # name of the no-top ImageNet file in the Keras cache
    weights_md5: str
    weights_url: str
    input_size: int


BUILTIN_MODELS = {
    "vgg16": BuiltinModel(
        builder="VGG16",
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_md5="6d6bbae143d832006294945121d1f1fc",
        weights_url=(
            "https://storage.googleapis.com/tensorflow/keras-applications/"
            "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
        ),
        input_size=96,
    ),
}


@dataclass(frozen=True)
class ConvLayer:
    name: str
    block: str
    filters: int


def block_of(layer_name: str) -> str:
    """Keras names layers `<block>_<kind><n>`; the prefix groups them."""
    return layer_name.split("_", 1)[0]


def is_model_file(model: str) -> bool:
    return model.endswith((".keras", ".h5")) or os.sep in model


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


def builtin_spec(model: str) -> BuiltinModel:
    try:
        return BUILTIN_MODELS[model]
    except KeyError:
        choices = ", ".join(sorted(BUILTIN_MODELS))
        raise AtlasError(
            f"unknown model {model!r}; choose one of: {choices}, or a path to a .keras file"
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


def not_a_conv_layer(name: str, conv_names, exists: bool) -> AtlasError:
    """The error for a layer name that is no conv layer, listing the ones there are."""
    problem = "is not a convolution" if exists else "is unknown"
    return AtlasError(f"layer {name!r} {problem}; conv layers are: {', '.join(conv_names)}")


def conv_layers(keras_model) -> list[ConvLayer]:
    """Every 2-D convolution in the model, in order, grouped by name prefix."""
    keras = import_keras()

    return [
        ConvLayer(layer.name, block_of(layer.name), int(layer.filters))
        for layer in keras_model.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]


def truncated(model, layer_name: str, pre_activation: bool = False, dtype: str | None = None):
    """The model truncated at a conv layer's output (or, on request, at that
    layer's output before its activation function), optionally computing in
    another dtype policy.

    The copy's layers get neutral names: a model may name its layers anything,
    but TensorFlow's graph scopes accept only a few characters."""
    keras = import_keras()
    convs = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise not_a_conv_layer(layer_name, convs, exists=False) from None
    if not isinstance(layer, keras.layers.Conv2D):
        raise not_a_conv_layer(layer_name, convs, exists=True)
    if pre_activation:
        linear = layer.__class__.from_config({**layer.get_config(), "activation": "linear", "name": "linear"})
        outputs = linear(layer.input)
        linear.set_weights(layer.get_weights())
    else:
        outputs = layer.output
    sub = keras.Model(model.input, outputs)
    names = iter(range(len(sub.layers)))

    def neutral(original):
        config = {**original.get_config(), "name": f"layer{next(names)}"}
        if dtype:
            config["dtype"] = dtype
        return original.__class__.from_config(config)

    copy = keras.models.clone_model(sub, clone_function=neutral)
    copy.set_weights(sub.get_weights())
    return copy


def input_shape(keras_model) -> tuple[int, int, int]:
    _, height, width, channels = keras_model.input_shape
    return int(height), int(width), int(channels)


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
