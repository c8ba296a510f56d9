"""A network's input preprocessing, as keras.applications defines its modes.

Every method works on RGB images in [0, 1]; this maps them to what the
network was trained on:

- caffe: BGR in 0..255 minus ImageNet's channel means (VGG, ResNet50);
- tf: RGB scaled to [-1, 1] (MobileNet, Inception, ResNet50V2);
- torch: RGB in [0, 1] standardized by ImageNet's mean and deviation (DenseNet);
- none: RGB in 0..255 as it is, for models that scale and normalize inside
  (EfficientNet, ConvNeXt, any model that starts with Rescaling or Normalization).
"""

from __future__ import annotations

from ..errors import AtlasError

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
MODES = ("caffe", "tf", "torch", "none")
# For a model file that says nothing of its input (see guess_preprocess).
FALLBACK = "tf"


def caffe_input(image):
    """RGB in [0, 1] (a tensor or an array) -> VGG16's input: BGR in 0..255 minus ImageNet's means."""
    import tensorflow as tf

    bgr = tf.reverse(tf.cast(image, tf.float32) * 255.0, axis=[-1])
    return bgr - tf.constant(CAFFE_BGR_MEAN)


def network_input(image, mode: str):
    """RGB in [0, 1] (a tensor or an array) -> the network's input under `mode`."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    if mode == "caffe":
        return caffe_input(image)
    if mode == "tf":
        return image * 2.0 - 1.0
    if mode == "torch":
        return (image - tf.constant(TORCH_MEAN)) / tf.constant(TORCH_STD)
    if mode == "none":
        return image * 255.0
    raise AtlasError(f"unknown preprocessing {mode!r}; choose one of: {', '.join(MODES)}")


def check_mode(mode: str | None) -> str | None:
    if mode is not None and mode not in MODES:
        raise AtlasError(f"unknown preprocessing {mode!r}; choose one of: {', '.join(MODES)}")
    return mode


def guess_preprocess(keras_model) -> tuple[str, str]:
    """The preprocessing of a model file nobody named one for, and why:
    none when the model scales its own input (a Rescaling or Normalization
    layer anywhere before its first convolution), a keras.applications
    family's own when the model or one of its sub-models (a flattened model's
    backbone) bears its name, else tf ([-1, 1])."""
    from ..tf_quiet import import_keras
    from .units import conv_kind
    from .zoo import BUILTIN_MODELS, family_of

    keras = import_keras()
    own = (keras.layers.Rescaling, keras.layers.Normalization)
    for layer in keras_model.layers:
        if conv_kind(layer):
            break
        if isinstance(layer, own):
            return "none", own_scaling_why(layer, first=layer is first_layer(keras_model))
    for name in (keras_model.name, *getattr(keras_model, "_atlas_submodels", ())):
        family = family_of(name)
        if family:
            which = "model" if name == keras_model.name else "sub-model"
            return BUILTIN_MODELS[family].preprocess, f"the {which} is named {name!r}, a {family}"
    return FALLBACK, "nothing in the model says; pass --preprocess to choose"


def first_layer(keras_model):
    from ..tf_quiet import import_keras

    keras = import_keras()
    return next((layer for layer in keras_model.layers if not isinstance(layer, keras.layers.InputLayer)), None)


def own_scaling_why(layer, first: bool) -> str:
    """Why `none`: the model's own scaling layer, and which mode it amounts to."""
    where = "starts with" if first else "scales its input itself, with"
    why = f"the model {where} its own {type(layer).__name__} layer"
    if not first:
        why += f" {layer.name!r} before its first convolution"
    scale, offset = getattr(layer, "scale", None), getattr(layer, "offset", None)
    if isinstance(scale, (int, float)) and isinstance(offset, (int, float)):
        if abs(scale * 127.5 - 1) < 1e-6 and abs(offset + 1) < 1e-6:
            why += " (x / 127.5 - 1: the same as tf)"
        elif abs(scale * 255 - 1) < 1e-6 and offset == 0:
            why += " (x / 255: RGB in [0, 1])"
    return why
