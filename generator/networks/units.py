"""A network's conv layers, the unit each of their filters stands for, and the
model truncated at that unit.

The unit rule: a filter of a conv layer is its output channel *after* the
per-channel layers that follow the convolution (BatchNormalization), since
those can flip its sign or rescale it, and before or after the ReLU-like
nonlinearity that comes next, as the method asks. A nonlinearity is either
the conv layer's own `activation` or a separate activation layer (ReLU,
Activation, LeakyReLU, ...) that alone consumes the unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AtlasError
from ..tf_quiet import import_keras
from .nesting import clone_layer, copy_weights


@dataclass(frozen=True)
class ConvLayer:
    name: str
    block: str
    filters: int
    kind: str = "conv"  # conv, depthwise or separable
    resolution: tuple[int, int] | None = None  # output height, width


@dataclass(frozen=True)
class Unit:
    """Where a conv layer's unit output is in the network's graph."""

    conv: str
    per_channel: tuple[str, ...]  # layers after the conv that act on each channel alone
    nonlinearity: str | None  # a separate activation layer, or "own" for the conv's activation

    def key(self) -> dict:
        """What a cache key needs beyond the conv layer: empty for a bare conv
        with its own activation (VGG's), so those keys stay as they were."""
        if not self.per_channel and self.nonlinearity in (None, "own"):
            return {}
        return {"unit": [*self.per_channel, self.nonlinearity or ""]}


def conv_classes():
    keras = import_keras()
    return {
        keras.layers.Conv2D: "conv",
        keras.layers.DepthwiseConv2D: "depthwise",
        keras.layers.SeparableConv2D: "separable",
    }


def conv_kind(layer) -> str | None:
    for cls, kind in conv_classes().items():
        if isinstance(layer, cls):
            return kind
    return None


def conv_layers(keras_model) -> list[tuple[object, str]]:
    """Every 2-D convolution in the model, in order, with its kind: a flattened
    model's (see nesting.py) in the order its sub-models were walked in."""
    found = [(layer, kind) for layer in keras_model.layers if (kind := conv_kind(layer))]
    return sorted(found, key=lambda pair: getattr(pair[0], "_atlas_order", 0))


def not_a_conv_layer(name: str, conv_names, exists: bool) -> AtlasError:
    """The error for a layer name that is no conv layer, listing the ones there are
    (or, for a name that sub-models share, the qualified names it stands for)."""
    shared = [conv for conv in conv_names if conv.endswith(f"/{name}")]
    if shared and not exists:
        return AtlasError(f"layer {name!r} is in several sub-models; name one: {', '.join(shared)}")
    problem = "is not a convolution" if exists else "is unknown"
    return AtlasError(f"layer {name!r} {problem}; conv layers are: {', '.join(conv_names)}")


def get_conv_layer(model, layer_name: str):
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        layer = None
    if layer is None or conv_kind(layer) is None:
        convs = [layer.name for layer, _ in conv_layers(model)]
        raise not_a_conv_layer(layer_name, convs, exists=layer is not None)
    return layer


def consumers(model, tensor) -> list:
    """The model's layers that take `tensor` as (one of) their inputs."""
    found = []
    for layer in model.layers:
        try:
            inputs = layer.input
        except (AttributeError, ValueError):  # an input layer, or a layer used twice
            continue
        flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if any(t is tensor for t in flat):
            found.append(layer)
    return found


def is_per_channel(layer) -> bool:
    keras = import_keras()
    return isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, 3, [-1], [3])


def is_nonlinearity(layer) -> bool:
    keras = import_keras()
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU)):
        return True
    if isinstance(layer, keras.layers.Activation):
        name = getattr(layer.activation, "__name__", "")
        return name not in ("linear", "softmax", "log_softmax")
    return False


def has_own_nonlinearity(layer) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", "linear") != "linear"


def find_unit(model, layer_name: str) -> Unit:
    """Follow the conv's output through the layers that act on each channel alone."""
    layer = get_conv_layer(model, layer_name)
    if has_own_nonlinearity(layer):
        return Unit(layer.name, (), "own")
    tensor, chain = layer.output, []
    while len(after := consumers(model, tensor)) == 1 and is_per_channel(after[0]):
        chain.append(after[0].name)
        tensor = after[0].output
    after = consumers(model, tensor)
    nonlinearity = after[0].name if len(after) == 1 and is_nonlinearity(after[0]) else None
    return Unit(layer.name, tuple(chain), nonlinearity)


def unit_outputs(model, unit: Unit):
    """The unit's output before and after its nonlinearity, as tensors of `model`'s graph."""
    keras = import_keras()
    layer = model.get_layer(unit.conv)
    if unit.nonlinearity == "own":
        # The same convolution without its activation, then the activation alone.
        linear = layer.__class__.from_config({**layer.get_config(), "activation": "linear",
                                              "name": f"{layer.name.replace('/', '__')}__linear"})
        pre = linear(layer.input)
        linear.set_weights(layer.get_weights())
        return pre, keras.layers.Activation(layer.activation)(pre)
    pre = model.get_layer(unit.per_channel[-1]).output if unit.per_channel else layer.output
    post = model.get_layer(unit.nonlinearity).output if unit.nonlinearity else pre
    return pre, post


def unit_model(model, layer_name: str, dtype: str | None = None, unit: Unit | None = None):
    """The model truncated at a conv layer's unit (`unit`, else the one
    find_unit finds), with two outputs: before and after its nonlinearity,
    optionally computing in another dtype policy."""
    pre, post = unit_outputs(model, unit or find_unit(model, layer_name))
    return neutral_copy(import_keras().Model(model.input, [pre, post]), dtype)


def truncated(model, layer_name: str, pre_activation: bool = False, dtype: str | None = None):
    """The model truncated at a conv layer's unit output (after its nonlinearity,
    or before it on request): one output, as the seed's `get_submodel` has."""
    unit = find_unit(model, layer_name)
    if unit.nonlinearity == "own" and not pre_activation:
        output = model.get_layer(layer_name).output  # exactly the seed's submodel
    else:
        pre, post = unit_outputs(model, unit)
        output = pre if pre_activation else post
    return neutral_copy(import_keras().Model(model.input, output), dtype)


def layers_model(model, layer_names: list[str], pre_activation: bool = True):
    """One model whose outputs are the units of several conv layers (before or
    after their nonlinearity): every layer in one forward pass."""
    outputs = []
    for name in layer_names:
        pre, post = unit_outputs(model, find_unit(model, name))
        outputs.append(pre if pre_activation else post)
    return neutral_copy(import_keras().Model(model.input, outputs), None)


def neutral_copy(sub, dtype: str | None):
    """A copy whose layers have neutral names: a model may name its layers
    anything, but TensorFlow's graph scopes accept only a few characters.
    A model's own (custom) layers keep their dtype: their code may use
    operations that have no kernel for another (TensorFlow's LRN on a CPU
    has none for bfloat16), and Keras casts what goes in and out of them."""
    keras = import_keras()
    names = iter(range(len(sub.layers)))
    original_names = {}

    def neutral(original):
        config = {"name": f"layer{next(names)}"}
        original_names[config["name"]] = original.name
        if dtype and type(original).__module__.startswith("keras"):
            config["dtype"] = dtype
        return clone_layer(original, **config)

    copy = keras.models.clone_model(sub, clone_function=neutral)
    copy_weights(copy, sub)
    copy.original_names = original_names  # the copy's layer name -> the network's
    return copy


def any_size(sub):
    """A copy of a truncated model that runs at any input height and width
    (a conv net does), for steps at a fraction of the input size."""
    keras = import_keras()
    channels = sub.input_shape[-1]
    copy = keras.models.clone_model(sub, input_tensors=keras.Input((None, None, channels)))
    copy_weights(copy, sub)
    return copy


def input_shape(keras_model) -> tuple[int, int, int]:
    _, height, width, channels = keras_model.input_shape
    return int(height), int(width), int(channels)
