"""The batched engine: the seed's loop for many filters of one layer at once.

One image per filter rides in the batch. Images do not interact in a
feed-forward conv net, so the gradient of the summed losses with respect to
image b is exactly the gradient of filter b's own loss; normalizing each
image's gradient on its own then reproduces the seed's step filter by filter.
The whole loop runs as one compiled TensorFlow graph on the model truncated
at the layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .seed_loop import STEP_SIZE, get_submodel
from .tf_quiet import import_keras

PRECISIONS = ("float32", "bfloat16")
# Memory the activations of one batch may take, forward and backward together:
# at most this, and at most a quarter of what the machine has free.
MAX_BATCH_BYTES = 2 << 30
MAX_BATCH = 64


def default_precision() -> str:
    """bfloat16 where the hardware computes it natively, else float32.

    Checked without starting TensorFlow where possible, so that a no-op
    rebuild (which needs the precision for its cache keys) stays fast."""
    if Path("/proc/driver/nvidia/gpus").is_dir():
        return "bfloat16" if gpu_has_bf16() else "float32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def gpu_has_bf16() -> bool:
    import_keras()
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        major, _ = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if major >= 8:  # Ampere and later have bfloat16 tensor cores
            return True
    return False


def memory_budget() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(MAX_BATCH_BYTES, int(line.split()[1]) * 1024 // 4)
    except OSError:
        pass
    return MAX_BATCH_BYTES


def batch_size_for(submodel, budget_bytes: int | None = None) -> int:
    """As many images as fit the budget, counting every layer's output ~3 times
    (kept for the backward pass, its gradient, and a temporary)."""
    budget_bytes = memory_budget() if budget_bytes is None else budget_bytes
    floats = 0
    for layer in submodel.layers:
        shape = layer.output.shape[1:]
        floats += int(np.prod(shape))
    per_image = floats * 4 * 3
    return int(max(1, min(MAX_BATCH, budget_bytes // per_image)))


class LayerEngine:
    """Gradient ascent on filters of one layer, many at a time."""

    def __init__(self, model, layer_name: str, precision: str = "float32"):
        import tensorflow as tf

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.submodel = get_submodel(model, layer_name)
        if precision == "bfloat16":
            self.submodel = with_dtype_policy(self.submodel, "mixed_bfloat16")
        self.num_filters = int(self.submodel.output.shape[-1])
        self.batch_size = batch_size_for(self.submodel)
        self._ascend = tf.function(self._ascend_graph, reduce_retracing=True)

    def run(self, images, filters: list[int], iters: int, step: float = STEP_SIZE):
        """Ascend `images[b]` on filter `filters[b]`; returns final images and activations."""
        import tensorflow as tf

        images, filters = np.asarray(images, np.float32), list(filters)
        count = len(filters)
        if count == 1:
            # oneDNN picks other kernels for a batch of one; a twin keeps a
            # filter's pixels independent of which batch it happened to fall in.
            images, filters = np.concatenate([images, images]), filters * 2
        out_images, activations = self._ascend(
            tf.constant(images),
            tf.constant(filters, tf.int32),
            tf.constant(iters, tf.int32),
            tf.constant(step, tf.float32),
        )
        return out_images.numpy()[:count], activations.numpy()[:count]

    def _filter_means(self, images, filters):
        import tensorflow as tf

        acts = self.submodel(images)  # (batch, h, w, channels)
        picked = tf.gather(acts, filters, axis=3, batch_dims=1)  # (batch, h, w)
        return tf.cast(tf.reduce_mean(picked, axis=[1, 2]), tf.float32)

    def _ascend_graph(self, images, filters, iters, step):
        import tensorflow as tf

        def one_step(i, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(self._filter_means(x, filters))
            grads = tape.gradient(loss, x)
            # tf.math.l2_normalize, per image: x * rsqrt(max(sum(x^2), 1e-12))
            sq = tf.reduce_sum(tf.square(grads), axis=[1, 2, 3], keepdims=True)
            grads = grads * tf.math.rsqrt(tf.maximum(sq, 1e-12))
            return i + 1, x + grads * step

        _, final = tf.while_loop(lambda i, x: i < iters, one_step, (tf.constant(0), images))
        return final, self._filter_means(final, filters)


def with_dtype_policy(submodel, policy: str):
    """A copy of `submodel` whose layers compute in `policy`, same weights."""
    import keras

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(submodel, clone_function=clone)
    copy.set_weights(submodel.get_weights())
    return copy
