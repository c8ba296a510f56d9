"""The seed's method, kept as it was: eager gradient ascent on one filter.

This is the reference the batched engine is checked against, and what
`filter-atlas visualize` runs.
"""

from __future__ import annotations

import random
from typing import Callable

import numpy as np

from ..errors import AtlasError
from ..imaging import filter_seed, start_image
from ..networks import truncated as get_submodel  # the seed's name for it

STEP_SIZE = 10.0


def visualize_filter(
    model,
    layer_name: str,
    f_index: int | None = None,
    iters: int = 50,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> tuple[np.ndarray, int, float]:
    """Gradient ascent on the mean activation of one filter, as in the seed.

    Returns the final image (float, unscaled), the filter index and the
    filter's mean activation on that image.
    """
    import tensorflow as tf

    submodel = get_submodel(model, layer_name)
    num_filters = submodel.output.shape[-1]
    if f_index is None:
        f_index = random.randint(0, num_filters - 1)
    check_filter_index(layer_name, f_index, num_filters)
    if iters < 1:
        raise AtlasError(f"--iters must be at least 1, got {iters}")

    image = tf.constant(start_image(filter_seed(seed, layer_name, f_index), model.input_shape[1:]))
    verbose_step = max(1, iters // 10)  # the seed's int(iters / 10), safe below 10

    for i in range(iters):
        with tf.GradientTape() as tape:
            tape.watch(image)
            out = submodel(tf.expand_dims(image, axis=0))[:, :, :, f_index]
            loss = tf.math.reduce_mean(out)
        grads = tape.gradient(loss, image)
        grads = tf.math.l2_normalize(grads)
        image += grads * STEP_SIZE
        if log and (i + 1) % verbose_step == 0:
            log(f"Iteration: {i + 1}, Loss: {loss.numpy():.4f}")

    out = submodel(tf.expand_dims(image, axis=0))[:, :, :, f_index]
    return image.numpy(), f_index, float(tf.math.reduce_mean(out))


def check_filter_index(layer_name: str, index: int, num_filters: int) -> None:
    if not 0 <= index < num_filters:
        raise AtlasError(
            f"filter {index} is out of range for {layer_name}, which has filters 0-{num_filters - 1}"
        )
