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
    # ImageProjectiveTransform maps each output pixel back to where it samples the input.
    matrix = tf.stack([cos, sin, cx - cos * ox - sin * oy, -sin, cos, cy + sin * ox - cos * oy, 0.0, 0.0])
    matrix = tf.tile(matrix[None], [shape[0], 1])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=matrix, output_shape=tf.stack([out_h, out_w]),
        fill_value=fill, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
