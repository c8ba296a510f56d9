"""BatchNorm folded into the convolution before it, for inference.

At inference a BatchNormalization layer is a per-channel affine map,
`gamma * (x - mean) / sqrt(var + eps) + beta`; after a linear convolution it
can be merged into that convolution's kernel and bias. The network computes
the same function, up to float rounding, with one pass less over every
activation forward and backward. On MobileNet, whose steps are bound by
memory traffic rather than arithmetic, that is a tenth of a picture's time
in float32 and a fifth in bfloat16
(measured in the README, *Less work per picture*).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..tf_quiet import import_keras
from .nesting import clone_layer, copy_weights

FOLDABLE = ("Conv2D", "DepthwiseConv2D")


def foldable_pairs(model) -> dict[str, str]:
    """{BatchNorm layer name: the convolution it folds into}: a BatchNorm over
    the last axis whose only input is a built-in convolution's output that
    nothing else reads, with no activation of its own."""
    return pairs_in(model.layers, lambda layer: len(layer._inbound_nodes), lambda: reader_counts(model))


def pairs_in(layers, calls, readers) -> dict[str, str]:
    """foldable_pairs among `layers`, where `calls(layer)` is how many times the
    graph calls a layer and `readers()` counts each tensor's readers (by id)."""
    counted = None  # counted once, where there is a candidate
    pairs = {}
    for layer in layers:
        if type(layer).__name__ != "BatchNormalization" or not type(layer).__module__.startswith("keras"):
            continue
        if layer.axis not in (-1, [-1], [3], 3) or calls(layer) != 1:
            continue
        source = layer.input._keras_history[0]
        if (type(source).__name__ not in FOLDABLE or not type(source).__module__.startswith("keras")
                or source.get_config().get("activation") != "linear" or calls(source) != 1
                or source.data_format != "channels_last"  # the BatchNorm's channels are the kernel's last axis
                or len(source.weights) != 1 + source.use_bias):  # a plain kernel (not LoRA, not quantized)
            continue
        counted = counted or readers()
        if counted[id(source.output)] != 1:
            continue
        pairs[layer.name] = source.name
    return pairs


def reader_counts(model) -> Counter:
    """Per tensor (by id), how many operations of `model` read it (layers, and
    operations that are not layers, such as keras.ops.add), counting the
    model's own outputs among them: one pass over the graph."""
    counts = Counter(id(t) for t in model.outputs)
    for operation in getattr(model, "operations", None) or model.layers:  # a Sequential has layers only
        for node in operation._inbound_nodes:
            counts.update({id(t) for t in node.input_tensors})
    return counts


def folded_weights(conv, norm) -> list[np.ndarray]:
    """The kernel and bias of `conv` followed by `norm` at inference."""
    weights = conv.get_weights()
    kernel, bias = weights[0], (weights[1] if len(weights) > 1 else 0.0)
    config = norm.get_config()
    values = dict(zip([w.path.split("/")[-1] for w in norm.weights], norm.get_weights()))
    gamma = values.get("gamma", 1.0) if config["scale"] else 1.0
    beta = values.get("beta", 0.0) if config["center"] else 0.0
    mean, variance = values["moving_mean"], values["moving_variance"]
    scale = (gamma / np.sqrt(variance + config["epsilon"])).astype(np.float64)
    if type(conv).__name__ == "DepthwiseConv2D":  # kernel (h, w, in, multiplier): out = in * multiplier
        shaped = scale.reshape(kernel.shape[2], kernel.shape[3])[None, None]
    else:  # kernel (h, w, in, out)
        shaped = scale
    new_kernel = (kernel * shaped).astype(kernel.dtype)
    new_bias = ((bias - mean) * scale + beta).astype(kernel.dtype)
    return [new_kernel, new_bias]


def folded_norm_layer():
    """The identity, called as a BatchNorm is (with `mask` and `training`)."""
    keras = import_keras()

    class FoldedBatchNorm(keras.layers.Layer):
        def call(self, inputs, mask=None, training=None):
            return inputs

    return FoldedBatchNorm


def folds_batchnorm(model) -> bool:
    """Whether pictures of `model` are made with its BatchNorms folded: where
    it has any foldable one (the rule its description records)."""
    return bool(foldable_pairs(model))


def fold_batchnorm(model, pairs: dict[str, str] | None = None):
    """A copy of `model` with each BatchNorm of `pairs` ({BatchNorm: convolution},
    default: every foldable one) merged into its convolution (the BatchNorm left
    as the identity under its own name, so that outputs taken there stay where
    they were); `model` itself where there is none to fold."""
    pairs = foldable_pairs(model) if pairs is None else pairs
    if not pairs:
        return model
    present = {layer.name for layer in model.layers}
    if not set(pairs) | set(pairs.values()) <= present:
        raise ValueError(f"cannot fold {sorted(set(pairs) - present)}: not layers of {model.name}")
    keras = import_keras()
    convs = set(pairs.values())
    folded_norm = folded_norm_layer()

    def clone(layer):
        if layer.name in pairs:
            return folded_norm(name=layer.name, dtype=layer.dtype_policy.name)
        if layer.name in convs:
            return clone_layer(layer, use_bias=True)
        return clone_layer(layer)

    copy = keras.models.clone_model(model, clone_function=clone)
    by_name = {layer.name: layer for layer in model.layers}
    norm_of = {conv: norm for norm, conv in pairs.items()}
    for layer in copy.layers:
        if layer.name in pairs or not layer.weights:
            continue
        source = by_name[layer.name]
        if layer.name in convs:
            layer.set_weights(folded_weights(source, by_name[norm_of[layer.name]]))
        else:
            copy_weights(layer, source)
    return copy


def unit_fold_pairs(model, layer_name: str, unit) -> dict[str, str]:
    """{BatchNorm: convolution}, by the network's layer names, that a picture of
    `layer_name`'s unit folds: foldable_pairs of the network truncated at that
    unit, as the pictures' engine runs it, found on the network's own graph
    (the part of it the unit's outputs are computed from) without copying it."""
    from .units import unit_outputs

    outputs = list(unit_outputs(model, unit))
    nodes = graph_nodes(outputs)
    calls = Counter(id(operation) for operation, _ in nodes)
    layers = list({id(operation): operation for operation, _ in nodes}.values())

    def readers():
        counts = Counter(id(t) for t in outputs)
        for _, node in nodes:
            counts.update({id(t) for t in node.input_tensors})
        return counts

    return pairs_in(layers, lambda layer: calls[id(layer)], readers)


def graph_nodes(outputs) -> list:
    """(operation, node) of every call the tensors `outputs` are computed through."""
    seen, found, stack = set(), [], list(outputs)
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        operation, node_index = history[0], history[1]
        if (id(operation), node_index) in seen:
            continue
        seen.add((id(operation), node_index))
        node = operation._inbound_nodes[node_index]
        found.append((operation, node))
        stack.extend(node.input_tensors)
    return found


def in_copy(pairs: dict[str, str], copy) -> dict[str, str]:
    """`pairs` by the network's layer names, as the names of `copy` (a neutral copy: units.neutral_copy)."""
    renamed = {original: name for name, original in copy.original_names.items()}
    return {renamed.get(norm, norm): renamed.get(conv, conv) for norm, conv in pairs.items()}
