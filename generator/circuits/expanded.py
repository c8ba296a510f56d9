"""Expanded weights: the linear path from the units of one conv layer to the
units of the next, read off the weights alone (Distill's Circuits thread,
"Visualizing Weights": the expanded weights between two layers).

With the nonlinearities set aside (ReLU, the model's other activations, and
Caffe's LRN), every layer between two convolutions is linear, and in this
module nearly all of them act on each channel alone: BatchNorm (a per-channel
scale; its shift is no weight), zero padding and cropping (shifts), average
pooling, a depthwise convolution that is not itself a unit we stop at, and
Concatenate (which only says into which channel a path goes). Max pooling is
taken as the identity, as the Circuits papers do: at stride 1 (an inception
module's pool branch) it is the identity at the window's centre; where it
strides, the max may be any position of the window, so the identity is spread
evenly over the window (the window's mean). Add, Subtract and Average sum
paths. So a tensor between two conv layers is, per source unit tensor, a list
of *paths*: a per-channel spatial kernel with a stride, an origin, and the
channel each source channel lands in. The next conv's kernel then mixes the
channels: composing it with each path gives a dense kernel
(height, width, source channels, target channels): the expanded weights.

Anything else on the path (Multiply, UpSampling, Reshape, a custom layer, a
Lambda) cannot be followed: `Unfollowable` says which layer, and no number is
made for it. Borders are left out: a kernel is the interior's, where padding
does not reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..networks.folding import folded_weights
from ..networks.units import conv_kind, find_unit

# Layers that are the identity at inference.
IDENTITY = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "InputSpec"}
# Nonlinearities, set aside (the Circuits papers' convention): the unit rule's, and local response normalization.
NONLINEAR = {"ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"}
# A model's own LRN layer (GoogLeNet's CaffeLRN, an ONNX file's LocalResponseNorm) and an
# ONNX file's Clip (a ReLU6 with another floor), by class name.
NONLINEAR_NAMES = ("lrn", "localresponse", "clip")
# Padding by class, subclasses included: an ONNX file's ConstantPadding2D (the -inf border
# PyTorch's max pooling has) is a ZeroPadding2D to everything that reads geometry.
PADDING_KINDS = {"ConstantPadding2D": "ZeroPadding2D"}


class Unfollowable(Exception):
    """The linear path meets a layer it cannot go through."""

    def __init__(self, layer, sources=(), reason: str | None = None):
        self.layer, self.sources = layer, tuple(sources)
        super().__init__(reason or f"the path goes through {layer.name} ({type(layer).__name__}), which is not "
                         "linear and is not a nonlinearity this page may set aside")


@dataclass
class Path:
    """source[y * stride + origin + u, a] * weights[u, a] lands in target channel channels[a], per axis."""

    weights: np.ndarray  # (kh, kw, source channels)
    channels: np.ndarray  # (source channels,) the channel each source channel lands in
    stride: tuple[int, int]
    origin: tuple[int, int]

    def then(self, kernel: np.ndarray, stride, origin) -> "Path":
        """This path, then a per-channel op: out[y, c] = sum_i kernel[i, c] in[y * stride + origin + i, c]."""
        kh, kw = kernel.shape[:2]
        (sh, sw), (ph, pw, _) = self.stride, self.weights.shape
        out = np.zeros(((kh - 1) * sh + ph, (kw - 1) * sw + pw, self.weights.shape[2]), self.weights.dtype)
        per_source = kernel[:, :, self.channels]
        for i in range(kh):
            for j in range(kw):
                out[i * sh:i * sh + ph, j * sw:j * sw + pw] += self.weights * per_source[i, j]
        return Path(out, self.channels, (sh * stride[0], sw * stride[1]),
                    (origin[0] * sh + self.origin[0], origin[1] * sw + self.origin[1]))


def identity_path(channels: int) -> Path:
    return Path(np.ones((1, 1, channels), np.float32), np.arange(channels), (1, 1), (0, 0))


def norm_scale(norm) -> np.ndarray:
    """A BatchNormalization's per-channel scale at inference, gamma / sqrt(var + eps):
    what folding.folded_weights multiplies a kernel by; its shift is no weight."""
    config = norm.get_config()
    values = dict(zip([w.path.split("/")[-1] for w in norm.weights], norm.get_weights()))
    gamma = values.get("gamma", 1.0) if config["scale"] else 1.0
    return (gamma / np.sqrt(values["moving_variance"] + config["epsilon"])).astype(np.float32)


def same_before(size, kernel: int, stride: int) -> int:
    """TensorFlow's 'same' padding before the data, for an input of `size` (None: a multiple of the stride)."""
    if size is None:
        return max(kernel - stride, 0) // 2
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def window_origin(layer, kernel, stride) -> tuple[int, int]:
    """Where a conv's or pool's window starts, relative to y * stride, from its padding."""
    if getattr(layer, "padding", "valid") != "same":
        return 0, 0
    shape = layer.input.shape
    return tuple(-same_before(shape[1 + axis], kernel[axis], stride[axis]) for axis in range(2))


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class Walker:
    """The linear path back from any tensor to the unit tensors it is computed from.

    `stops`: id(tensor) -> the conv layer whose unit that tensor is (before or
    after its nonlinearity); the walk ends there. Memoized per tensor, so an
    inception module's shared input is walked once."""

    def __init__(self, stops: dict[int, str]):
        self.stops = stops
        self.memo: dict[int, dict[str, list[Path]]] = {}

    def paths(self, tensor) -> dict[str, list[Path]]:
        """{source conv layer: [Path, ...]} of `tensor`; raises Unfollowable."""
        key = id(tensor)
        if key not in self.memo:
            try:
                self.memo[key] = self._paths(tensor)
            except _NoSources:  # only the image's own preprocessing lies behind it
                self.memo[key] = {}
        return self.memo[key]

    def _paths(self, tensor) -> dict[str, list[Path]]:
        if id(tensor) in self.stops:
            return {self.stops[id(tensor)]: [identity_path(int(tensor.shape[-1]))]}
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return {}
        layer = history[0]
        inputs = list(layer._inbound_nodes[history[1]].input_tensors)
        if not inputs:  # the model's input: no conv unit before it
            return {}
        kind = type(layer).__name__
        kind = PADDING_KINDS.get(kind, kind)
        if kind in ("Concatenate",):
            return self.concatenate(layer, inputs)
        if kind in ("Add", "Subtract", "Average"):
            return self.combine(kind, inputs)
        upstream = lambda: self.paths(inputs[0])  # noqa: E731
        if len(inputs) != 1:
            raise self.unfollowable(layer, inputs)
        if kind in IDENTITY or kind in NONLINEAR or any(n in kind.lower() for n in NONLINEAR_NAMES):
            return upstream()
        if kind == "Activation":
            return upstream()  # linear, or a nonlinearity set aside
        if kind == "BatchNormalization" and getattr(layer, "axis", None) in (-1, 3, [-1], [3]):
            scale = norm_scale(layer)[None, None]
            return self.each(upstream(), lambda p: p.then(scale, (1, 1), (0, 0)))
        if kind == "Rescaling" and np.ndim(layer.scale) == 0:
            scale = np.full((1, 1, int(tensor.shape[-1])), layer.scale, np.float32)
            return self.each(upstream(), lambda p: p.then(scale, (1, 1), (0, 0)))
        if kind in ("ZeroPadding2D", "Cropping2D"):
            edges = layer.padding if kind == "ZeroPadding2D" else layer.cropping
            sign = -1 if kind == "ZeroPadding2D" else 1
            shift = np.ones((1, 1, int(tensor.shape[-1])), np.float32)
            return self.each(upstream(), lambda p: p.then(shift, (1, 1), (sign * edges[0][0], sign * edges[1][0])))
        if kind in ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            return self.pooling(layer, kind, inputs[0], upstream)
        if kind == "DepthwiseConv2D" and conv_kind(layer) and layer.depth_multiplier == 1 \
                and layer.data_format == "channels_last" and pair(layer.dilation_rate) == (1, 1):
            kernel = layer.get_weights()[0][:, :, :, 0]
            stride = pair(layer.strides)
            origin = window_origin(layer, kernel.shape, stride)
            return self.each(upstream(), lambda p: p.then(kernel, stride, origin))
        raise self.unfollowable(layer, inputs)

    def unfollowable(self, layer, inputs) -> Exception:
        """Unfollowable where a conv unit lies behind `layer`; else nothing is lost (the image's own preprocessing)."""
        sources = set()
        for tensor in inputs:
            try:
                sources |= set(self.paths(tensor))
            except Unfollowable as error:
                sources |= set(error.sources)
        if not sources:
            return _NoSources()
        return Unfollowable(layer, sources)

    @staticmethod
    def each(paths: dict[str, list[Path]], step) -> dict[str, list[Path]]:
        return {source: [step(p) for p in found] for source, found in paths.items()}

    def concatenate(self, layer, inputs) -> dict[str, list[Path]]:
        if layer.axis not in (-1, 3):
            raise self.unfollowable(layer, inputs)
        found: dict[str, list[Path]] = {}
        offset = 0
        for tensor in inputs:
            for source, paths in self.paths(tensor).items():
                found.setdefault(source, []).extend(
                    Path(p.weights, p.channels + offset, p.stride, p.origin) for p in paths)
            offset += int(tensor.shape[-1])
        return found

    def combine(self, kind: str, inputs) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for n, tensor in enumerate(inputs):
            factor = -1.0 if kind == "Subtract" and n == 1 else (1 / len(inputs) if kind == "Average" else 1.0)
            for source, paths in self.paths(tensor).items():
                found.setdefault(source, []).extend(
                    Path(p.weights * np.float32(factor), p.channels, p.stride, p.origin) for p in paths)
        return found

    def pooling(self, layer, kind: str, source, upstream) -> dict[str, list[Path]]:
        channels = int(source.shape[-1])
        if kind.startswith("Global"):
            if not layer.keepdims or None in source.shape[1:3]:
                raise self.unfollowable(layer, [source])
            size = stride = tuple(int(d) for d in source.shape[1:3])
            origin = (0, 0)
        else:
            size, stride = pair(layer.pool_size), pair(layer.strides)
            origin = window_origin(layer, size, stride)
        if "Max" in kind and stride == (1, 1) and size[0] % 2 and size[1] % 2:
            kernel = np.ones((1, 1, channels), np.float32)  # the identity at the window's centre
            origin = (origin[0] + size[0] // 2, origin[1] + size[1] // 2)
        else:
            kernel = np.full((*size, channels), 1 / (size[0] * size[1]), np.float32)
        return self.each(upstream(), lambda p: p.then(kernel, stride, origin))


class _NoSources(Unfollowable):
    """An unfollowable layer with no conv unit behind it: nothing to follow."""

    def __init__(self):
        Exception.__init__(self, "no conv unit behind this layer")
        self.layer, self.sources = None, ()


def unit_stops(model, layer_names, transparent=frozenset()) -> dict[int, str]:
    """id(tensor) -> conv layer, for each unit's tensors (before and after its
    nonlinearity), except the `transparent` layers' (the walk goes through those)."""
    stops = {}
    for name in layer_names:
        if name in transparent:
            continue
        unit = find_unit(model, name)
        layer = model.get_layer(name)
        stops[id(layer.output)] = name
        if unit.per_channel:
            stops[id(model.get_layer(unit.per_channel[-1]).output)] = name
        if unit.nonlinearity not in (None, "own"):
            stops[id(model.get_layer(unit.nonlinearity).output)] = name
    return stops


def unit_kernel(model, name: str) -> tuple[np.ndarray, tuple, tuple]:
    """A conv layer's kernel as (height, width, in, out) with its unit's BatchNorms
    folded in, its stride and its window's origin."""
    layer = model.get_layer(name)
    kind = conv_kind(layer)
    if getattr(layer, "data_format", "channels_last") != "channels_last" or getattr(layer, "groups", 1) != 1:
        raise Unfollowable(layer, reason=f"{name} is a grouped or channels-first convolution, not followed here")
    unit = find_unit(model, name)
    norms = [model.get_layer(n) for n in unit.per_channel]
    if norms and kind != "separable" and len(layer.weights) == 1 + layer.use_bias:
        kernel = folded_weights(layer, norms[0])[0]
        norms = norms[1:]
    else:
        kernel = layer.get_weights()[0]
    if kind == "depthwise":
        inner, multiplier = kernel.shape[2], kernel.shape[3]
        dense = np.zeros((*kernel.shape[:2], inner, inner * multiplier), np.float32)
        for a in range(inner):
            dense[:, :, a, a * multiplier:(a + 1) * multiplier] = kernel[:, :, a]
        kernel = dense
    elif kind == "separable":
        depthwise, pointwise = layer.get_weights()[:2]
        multiplier = depthwise.shape[3]
        per_input = depthwise.reshape(*depthwise.shape[:2], -1)  # (h, w, in * multiplier)
        grouped = (per_input[..., None] * pointwise[0, 0][None, None])  # (h, w, in*m, out)
        kernel = grouped.reshape(*depthwise.shape[:2], depthwise.shape[2], multiplier, -1).sum(axis=3)
    for norm in norms:
        kernel = kernel * norm_scale(norm)
    dilation = pair(getattr(layer, "dilation_rate", 1))
    if dilation != (1, 1):
        kh, kw = kernel.shape[:2]
        spread = np.zeros(((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1, *kernel.shape[2:]), kernel.dtype)
        spread[::dilation[0], ::dilation[1]] = kernel
        kernel = spread
    stride = pair(layer.strides)
    return kernel.astype(np.float32), stride, window_origin(layer, kernel.shape[:2], stride)


@dataclass
class Expanded:
    """target[y, c] = sum over u, a of weights[u, a, c] * source[y * stride + origin + u, a], per axis."""

    weights: np.ndarray  # (height, width, source channels, target channels)
    stride: tuple[int, int]
    origin: tuple[int, int]


def expand(paths: list[Path], kernel: np.ndarray, stride, origin, source_channels: int) -> Expanded:
    """The expanded weights of the paths from one source into a conv with
    `kernel`, summed where paths meet."""
    placed = []
    for path in paths:
        kh, kw = kernel.shape[:2]
        (sh, sw), (ph, pw, _) = path.stride, path.weights.shape
        out = np.zeros(((kh - 1) * sh + ph, (kw - 1) * sw + pw, source_channels, kernel.shape[3]), np.float32)
        rows = kernel[:, :, path.channels, :]  # (kh, kw, path's source channels, out)
        for i in range(kh):
            for j in range(kw):
                out[i * sh:i * sh + ph, j * sw:j * sw + pw] += path.weights[..., None] * rows[i, j][None, None]
        start = (origin[0] * sh + path.origin[0], origin[1] * sw + path.origin[1])
        placed.append((start, (stride[0] * sh, stride[1] * sw), out))
    strides = {s for _, s, _ in placed}
    if len(strides) > 1:
        raise Unfollowable(None, reason="two paths from one layer meet at different strides")
    top = min(p[0][0] for p in placed)
    left = min(p[0][1] for p in placed)
    height = max(p[0][0] + p[2].shape[0] for p in placed) - top
    width = max(p[0][1] + p[2].shape[1] for p in placed) - left
    total = np.zeros((height, width, source_channels, kernel.shape[3]), np.float32)
    for (y, x), _, out in placed:
        total[y - top:y - top + out.shape[0], x - left:x - left + out.shape[1]] += out
    return Expanded(total, strides.pop(), (top, left))


def expanded_weights(model, name: str, walker: Walker, only=None) -> dict[str, Expanded]:
    """{source conv layer: its Expanded weights into `name`'s units} (of the sources
    in `only`, where given); raises Unfollowable."""
    paths = walker.paths(model.get_layer(name).input)
    if only is not None:
        paths = {source: found for source, found in paths.items() if source in only}
    if not paths:
        return {}
    kernel, stride, origin = unit_kernel(model, name)
    return {source: expand(found, kernel, stride, origin, int(model.get_layer(source).output.shape[-1]))
            for source, found in paths.items()}
