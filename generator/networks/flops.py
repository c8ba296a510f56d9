"""A network's work: the FLOPs of its convolutions, layer by layer."""

from __future__ import annotations

import numpy as np

from .units import conv_layers


def forward_flops(keras_model) -> dict[str, float]:
    """Per conv layer, the FLOPs of the convolutions up to and including it, in
    model order: a work estimate for balancing shards (exact for a chain like
    VGG's, an upper bound for branching networks)."""
    total, flops = 0.0, {}
    for layer, _ in conv_layers(keras_model):
        _, height, width, _ = layer.output.shape
        kernels = sum(int(np.prod(v.shape)) for v in layer.weights if len(v.shape) == 4)
        total += 2.0 * height * width * kernels
        flops[layer.name] = total
    return flops
