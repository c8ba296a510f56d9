"""The built-in networks: keras.applications models by name, with their weights files."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import AtlasError

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


def is_model_file(model: str) -> bool:
    return model.endswith((".keras", ".h5")) or os.sep in model


def builtin_spec(model: str) -> BuiltinModel:
    try:
        return BUILTIN_MODELS[model]
    except KeyError:
        choices = ", ".join(sorted(BUILTIN_MODELS))
        raise AtlasError(
            f"unknown model {model!r}; choose one of: {choices}, or a path to a .keras file"
        ) from None
