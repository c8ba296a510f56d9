"""The built-in networks: keras.applications models by name, each with its
no-top ImageNet weights file, its preprocessing and its default input size
(as keras.applications has them; VGG16 at the seed's 96x96)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import AtlasError

DEFAULT_MODEL = "vgg16"
KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class BuiltinModel:
    """A model from keras.applications, headless."""

    builder: str  # attribute of keras.applications
    weights_file: str  # name of the no-top ImageNet file in the Keras cache
    weights_hash: str | None  # MD5 or SHA-256 as Keras publishes it; None where it publishes none
    weights_url: str
    preprocess: str  # caffe, tf, torch or none (see preprocessing.py)
    input_size: int
    min_size: int = 32  # the smallest input keras.applications accepts


def _model(builder, weights_file, weights_hash, folder, preprocess, input_size=224, **kw) -> BuiltinModel:
    return BuiltinModel(builder, weights_file, weights_hash, f"{folder}{weights_file}", preprocess, input_size, **kw)


BUILTIN_MODELS = {
    "vgg16": _model("VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "6d6bbae143d832006294945121d1f1fc", KERAS_APPS + "vgg16/", "caffe", 96),
    "vgg19": _model("VGG19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "253f8cb515780f3b799900260a226db6", KERAS_APPS + "vgg19/", "caffe"),
    "resnet50": _model("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "4d473c1dd8becc155b73f8504c6f6626", KERAS_APPS + "resnet/", "caffe"),
    "resnet50v2": _model("ResNet50V2", "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                         "fac2f116257151a9d068a22e544a4917", KERAS_APPS + "resnet/", "tf"),
    "mobilenet": _model("MobileNet", "mobilenet_1_0_224_tf_no_top.h5", None, KERAS_APPS + "mobilenet/", "tf"),
    "mobilenet_v2": _model("MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                           None, KERAS_APPS + "mobilenet_v2/", "tf"),
    "inception_v3": _model("InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                           "bcbd6486424b2319ff4ef7d526e38f63", KERAS_APPS + "inception_v3/", "tf", 299,
                           min_size=75),
    "densenet121": _model("DenseNet121", "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          "30ee3e1110167f948a6b9946edeeb738", KERAS_APPS + "densenet/", "torch"),
    # EfficientNet and ConvNeXt scale and normalize inside the model: they take 0..255 RGB.
    "efficientnetb0": _model("EfficientNetB0", "efficientnetb0_notop.h5", "50bc09e76180e00e4465e1a485ddc09d",
                             "https://storage.googleapis.com/keras-applications/", "none"),
    "convnext_tiny": _model("ConvNeXtTiny", "convnext_tiny_notop.h5",
                            "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
                            KERAS_APPS + "convnext/", "none"),
}

# keras.applications names its models so: a saved one is recognised by its name.
FAMILY_OF_MODEL_NAME = [
    (r"vgg1[69]", "vgg16"), (r"resnet\d+v2", "resnet50v2"), (r"resnet\d+", "resnet50"),
    (r"mobilenetv2_", "mobilenet_v2"), (r"mobilenet_", "mobilenet"), (r"inception_v3", "inception_v3"),
    (r"densenet\d+", "densenet121"), (r"efficientnet", "efficientnetb0"), (r"convnext_", "convnext_tiny"),
]


def family_of(model_name: str) -> str | None:
    """The built-in family a saved keras.applications model belongs to, by its name."""
    for pattern, family in FAMILY_OF_MODEL_NAME:
        if re.match(pattern, model_name):
            return family
    return None


def is_model_file(model: str) -> bool:
    return model.endswith((".keras", ".h5", ".onnx")) or os.sep in model


def builtin_spec(model: str) -> BuiltinModel:
    try:
        return BUILTIN_MODELS[model]
    except KeyError:
        not_keras_file(model)
        choices = ", ".join(sorted(BUILTIN_MODELS))
        raise AtlasError(
            f"unknown model {model!r}; choose one of: {choices}, or a path to a .keras or .onnx file"
        ) from None


def not_keras_file(model: str) -> None:
    """A TensorFlow SavedModel folder holds a graph, not Keras layers: say what to do instead."""
    path = os.path.expanduser(model)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise AtlasError(f"{model} is a TensorFlow SavedModel folder, which keeps no Keras layers to visualize: "
                         "where the model was made, save it as a Keras file, model.save('MODEL.keras'), "
                         "and pass that")
