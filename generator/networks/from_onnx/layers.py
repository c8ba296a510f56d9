"""The few Keras layers an ONNX graph needs that Keras does not have.

Each is registered, so a converted model saved as a .keras file loads again
with plain `keras.models.load_model` once this module is imported. Constants
are weights, not config, so the .keras file keeps them as arrays.
"""

from __future__ import annotations

from ...tf_quiet import import_keras

keras = import_keras()
PACKAGE = "FilterAtlasOnnx"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConstantOp(keras.layers.Layer):
    """x (+, -, *, /) a constant, or the constant (-, /) x: ONNX's Add, Sub, Mul
    and Div with one operand from the weights (a normalization, a scale)."""

    OPS = ("Add", "Sub", "Mul", "Div")

    def __init__(self, op: str, shape, constant_first: bool = False, **kwargs):
        super().__init__(**kwargs)
        if op not in self.OPS:
            raise ValueError(f"ConstantOp: unknown op {op!r}")
        self.op, self.shape, self.constant_first = op, tuple(shape), constant_first
        self.constant = self.add_weight(shape=self.shape, initializer="zeros", trainable=False, name="constant")

    def call(self, x):
        a, b = (self.constant, x) if self.constant_first else (x, self.constant)
        a, b = keras.ops.cast(a, x.dtype), keras.ops.cast(b, x.dtype)
        return {"Add": keras.ops.add, "Sub": keras.ops.subtract,
                "Mul": keras.ops.multiply, "Div": keras.ops.divide}[self.op](a, b)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "shape": list(self.shape),
                "constant_first": self.constant_first}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Clip(keras.layers.Layer):
    """ONNX's Clip where it is not a ReLU (a lower bound other than 0)."""

    def __init__(self, low=None, high=None, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def call(self, x):
        if self.low is not None:
            x = keras.ops.maximum(x, self.low)
        if self.high is not None:
            x = keras.ops.minimum(x, self.high)
        return x

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConstantPadding2D(keras.layers.ZeroPadding2D):
    """Padding with a value other than 0: -inf before a max pool (so the pad
    never wins, as in PyTorch), or a Pad node's own value. A ZeroPadding2D to
    everything that reads the geometry (receptive fields)."""

    def __init__(self, padding=((0, 0), (0, 0)), value: float = 0.0, **kwargs):
        super().__init__(padding=padding, **kwargs)
        self.value = float(value)

    def call(self, x):
        (top, bottom), (left, right) = self.padding
        return keras.ops.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=self.value)

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalResponseNorm(keras.layers.Layer):
    """ONNX's LRN across channels: x / (bias + alpha / size * sum of x² over
    `size` neighbouring channels) ** beta (AlexNet's, GoogLeNet's)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.bias = int(size), float(alpha), float(beta), float(bias)

    def call(self, x):
        before, after = (self.size - 1) // 2, self.size - 1 - (self.size - 1) // 2
        squared = keras.ops.pad(keras.ops.square(x), [[0, 0], [0, 0], [0, 0], [before, after]])
        channels = x.shape[-1]
        window = sum(squared[..., i:i + channels] for i in range(self.size))
        return x / keras.ops.power(self.bias + self.alpha / self.size * window, self.beta)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta,
                "bias": self.bias}
