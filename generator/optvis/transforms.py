"""Transformation robustness: the image is jittered, scaled and rotated at every
step, so the optimizer cannot rely on exact pixel positions (Lucid's
`standard_transforms`), and brought to the network's input size.

Padding, jitter, scale, rotation and the resize to the network's input are
one bilinear affine warp, with grey beyond the edges: Lucid's stack (pad 12,
jitter 8, scale, rotate, jitter 4, then Lucent's upsampling to the input) is
the composition of such maps, and one resampling blurs less than five. The
same random warp is applied to the whole batch at a step, drawn from a
stateless generator seeded by (seed, step), so a filter's picture does not
depend on which batch it was computed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def resize(images, size):
    """Bilinear resize to `size` (height, width); nothing when already that size."""
    import tensorflow as tf

    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return tf.image.resize(images, size, method="bilinear")


@dataclass(frozen=True)
class NoTransform:
    def key(self) -> dict:
        return {}

    def __call__(self, images, step, seed, size):
        return resize(images, size)


@dataclass(frozen=True)
class RandomAffine:
    jitter: float = 8.0  # canvas pixels, each way
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0
    fill: float = 0.5
    pad: float = 0.0  # canvas pixels of grey the view extends beyond each edge

    def key(self) -> dict:
        key = {"transform": "affine", "jitter": self.jitter, "scale": list(self.scale),
               "degrees": self.degrees, "fill": self.fill}
        if self.pad:
            key["pad"] = self.pad
        return key

    def __call__(self, images, step, seed, size, crop=1.0):
        """`crop` < 1: view that fraction of the canvas, at a random place, at size `size`."""
        import tensorflow as tf

        u = tf.random.stateless_uniform([4 if crop == 1.0 else 6], seed=tf.stack([seed, step]))
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]
        angle = math.radians(self.degrees) * (2.0 * u[1] - 1.0)
        shift = self.jitter * (2.0 * u[2:4] - 1.0)
        if crop < 1.0:  # anywhere the part stays on the canvas
            width = tf.cast(tf.shape(images)[2], tf.float32)
            shift = shift + (2.0 * u[4:6] - 1.0) * (1.0 - crop) * width / 2.0
        return warp(images, scale, angle, shift, self.fill, size, self.pad, crop)


def warp(images, scale, angle, shift, fill, size=None, pad=0.0, crop=1.0):
    """Scale and rotate `images` about their centre and shift them, viewing
    the canvas plus `pad` pixels of border each way at output size `size`
    (default: the input's size)."""
    import tensorflow as tf

    shape = tf.shape(images)
    in_h, in_w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    out_h, out_w = size if size is not None else (shape[1], shape[2])
    # canvas pixels per output pixel (the same both ways for a square view)
    k = crop * (in_w + 2.0 * pad) / tf.cast(out_w, tf.float32)
    cx, cy = (in_w - 1.0) / 2.0, (in_h - 1.0) / 2.0
    ox = (tf.cast(out_w, tf.float32) - 1.0) / 2.0 + shift[0] / k
    oy = (tf.cast(out_h, tf.float32) - 1.0) / 2.0 + shift[1] / k
    cos, sin = k * tf.cos(angle) / scale, k * tf.sin(angle) / scale
    # Each output pixel (x, y) samples the input at matrix · (x, y, 1).
    matrix = tf.stack([cos, sin, cx - cos * ox - sin * oy, -sin, cos, cy + sin * ox - cos * oy])
    return affine_warp(images, matrix, (out_h, out_w), fill)


def affine_warp(images, matrix, size, fill):
    """`images` resampled bilinearly at size `size`: output pixel (x, y) reads
    the input at (m0 x + m1 y + m2, m3 x + m4 y + m5), `fill` beyond its edges.

    The numbers of TensorFlow's ImageProjectiveTransformV3 (BILINEAR,
    CONSTANT) and of its registered gradient, which warps the incoming
    gradient back by the inverse map with 0 beyond the edges. The map is the
    same for the whole batch, so each output pixel's four neighbours and
    weights are found once and gathered as rows of every image and channel
    at once; that op finds them again for every image and channel, and took
    1.6 times as long here."""
    import tensorflow as tf

    in_size = tf.shape(images)[1:3]

    @tf.custom_gradient
    def warped(images):
        def grad(dy):
            return sample_rows(dy, inverse_affine(matrix), in_size, 0.0)

        return sample_rows(images, matrix, size, fill), grad

    return warped(images)


def inverse_affine(matrix):
    """The six numbers of the inverse of the affine map `matrix`."""
    import tensorflow as tf

    a, b, c, d, e, f = tf.unstack(matrix)
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return tf.stack([ia, ib, -(ia * c + ib * f), id_, ie, -(id_ * c + ie * f)])


def sample_rows(images, matrix, size, fill):
    """Bilinear samples of the batch `images` (b, h, w, c) at the affine map's
    points for an output of `size`: one gather of (b·c)-long rows per corner."""
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    # static where known, so that the network after the warp sees its channels
    channels = images.shape[-1] if images.shape[-1] is not None else shape[3]
    out_h, out_w = size[0], size[1]
    ys, xs = tf.meshgrid(tf.range(out_h), tf.range(out_w), indexing="ij")
    xs, ys = tf.cast(tf.reshape(xs, [-1]), tf.float32), tf.cast(tf.reshape(ys, [-1]), tf.float32)
    x = matrix[0] * xs + matrix[1] * ys + matrix[2]
    y = matrix[3] * xs + matrix[4] * ys + matrix[5]
    x0, y0 = tf.floor(x), tf.floor(y)
    # one row per pixel, each the pixel of every image and channel; the last row is the fill
    # summed in float32, as the op sums, whatever the images' format
    rows = tf.reshape(tf.transpose(tf.cast(images, tf.float32), [1, 2, 0, 3]), [height * width, batch * channels])
    rows = tf.concat([rows, tf.fill([1, batch * channels], tf.cast(fill, tf.float32))], 0)
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    out = 0.0
    for cy, wy in ((y0, y0 + 1.0 - y), (y0 + 1.0, y - y0)):
        for cx, wx in ((x0, x0 + 1.0 - x), (x0 + 1.0, x - x0)):
            inside = (cy >= 0.0) & (cy < h) & (cx >= 0.0) & (cx < w)
            index = tf.where(inside, tf.cast(cy, tf.int32) * width + tf.cast(cx, tf.int32), height * width)
            out += tf.gather(rows, index) * (wy * wx)[:, None]
    out = tf.transpose(tf.reshape(out, [out_h, out_w, batch, channels]), [2, 0, 1, 3])
    return tf.cast(out, images.dtype)
