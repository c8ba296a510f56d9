"""The render loop: a method's optimization of an objective for many filters
of one layer at once.

Each filter has `objective.group` images in the batch (one, except for
diversity). Images do not interact in a feed-forward conv net, so for an
objective that treats each image alone the gradient of the summed values
with respect to image b is exactly the gradient of b's own value, and every
update rule here acts on each image on its own: a batch gives each filter
the picture it would get alone (for the `seed` method, the seed's loop step
for step). Only the objective couples a filter's group. The whole loop runs
as one compiled TensorFlow graph on the model truncated at the layer.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from .methods import METHODS, Method
from .objectives import Objective, UnitBatch, channel
from ..imaging import filter_seed
from ..networks import Unit, any_size, conv_layers, fold_batchnorm, in_copy, network_input, truncated, unit_model
from .window import receptive_window
from .redirect import redirected_copy
from .seed_loop import check_filter_index
from ..tf_quiet import import_keras
from .transforms import resize

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


def visualize_with_engine(model, layer_name, f_index, method, seed=0, precision="float32", preprocess=None):
    """One filter with another method, through the batched engine."""
    engine = LayerEngine(model, layer_name, precision, method, preprocess)
    if f_index is None:
        f_index = random.randint(0, engine.num_filters - 1)
    check_filter_index(layer_name, f_index, engine.num_filters)
    start = engine.start([filter_seed(seed, layer_name, f_index)])
    _, images, activations = engine.run(start, [f_index], seed=seed)
    return images[0], f_index, float(activations[0])


class LayerEngine:
    """A method's optimization on filters of one layer, many at a time."""

    def __init__(self, model, layer_name: str, precision: str = "float32", method: Method | None = None,
                 preprocess: str | None = None, objective: Objective | None = None, fold: bool | dict = False,
                 unit: Unit | None = None):
        """`preprocess` is the network's preprocessing mode, for methods that use it;
        `objective` what is maximized (default: the channel); `fold`: run the
        network with its BatchNorms folded into the convolutions before them
        (True: every foldable one; a dict: these {BatchNorm: convolution}, by the
        network's names); `unit`: where the layer's unit is (default: find_unit's).
        A build passes both as its network's description records them, so its
        pictures are made as their keys say, whatever today's rules would find."""
        import tensorflow as tf

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        self.method = method or METHODS["seed"]
        if self.method.preprocess and preprocess is None:
            raise ValueError(f"method {self.method.name} needs the network's preprocessing mode")
        self.preprocess = preprocess
        self.objective = objective or channel()
        self.group = self.objective.group  # images per filter
        policy = "mixed_bfloat16" if precision == "bfloat16" else None
        self.submodel = unit_model(model, layer_name, policy, unit)  # outputs: before, after the nonlinearity
        if fold:
            self.submodel = fold_batchnorm(self.submodel, None if fold is True else in_copy(fold, self.submodel))
        self.num_filters = int(self.submodel.outputs[0].shape[-1])
        self.batch_size = batch_size_for(self.submodel)
        self.input_shape = tuple(int(d) for d in self.submodel.input_shape[1:])
        # A local objective (one position's) needs only that position's receptive field.
        self.window = None
        if self.method.field_window and self.objective.local:
            self.window = receptive_window(model, layer_name)
        self.render_shape = self.input_shape if self.window is None else (
            self.window[0].stop - self.window[0].start, self.window[1].stop - self.window[1].start, self.input_shape[2])
        self.canvas_shape = self.method.canvas_shape(self.render_shape)  # what the optimizer paints
        self.coarse_shape = self.method.coarse_shape(self.render_shape)
        # what the steps run through: a copy that takes any input size where a step needs another
        other_size = self.window is not None or self.coarse_shape != self.render_shape[:2]
        self.network = any_size(self.submodel) if other_size else self.submodel
        # the same with redirected ReLU gradients, for the method's first steps
        self.redirected = redirected_copy(self.network) if self.method.redirect_steps else None
        # an objective that compares the image with its photo: the features it compares them in
        self.near_layer = self.near_model = None
        if self.objective.needs_photo:
            self.near_layer = near_photo_layer(model, layer_name, self.objective.depth)
            if self.near_layer is not None:
                self.near_model = truncated(model, self.near_layer, pre_activation=False, dtype=policy)
        self._ascend = tf.function(self._ascend_graph, reduce_retracing=True)

    def start(self, seeds: list[int]) -> np.ndarray:
        """The method's starting parameters for each image's seed."""
        return np.stack([self.method.param.init(s, self.canvas_shape) for s in seeds])

    def start_from(self, photos: list[np.ndarray]) -> np.ndarray:
        """A photo-seeded method's starting parameters: each photo's own (RGB in [0, 1], the input's size)."""
        import tensorflow as tf

        shape = self.canvas_shape
        photos = [p if p.shape == shape else tf.image.resize(p, shape[:2]).numpy() for p in photos]
        return np.stack([self.method.param.from_image(p, shape) for p in photos])

    def run(self, params, filters: list[int], iters: int | None = None, seed: int = 0):
        """Optimize the images `params` for `filters`, `group` consecutive images
        per filter; returns, per image, the final uint8 pixels, the float image,
        and its filter's final mean activation."""
        import tensorflow as tf

        params, filters = np.asarray(params, np.float32), list(np.repeat(filters, self.group))
        if len(params) != len(filters):
            raise ValueError(f"{len(params)} start images for {len(filters)} pictures")
        count = len(filters)
        if count == 1:
            # oneDNN picks other kernels for a batch of one; a twin keeps a
            # filter's pixels independent of which batch it happened to fall in.
            params, filters = np.concatenate([params, params]), filters * 2
        images, activations = self._ascend(
            tf.constant(params),
            tf.constant(filters, tf.int32),
            tf.constant(self.method.steps if iters is None else iters, tf.int32),
            tf.constant(seed, tf.int32),
        )
        images = images.numpy()[:count]
        pixels = np.stack([self.method.param.to_pixels(image) for image in images])
        return pixels, images, activations.numpy()[:count]

    def network_input(self, image):
        return network_input(image, self.preprocess) if self.method.preprocess else image

    def unit_batch(self, images, filters, submodel=None) -> UnitBatch:
        """The unit's outputs for `images`: before its nonlinearity where the
        method optimizes that, else after it."""
        pre, post = (submodel or self.submodel)(images)  # each (batch, h, w, channels)
        return UnitBatch(pre if self.method.pre_activation else post, post, filters)

    def photo_scale(self, photos, filters):
        """Each photo's mean absolute unit output over the map, as the objective sees the unit."""
        import tensorflow as tf

        maps = tf.gather(self.unit_batch(self.network_input(photos), filters).value, filters, axis=3, batch_dims=1)
        return tf.reduce_mean(tf.abs(tf.cast(maps, tf.float32)), axis=[1, 2])

    def near_photo(self, unit: UnitBatch, image, photo, scale) -> UnitBatch:
        """`unit` with what an objective comparing the image with its photo needs."""
        import tensorflow as tf

        features = photo_features = None
        if self.near_model is not None:
            both = self.near_model(self.network_input(tf.concat([image, photo], 0)))
            features, photo_features = both[: tf.shape(image)[0]], tf.stop_gradient(both[tf.shape(image)[0]:])
        return replace(unit, image=image, photo=photo, features=features, photo_features=photo_features,
                       photo_scale=scale)

    def accent_measures(self, photos, images, filters) -> list[dict]:
        """Per image and its photo (RGB in [0, 1], the input's size): the unit's mean
        over the map before its nonlinearity on each, and how far the image moved
        from the photo: mean absolute difference in levels (0-255), and in the
        regularized layer's features, relative (NearPhoto's distance, unwarped)."""
        import tensorflow as tf

        photos, images = np.asarray(photos, np.float32), np.asarray(images, np.float32)
        filters = tf.constant(filters, tf.int32)
        pre = lambda x: channel()(UnitBatch(self.submodel(self.network_input(x))[0], None, filters)).numpy()
        on_photo, on_image = pre(photos), pre(images)
        levels = np.abs(np.round(images * 255) - np.round(photos * 255)).mean(axis=(1, 2, 3))
        if self.near_model is not None:
            f_photo = np.asarray(self.near_model(self.network_input(photos)), np.float32)
            f_image = np.asarray(self.near_model(self.network_input(images)), np.float32)
            moved = np.linalg.norm(f_image - f_photo, axis=-1).mean(axis=(1, 2))
            features = moved / np.maximum(np.linalg.norm(f_photo, axis=-1).mean(axis=(1, 2)), 1e-6)
        else:
            features = [None] * len(photos)
        return [{"unit_on_photo": float(a), "unit": float(b), "moved_levels": float(c),
                 "moved_features": None if d is None else float(d), "features_layer": self.near_layer}
                for a, b, c, d in zip(on_photo, on_image, levels, features)]

    def activated_means(self, images, filters):
        """Each image's mean of its own filter's output after the nonlinearity: what we report."""
        _, post = self.submodel(images)
        return channel()(UnitBatch(post, post, filters))

    def stages(self) -> list[tuple[int | None, object, tuple[int, int]]]:
        """The render's runs of steps that share a model and an input size, in
        order, each as (the step it ends before, or None: the last; model; size)."""
        method, size = self.method, self.render_shape[:2]
        redirect = method.redirect_steps if self.redirected is not None else 0
        coarse = method.coarse_steps if self.coarse_shape != size else 0
        stages, start = [], 0
        for end in sorted({redirect, coarse} - {0}) + [None]:
            model = self.redirected if start < redirect else self.network
            stages.append((end, model, self.coarse_shape if start < coarse else size))
            start = end
        return stages

    def in_input(self, image):
        """The rendered image where it lies in the network's input: a window is
        set in the transforms' grey."""
        import tensorflow as tf

        (rows, cols), (height, width, _) = self.window, self.input_shape
        fill = getattr(self.method.transform, "fill", 0.5)
        pads = [[0, 0], [rows.start, height - rows.stop], [cols.start, width - cols.stop], [0, 0]]
        return tf.pad(image - fill, pads) + fill

    def _ascend_graph(self, params, filters, iters, seed):
        import tensorflow as tf

        method = self.method
        photo = scale = None
        if self.objective.needs_photo:  # the start is the photo; each step warps both alike
            photo = tf.stop_gradient(method.param.to_image(params, self.canvas_shape))
            scale = tf.stop_gradient(self.photo_scale(resize(photo, self.input_shape[:2]), filters))

        def step_with(submodel, size):
            crop = {"crop": size[0] / self.render_shape[0]} if method.coarse_crop and size != self.render_shape[:2] else {}

            def one_step(i, p, state):
                with tf.GradientTape() as tape:
                    tape.watch(p)
                    image = method.param.to_image(p, self.canvas_shape)
                    if photo is None:
                        image = method.transform(image, i, seed, size, **crop)
                        unit = self.unit_batch(self.network_input(image), filters, submodel)
                    else:
                        both = method.transform(tf.concat([image, photo], 0), i, seed, size, **crop)
                        image, seen = both[: tf.shape(p)[0]], both[tf.shape(p)[0]:]
                        unit = self.unit_batch(self.network_input(image), filters, submodel)
                        unit = self.near_photo(unit, image, seen, scale)
                    values = self.objective(unit)
                    loss = tf.reduce_sum(values)
                grads = tape.gradient(loss, p)
                p, state = method.optimizer.update(p, grads, state, i, iters)
                return i + 1, p, state

            return one_step

        # One loop per stage: a branch inside one loop would cost every step.
        loop = (tf.constant(0), params, method.optimizer.init_state(params))
        for end, submodel, size in self.stages():
            last = iters if end is None else tf.minimum(iters, end)
            loop = tf.while_loop(lambda i, p, s, last=last: i < last, step_with(submodel, size), loop)
        _, final, _ = loop
        image = method.param.to_image(final, self.canvas_shape)
        if self.window is not None:
            image = self.in_input(resize(image, self.render_shape[:2]))
        return image, self.activated_means(self.network_input(resize(image, self.input_shape[:2])), filters)


def near_photo_layer(model, layer_name: str, depth: float) -> str | None:
    """The conv layer `depth` of the way through the network's conv layers, and
    before `layer_name`; None where `layer_name` is the first (pixels only)."""
    names = [layer.name for layer, _ in conv_layers(model)]
    position = names.index(layer_name) if layer_name in names else len(names)
    if position == 0:
        return None
    return names[min(max(0, round(depth * len(names)) - 1), position - 1)]
