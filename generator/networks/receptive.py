"""Receptive fields: which pixels of the input a unit at (y, x) of a layer sees.

Walked through the network's graph from the input, per axis: `size` (input
pixels a unit sees), `jump` (input pixels between neighbouring units) and
`start` (input coordinate of the centre of unit 0), from each layer's kernel
size, stride, dilation and padding. Where branches meet (Add, Concatenate)
the widest field wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..tf_quiet import import_keras


@dataclass(frozen=True)
class Field:
    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]

    def box(self, y: int, x: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the field of unit (y, x), clipped to the image."""
        if math.isinf(self.size[0]) or math.isinf(self.size[1]):  # after global pooling: everything
            return 0, 0, width, height
        cy, cx = self.start[0] + y * self.jump[0], self.start[1] + x * self.jump[1]
        half_h, half_w = self.size[0] / 2, self.size[1] / 2
        left, top = max(0, math.floor(cx - half_w + 0.5)), max(0, math.floor(cy - half_h + 0.5))
        right, bottom = min(width, math.ceil(cx + half_w + 0.5)), min(height, math.ceil(cy + half_h + 0.5))
        return left, top, max(right, left + 1), max(bottom, top + 1)


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def through_window(field: Field, kernel, strides, dilation, padding: str, in_size) -> Field:
    """A convolution or pooling window: TensorFlow's 'same' pads the lower side by half the total."""
    size, jump, start = [], [], []
    for axis in range(2):
        k = (kernel[axis] - 1) * dilation[axis] + 1
        s, n = strides[axis], in_size[axis]
        if padding == "same":
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            before = total // 2
        else:
            before = 0
        size.append(field.size[axis] + (k - 1) * field.jump[axis])
        start.append(field.start[axis] + ((k - 1) / 2 - before) * field.jump[axis])
        jump.append(field.jump[axis] * s)
    return Field(tuple(size), tuple(jump), tuple(start))


def through_layer(layer, field: Field, in_shape) -> Field:
    """The field after `layer`, given the field of its input."""
    keras = import_keras()
    in_size = (in_shape[1] or 1, in_shape[2] or 1) if len(in_shape) == 4 else (1, 1)
    if hasattr(layer, "layers") and not isinstance(layer, keras.layers.InputLayer):  # a nested Sequential
        for inner in layer.layers:
            field = through_layer(inner, field, inner.input.shape)
        return field
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        return through_window(field, pair(layer.kernel_size), pair(layer.strides),
                              pair(getattr(layer, "dilation_rate", 1)), layer.padding, in_size)
    if hasattr(layer, "pool_size"):
        return through_window(field, pair(layer.pool_size), pair(layer.strides or layer.pool_size), (1, 1),
                              layer.padding, in_size)
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return Field(field.size, field.jump,
                     (field.start[0] - top * field.jump[0], field.start[1] - left * field.jump[1]))
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
        return Field((math.inf, math.inf), field.jump, field.start)
    return field


def receptive_fields(model, layer_names) -> dict[str, Field]:
    """The field of every named layer's units."""
    fields: dict[int, Field] = {id(model.inputs[0]): Field((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))}
    wanted = set(layer_names)
    found = {}
    for layer in model.layers:
        try:
            inputs, output = layer.input, layer.output
        except (AttributeError, ValueError):
            continue
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        known = [fields[id(t)] for t in inputs if id(t) in fields]
        if not known or isinstance(output, (list, tuple)):
            continue
        widest = max(known, key=lambda f: f.size[0] * f.size[1])
        fields[id(output)] = through_layer(layer, widest, inputs[0].shape)
        if layer.name in wanted:
            found[layer.name] = fields[id(output)]
    return found
