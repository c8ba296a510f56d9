"""ONNX ops as Keras layers, for the ops convolutional networks use.

ONNX tensors are NCHW; the Keras graph is NHWC (TensorFlow's CPU kernels want
channels last). Every rank-4 value is therefore held channels-last, and each
op maps its axes, pads and weights accordingly. Rank-2 values (a classifier
head) are the same in both. A node whose inputs are all constants is computed
here, never made a layer (the TorchScript exporter's padding arithmetic).
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import AtlasError
from ...tf_quiet import import_keras
from . import layers as onnx_layers
from .graph import attributes, evaluate, module_path

keras = import_keras()


class Graph:
    """The Keras graph as it is built: each ONNX value's Keras tensor or
    constant array, and the layer names taken so far."""

    def __init__(self, constants: dict[str, np.ndarray], opset: int, path):
        self.values: dict[str, object] = dict(constants)
        self.opset, self.path = opset, path
        self.taken: set[str] = set()
        self.count = 0

    def is_constant(self, name: str) -> bool:
        return not name or isinstance(self.values.get(name), np.ndarray)

    def constant(self, node, index: int, default=None):
        if index >= len(node.input) or not node.input[index]:
            return default
        value = self.values.get(node.input[index])
        if not isinstance(value, np.ndarray):
            raise self.unsupported(node, f"its input {index} must be a constant (from the weights)")
        return value

    def tensor(self, node, index: int = 0):
        value = self.values[node.input[index]]
        if isinstance(value, np.ndarray):
            raise self.unsupported(node, f"its input {index} is a constant where a tensor was expected")
        return value

    def name(self, node, suffix: str = "") -> str:
        """The layer's name: the node's module path (and `suffix`), unique."""
        self.count += 1
        base = (module_path(node) or f"{node.op_type.lower()}_{self.count}") + suffix
        base = base.replace("/", ".").replace(":", "_")
        name, n = base, 1
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def unsupported(self, node, why: str) -> AtlasError:
        where = module_path(node)
        return AtlasError(
            f"{self.path}: ONNX op {node.op_type} (node {node.name!r}"
            f"{f', module {where}' if where else ''}) cannot be converted: {why}; "
            "export the model without it (e.g. only its convolutional part), or convert "
            "it to Keras yourself and pass the .keras file")

    def add(self, node) -> None:
        """Convert one node, or compute it when all its inputs are constants."""
        if all(self.is_constant(name) for name in node.input) and node.op_type in FOLDABLE:
            outputs = fold(self, node)
        else:
            convert = CONVERTERS.get(node.op_type)
            if convert is None:
                raise self.unsupported(node, f"the converter handles {', '.join(sorted(CONVERTERS))}")
            outputs = convert(self, node, attributes(node))
            outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, value in zip(node.output, outputs):
            self.values[name] = value


def fold(graph: Graph, node) -> list[np.ndarray]:
    if node.op_type == "Constant":
        from onnx import numpy_helper

        attr = node.attribute[0]
        value = (numpy_helper.to_array(attr.t) if attr.name == "value"
                 else np.asarray(attributes(node)[attr.name]))
        return [value]
    inputs = [graph.values[name] if name else None for name in node.input]
    return evaluate(node, inputs, graph.opset)


FOLDABLE = {"Constant", "ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Gather",
            "Unsqueeze", "Squeeze", "Add", "Sub", "Mul", "Div", "Range", "Shape", "Identity", "Neg",
            "Equal", "Where", "Expand", "Floor", "Ceil", "Sqrt", "Pow"}


# --- geometry ---------------------------------------------------------------

def spatial_pads(pads, auto_pad: str, in_size, kernel, strides, dilations, node, graph):
    """ONNX pads or auto_pad -> ((top, bottom), (left, right))."""
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("", "NOTSET"):
        pads = list(pads or [0, 0, 0, 0])
        return (pads[0], pads[2]), (pads[1], pads[3])
    if auto_pad == "VALID":
        return (0, 0), (0, 0)
    out = []
    for size, k, s, d in zip(in_size, kernel, strides, dilations):
        if size is None:
            raise graph.unsupported(node, "auto_pad SAME needs a fixed input size; pass --input-size")
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        out.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
    return tuple(out)


def padded(graph, node, x, pads, value: float = 0.0, suffix: str = "_pad"):
    if pads == ((0, 0), (0, 0)):
        return x
    if value == 0.0:
        return keras.layers.ZeroPadding2D(pads, name=graph.name(node, suffix))(x)
    return onnx_layers.ConstantPadding2D(pads, value=value, name=graph.name(node, suffix))(x)


def spatial_size(x):
    return tuple(x.shape[1:3])


# --- ops --------------------------------------------------------------------

def conv(graph: Graph, node, attrs):
    x, weight = graph.tensor(node), graph.constant(node, 1)
    bias = graph.constant(node, 2)
    if weight.ndim != 4:
        raise graph.unsupported(node, f"only 2-D convolutions are handled, this one's weight is {weight.ndim}-D")
    out_channels, group_in, kh, kw = weight.shape
    group, channels = attrs.get("group", 1), x.shape[-1]
    strides, dilations = tuple(attrs.get("strides", (1, 1))), tuple(attrs.get("dilations", (1, 1)))
    pads = spatial_pads(attrs.get("pads"), attrs.get("auto_pad", "NOTSET"), spatial_size(x), (kh, kw),
                        strides, dilations, node, graph)
    name = graph.name(node)
    same = all(s == 1 and (k - 1) * d == 2 * begin == 2 * end
               for s, k, d, (begin, end) in zip(strides, (kh, kw), dilations, pads))
    if not same:  # Keras's "same" where it is exactly that, else the pads as a layer of their own
        x = padded(graph, node, x, pads)
    common = dict(strides=strides, dilation_rate=dilations, padding="same" if same else "valid",
                  use_bias=bias is not None, name=name)
    if group == channels and group > 1 and group_in == 1:
        layer = keras.layers.DepthwiseConv2D((kh, kw), depth_multiplier=out_channels // channels, **common)
        # PyTorch's output channel c * multiplier + m is TensorFlow's too
        kernel = weight.reshape(channels, out_channels // channels, kh, kw).transpose(2, 3, 0, 1)
    else:
        layer = keras.layers.Conv2D(out_channels, (kh, kw), groups=group, **common)
        kernel = weight.transpose(2, 3, 1, 0)
    y = layer(x)
    layer.set_weights([kernel] + ([bias] if bias is not None else []))
    return y


def batch_norm(graph: Graph, node, attrs):
    x = graph.tensor(node)
    scale, shift, mean, var = (graph.constant(node, i) for i in range(1, 5))
    layer = keras.layers.BatchNormalization(axis=-1, epsilon=attrs.get("epsilon", 1e-5), name=graph.name(node))
    y = layer(x)
    layer.set_weights([scale, shift, mean, var])
    return y


def relu(graph, node, attrs):
    return keras.layers.ReLU(name=graph.name(node))(graph.tensor(node))


def clip(graph, node, attrs):
    low = graph.constant(node, 1, attrs.get("min"))
    high = graph.constant(node, 2, attrs.get("max"))
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if low == 0.0:
        return keras.layers.ReLU(max_value=high, name=graph.name(node))(graph.tensor(node))
    return onnx_layers.Clip(low, high, name=graph.name(node))(graph.tensor(node))


def leaky_relu(graph, node, attrs):
    return keras.layers.LeakyReLU(negative_slope=attrs.get("alpha", 0.01), name=graph.name(node))(graph.tensor(node))


def activation(function: str):
    def convert(graph, node, attrs):
        return keras.layers.Activation(function, name=graph.name(node))(graph.tensor(node))
    return convert


def hard_sigmoid(graph, node, attrs):
    if not (math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-4) and math.isclose(attrs.get("beta", 0.5), 0.5)):
        raise graph.unsupported(node, "only PyTorch's hardsigmoid (alpha 1/6, beta 0.5) is handled")
    return keras.layers.Activation("hard_sigmoid", name=graph.name(node))(graph.tensor(node))


def softmax(graph, node, attrs):
    x = graph.tensor(node)
    axis = attrs.get("axis", -1)
    if len(x.shape) == 4:
        axis = {1: -1, -3: -1}.get(axis, None)
        if axis is None:
            raise graph.unsupported(node, "only a softmax over channels is handled")
    return keras.layers.Softmax(axis=axis, name=graph.name(node))(x)


def nchw_constant(value: np.ndarray, rank: int) -> np.ndarray:
    """A constant broadcast against a rank-4 NCHW tensor, laid out for NHWC."""
    value = np.asarray(value, np.float32)
    if rank != 4 or value.ndim <= 1 and value.size == 1:
        return value
    value = value.reshape((1,) * (4 - value.ndim) + value.shape)
    return value.transpose(0, 2, 3, 1)


def arithmetic(graph: Graph, node, attrs):
    """Add, Sub, Mul, Div: of two tensors (a residual sum, a gate), or of a tensor and a constant."""
    first, second = node.input[0], node.input[1]
    if not graph.is_constant(first) and not graph.is_constant(second):
        merge = {"Add": keras.layers.Add, "Sub": keras.layers.Subtract, "Mul": keras.layers.Multiply}.get(node.op_type)
        if merge is None:
            raise graph.unsupported(node, "a division of two tensors is not handled")
        return merge(name=graph.name(node))([graph.values[first], graph.values[second]])
    constant_first = graph.is_constant(first)
    x = graph.values[second if constant_first else first]
    value = nchw_constant(graph.values[first if constant_first else second], len(x.shape))
    layer = onnx_layers.ConstantOp(node.op_type, value.shape, constant_first=constant_first, name=graph.name(node))
    y = layer(x)
    layer.set_weights([value])
    return y


def concat(graph, node, attrs):
    tensors = [graph.values[name] for name in node.input]
    if any(isinstance(t, np.ndarray) for t in tensors):
        raise graph.unsupported(node, "a concatenation with a constant is not handled")
    rank, axis = len(tensors[0].shape), attrs["axis"]
    if axis not in (1, 1 - rank):
        raise graph.unsupported(node, "only a concatenation of channels is handled")
    return keras.layers.Concatenate(axis=-1, name=graph.name(node))(tensors)


def pool_pads(graph, node, attrs, x, kernel, strides):
    """Pads of a pooling node, with ceil_mode's extra rows and columns at the end
    (PyTorch's rule: no window starts in the padding at the end)."""
    pads = spatial_pads(attrs.get("pads"), attrs.get("auto_pad", "NOTSET"), spatial_size(x), kernel, strides,
                        (1, 1), node, graph)
    if not attrs.get("ceil_mode", 0):
        return pads
    ends = []
    for size, k, s, (begin, end) in zip(spatial_size(x), kernel, strides, pads):
        out = math.ceil((size + begin + end - k) / s) + 1
        if (out - 1) * s >= size + begin:
            out -= 1
        ends.append((begin, max(end, (out - 1) * s + k - size - begin)))
    return tuple(ends)


def max_pool(graph, node, attrs):
    x = graph.tensor(node)
    kernel, strides = tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", (1, 1)))
    if len(kernel) != 2 or tuple(attrs.get("dilations", (1, 1))) != (1, 1) or len(node.output) > 1:
        raise graph.unsupported(node, "only 2-D max pooling without dilation or indices is handled")
    x = padded(graph, node, x, pool_pads(graph, node, attrs, x, kernel, strides), value=-math.inf)
    return keras.layers.MaxPooling2D(kernel, strides, name=graph.name(node))(x)


def average_pool(graph, node, attrs):
    x = graph.tensor(node)
    kernel, strides = tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", (1, 1)))
    pads = pool_pads(graph, node, attrs, x, kernel, strides)
    if attrs.get("count_include_pad", 0) or pads == ((0, 0), (0, 0)):
        x = padded(graph, node, x, pads)
        return keras.layers.AveragePooling2D(kernel, strides, name=graph.name(node))(x)
    same = tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel)
    if strides == (1, 1) and pads == same:  # TensorFlow's "same" leaves the padding out of the mean too
        return keras.layers.AveragePooling2D(kernel, strides, padding="same", name=graph.name(node))(x)
    raise graph.unsupported(node, "average pooling with count_include_pad=0 and uneven padding is not handled")


def global_pool(layer):
    def convert(graph, node, attrs):
        return layer(keepdims=True, name=graph.name(node))(graph.tensor(node))
    return convert


def reduce_mean(graph, node, attrs):
    x = graph.tensor(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        axes = graph.constant(node, 1).tolist()
    if len(x.shape) != 4 or sorted(a % 4 for a in axes or []) != [2, 3]:
        raise graph.unsupported(node, "only a mean over height and width is handled")
    keepdims = bool(attrs.get("keepdims", 1))
    return keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name=graph.name(node))(x)


def channels_first_flat(graph, node, x):
    """A rank-4 tensor flattened in NCHW order, as ONNX flattens it."""
    if spatial_size(x) != (1, 1):
        x = keras.layers.Permute((3, 1, 2), name=graph.name(node, "_nchw"))(x)
    return keras.layers.Flatten(name=graph.name(node))(x)


def flatten(graph, node, attrs):
    x = graph.tensor(node)
    if attrs.get("axis", 1) != 1:
        raise graph.unsupported(node, "only a flatten after the batch axis is handled")
    return channels_first_flat(graph, node, x) if len(x.shape) == 4 else x


def reshape(graph, node, attrs):
    """The reshapes of a classifier head: to [batch, features] and back to [batch, C, 1, 1]."""
    x, shape = graph.tensor(node), [int(d) for d in graph.constant(node, 1)]
    rest = shape[1:]
    if len(rest) == 1 and len(x.shape) == 4 and rest[0] in (-1, int(np.prod(x.shape[1:]))):
        return channels_first_flat(graph, node, x)
    if len(rest) == 1 and len(x.shape) == 2 and rest[0] in (-1, x.shape[1]):
        return x
    if len(rest) == 3 and len(x.shape) == 2 and rest[1:] == [1, 1]:
        return keras.layers.Reshape((1, 1, x.shape[1]), name=graph.name(node))(x)
    raise graph.unsupported(node, f"a reshape of {list(x.shape)} to {shape} is not handled")


def squeeze(graph, node, attrs):
    x = graph.tensor(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        axes = graph.constant(node, 1).tolist()
    if len(x.shape) == 4 and spatial_size(x) == (1, 1) and sorted(a % 4 for a in axes or [2, 3]) == [2, 3]:
        return keras.layers.Flatten(name=graph.name(node))(x)
    raise graph.unsupported(node, "only squeezing a 1x1 map to [batch, channels] is handled")


def unsqueeze(graph, node, attrs):
    x = graph.tensor(node)
    axes = attrs.get("axes")
    if axes is None:
        axes = graph.constant(node, 1).tolist()
    if len(x.shape) == 2 and sorted(a % 4 for a in axes) == [2, 3]:
        return keras.layers.Reshape((1, 1, x.shape[1]), name=graph.name(node))(x)
    raise graph.unsupported(node, "only unsqueezing [batch, channels] to a 1x1 map is handled")


def gemm(graph, node, attrs):
    x, weight = graph.tensor(node), graph.constant(node, 1)
    bias = graph.constant(node, 2)
    if attrs.get("transA", 0) or len(x.shape) != 2:
        raise graph.unsupported(node, "only x @ W (+ b) on [batch, features] is handled")
    kernel = (weight.T if attrs.get("transB", 0) else weight) * attrs.get("alpha", 1.0)
    layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None, name=graph.name(node))
    y = layer(x)
    layer.set_weights([kernel] + ([np.broadcast_to(bias * attrs.get("beta", 1.0), kernel.shape[1:])]
                                  if bias is not None else []))
    return y


def matmul(graph, node, attrs):
    x, weight = graph.tensor(node), graph.constant(node, 1)
    if len(x.shape) != 2 or weight.ndim != 2:
        raise graph.unsupported(node, "only x @ W on [batch, features] with W from the weights is handled")
    layer = keras.layers.Dense(weight.shape[1], use_bias=False, name=graph.name(node))
    y = layer(x)
    layer.set_weights([weight])
    return y


def pad(graph, node, attrs):
    x = graph.tensor(node)
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = attrs.get("pads")
    if pads is None:
        pads = graph.constant(node, 1).tolist()
    value = graph.constant(node, 2, np.zeros(()))
    if mode != "constant" or len(x.shape) != 4 or len(node.input) > 3 and node.input[3]:
        raise graph.unsupported(node, f"only constant padding of height and width is handled (mode {mode})")
    pads = [int(p) for p in pads]
    if pads[0] or pads[1] or pads[4] or pads[5]:
        raise graph.unsupported(node, "only padding of height and width is handled")
    value = float(np.asarray(value).reshape(-1)[0]) if np.asarray(value).size else 0.0
    return padded(graph, node, x, ((pads[2], pads[6]), (pads[3], pads[7])), value=value, suffix="")


def lrn(graph, node, attrs):
    layer = onnx_layers.LocalResponseNorm(attrs["size"], attrs.get("alpha", 1e-4), attrs.get("beta", 0.75),
                                          attrs.get("bias", 1.0), name=graph.name(node))
    return layer(graph.tensor(node))


def passthrough(graph, node, attrs):
    return graph.values[node.input[0]]


CONVERTERS = {
    "Conv": conv, "BatchNormalization": batch_norm, "Relu": relu, "Clip": clip, "LeakyRelu": leaky_relu,
    "Sigmoid": activation("sigmoid"), "Tanh": activation("tanh"), "HardSwish": activation("hard_silu"),
    "HardSigmoid": hard_sigmoid, "Elu": activation("elu"), "Softmax": softmax,
    "Add": arithmetic, "Sub": arithmetic, "Mul": arithmetic, "Div": arithmetic, "Concat": concat,
    "MaxPool": max_pool, "AveragePool": average_pool,
    "GlobalAveragePool": global_pool(keras.layers.GlobalAveragePooling2D),
    "GlobalMaxPool": global_pool(keras.layers.GlobalMaxPooling2D), "ReduceMean": reduce_mean,
    "Flatten": flatten, "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Gemm": gemm, "MatMul": matmul, "Pad": pad, "LRN": lrn,
    "Dropout": passthrough, "Identity": passthrough,
}
