"""What a picture maximizes, kept apart from how it is optimized.

An objective maps the unit's outputs for a batch of images to one value per
image, which the render loop maximizes. Objectives add, scale and negate
(`channel() - 100 * diversity(4)`), as Lucid's and Lucent's do. Each has a
`key()` that goes into the picture's cache key.

Images of one filter may be optimized together: an objective's `group` is
how many consecutive images of the batch belong to one filter (1 for
objectives that treat each image alone). Only `diversity` couples them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitBatch:
    """A batch's unit outputs, as an objective sees them."""

    value: object  # (batch, h, w, channels): the unit, before or after its nonlinearity as the method says
    activated: object  # (batch, h, w, channels): the layer after its nonlinearity
    filters: object  # (batch,) int32: each image's filter
    # For objectives that compare the image with the photo it started from
    # (`needs_photo`), both as the network sees them this step (the same warp):
    image: object = None  # (batch, h, w, 3) the image, RGB in [0, 1]
    photo: object = None  # (batch, h, w, 3) its photo
    features: object = None  # (batch, h', w', c') the image at an early layer (`NearPhoto.depth`)
    photo_features: object = None  # the same for the photo
    photo_scale: object = None  # (batch,) the unit's mean absolute output on the photo, unwarped


class Objective:
    group = 1
    local = False  # depends on one position's receptive field only
    needs_photo = False  # compares the image with the photo it started from (UnitBatch.photo)
    depth = None  # where a photo comparison looks at features: a fraction of the network's conv layers

    def __call__(self, unit: UnitBatch):
        """One value per image, to maximize."""
        raise NotImplementedError

    def key(self):
        raise NotImplementedError

    def __add__(self, other: "Objective") -> "Objective":
        return Sum(self, other)

    def __mul__(self, factor: float) -> "Objective":
        return Scaled(float(factor), self)

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return Scaled(-1.0, self)

    def __sub__(self, other: "Objective") -> "Objective":
        return Sum(self, -other)


def own_channel(unit: UnitBatch):
    """(batch, h, w): each image's own filter's map."""
    import tensorflow as tf

    return tf.gather(unit.value, unit.filters, axis=3, batch_dims=1)


@dataclass(frozen=True)
class Channel(Objective):
    """The filter's mean over every position: the whole feature map."""

    def __call__(self, unit):
        import tensorflow as tf

        return tf.cast(tf.reduce_mean(own_channel(unit), axis=[1, 2]), tf.float32)

    def key(self):
        return "mean"


@dataclass(frozen=True)
class Neuron(Objective):
    """The filter at the centre position alone: one receptive field, not a tiled texture."""

    local = True

    def __call__(self, unit):
        import tensorflow as tf

        maps = own_channel(unit)
        height, width = maps.shape[1], maps.shape[2]
        return tf.cast(maps[:, height // 2, width // 2], tf.float32)

    def key(self):
        return "centre"


@dataclass(frozen=True)
class Diversity(Objective):
    """Lucid's diversity: each of a filter's `group` images is pushed away from
    the others by minus the cosine similarity of their Gram matrices (channel
    correlations over positions) at the unit's layer, after its nonlinearity.

    Lucid weighs it against a channel whose outputs are in the hundreds; a
    unit's scale varies by orders of magnitude between layers and networks
    (MobileNet's conv_pw_8 peaks at about 6, conv_pw_13 at about 80), so
    `relative` multiplies it by the group's mean absolute channel output,
    held constant for the gradient: its weight then means the same anywhere."""

    group: int = 4
    relative: bool = True

    def __call__(self, unit):
        import tensorflow as tf

        similarity = self.similarity(unit)
        if not self.relative:
            return -similarity
        scale = tf.abs(Channel()(unit))
        scale = tf.repeat(tf.reduce_mean(tf.reshape(scale, [-1, self.group]), axis=1), self.group)
        return -tf.stop_gradient(scale) * similarity

    def similarity(self, unit):
        """Each image's summed Gram cosine similarity with the others of its group."""
        import tensorflow as tf

        acts = tf.cast(unit.activated, tf.float32)
        batch, channels = tf.shape(acts)[0], acts.shape[-1]
        return group_gram_similarity(tf.reshape(acts, [batch, -1, channels]), self.group)

    def key(self):
        key = {"diversity": "gram cosine after activation", "group": self.group}
        return key | {"times": "the group's mean absolute channel"} if self.relative else key


def group_gram_similarity(flat, group: int):
    """For features `flat` (batch, positions, channels), `group` consecutive
    images to a filter: each image's summed cosine similarity between its Gram
    matrix F^T F and those of the others of its group.

    The gradient is written out so that no tensor as large as the Gram
    matrices is made more than twice. It is a sum of the group's Gram
    matrices, weighted by the gradient of the small (group x group) matrix of
    their inner products; the features' gradient is then 2 F dG, one product
    where TensorFlow's own chain takes two of the same size and many passes
    over the Gram matrices through the normalization. On a layer of many
    channels those cost a third of a diverse picture's step."""
    import tensorflow as tf

    def summed_cosines(inner):  # (filters, group, group) inner products -> (filters, group)
        # as l2_normalize normalizes: by rsqrt(max(squared norm, 1e-10))
        scale = tf.math.rsqrt(tf.maximum(tf.linalg.diag_part(inner), 1e-10))
        cosines = inner * scale[:, :, None] * scale[:, None, :]
        return tf.reduce_sum(cosines, axis=-1) - tf.linalg.diag_part(cosines)

    @tf.custom_gradient
    def similarity(flat):
        batch = tf.shape(flat)[0]
        grams = tf.matmul(flat, flat, transpose_a=True)  # (batch, channels, channels)
        vectors = tf.reshape(grams, [batch // group, group, -1])
        inner = tf.matmul(vectors, vectors, transpose_b=True)

        def grad(dsimilarity):
            with tf.GradientTape() as tape:
                tape.watch(inner)
                summed = summed_cosines(inner)
            dinner = tape.gradient(summed, inner, output_gradients=tf.reshape(dsimilarity, [-1, group]))
            dgrams = tf.reshape(tf.matmul(dinner + tf.transpose(dinner, [0, 2, 1]), vectors), tf.shape(grams))
            return 2.0 * tf.matmul(flat, dgrams)  # dgrams is symmetric: a sum of Gram matrices

        return tf.reshape(summed_cosines(inner), [batch]), grad

    return similarity(flat)


@dataclass(frozen=True)
class NearPhoto(Objective):
    """Feature accentuation's regularizer (Hamblin, Fel et al. 2024, Faccent's
    `l2_compare`): minus how far the image has moved from the photo it started
    from, both warped alike, in an early layer's features and in pixels.

    Each distance is the L2 norm over channels (colours for the pixels) at each
    position, averaged over positions: a norm, not its square, so a small move
    costs in proportion (the image changes where the unit gains most and stays
    the photo elsewhere). The features' distance is relative to the photo's own
    features' norm (0.5: moved by half the photo's features), the pixels' to
    the full range (1: black to white in every colour). Their weighted sum is
    multiplied by the unit's mean absolute output on the photo, held constant,
    so that the regularizer's weight against the unit means the same in every
    layer and network (as `Diversity`'s `relative` does). At the photo itself
    the value and its gradient are 0: with nothing else to raise, the image
    stays the photo.

    `depth`: the features are those of the conv layer this fraction of the
    way through the network's conv layers (after its nonlinearity), and always
    before the unit's own layer (engine.near_photo_layer); `pixels`: the pixel
    distance's weight against the features'."""

    group: int = 3
    depth: float = 0.15
    pixels: float = 1.0
    needs_photo = True

    def __call__(self, unit):
        import tensorflow as tf

        def norm(x):  # (batch, h, w, c) -> (batch, h, w); its gradient 0 at 0
            return tf.sqrt(tf.reduce_sum(tf.square(tf.cast(x, tf.float32)), axis=-1) + 1e-12) - 1e-6

        moved = self.pixels * tf.reduce_mean(norm(unit.image - unit.photo), axis=[1, 2]) / 3 ** 0.5
        if unit.features is not None:
            size = tf.stop_gradient(tf.reduce_mean(norm(unit.photo_features), axis=[1, 2]))
            moved += tf.reduce_mean(norm(unit.features - unit.photo_features), axis=[1, 2]) / tf.maximum(size, 1e-6)
        return -tf.stop_gradient(unit.photo_scale) * moved

    def key(self):
        return {"near photo": "L2 norm per position, mean, times the unit's mean absolute output on the photo",
                "features": f"the conv layer {self.depth:g} of the way through the network, before the unit's",
                "pixels": self.pixels, "photos": self.group}


@dataclass(frozen=True)
class Scaled(Objective):
    factor: float
    of: Objective

    @property
    def group(self):
        return self.of.group

    @property
    def local(self):
        return self.of.local

    @property
    def needs_photo(self):
        return self.of.needs_photo

    @property
    def depth(self):
        return self.of.depth

    def __call__(self, unit):
        return self.factor * self.of(unit)

    def key(self):
        return {"times": self.factor, "of": self.of.key()}


@dataclass(frozen=True)
class Sum(Objective):
    first: Objective
    second: Objective

    @property
    def group(self):
        return max(self.first.group, self.second.group)

    @property
    def local(self):
        return self.first.local and self.second.local

    @property
    def needs_photo(self):
        return self.first.needs_photo or self.second.needs_photo

    @property
    def depth(self):
        return self.first.depth if self.first.depth is not None else self.second.depth

    def __call__(self, unit):
        return self.first(unit) + self.second(unit)

    def key(self):
        return {"sum": [self.first.key(), self.second.key()]}


def channel() -> Objective:
    return Channel()


def neuron() -> Objective:
    return Neuron()


def diversity(group: int = 4, relative: bool = True) -> Objective:
    return Diversity(group, relative)


def near_photo(group: int = 3, depth: float = 0.15, pixels: float = 1.0) -> Objective:
    return NearPhoto(group, depth, pixels)


def accentuation(weight: float, group: int = 3, depth: float = 0.15, pixels: float = 1.0) -> Objective:
    """Feature accentuation's objective: the unit's channel raised, the image held
    near its photo. `weight` in [0, 1] shares the two: 0 the channel alone,
    1 the regularizer alone (the image stays the photo). Adam's steps do not
    depend on the objective's scale, so weight w is the regularizer at
    w / (1 - w) times the channel."""
    return (1.0 - weight) * channel() + weight * near_photo(group, depth, pixels)
