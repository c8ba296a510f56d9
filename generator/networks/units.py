"""A network's conv layers, and the model truncated at one of them."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AtlasError
from ..tf_quiet import import_keras
from .blocks import block_of


@dataclass(frozen=True)
class ConvLayer:
    name: str
    block: str
    filters: int


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
