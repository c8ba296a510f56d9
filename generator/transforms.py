"""Transformation robustness: the image is jittered, scaled and rotated at every
step, so the optimizer cannot rely on exact pixel positions (Lucid's
`standard_transforms`). Padding, jitter, scale and rotation are done as one
bilinear affine warp back to the network's input size, with grey beyond the
edges; the same random warp is applied to the whole batch at a step, drawn
from a stateless generator seeded by (seed, step), so a filter's picture does
not depend on which batch it was computed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class NoTransform:
    def key(self) -> dict:
        return {}

    def __call__(self, images, step, seed):
        return images


@dataclass(frozen=True)
class RandomAffine:
    jitter: float = 8.0  # pixels, each way
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0
    fill: float = 0.5

    def key(self) -> dict:
        return {"transform": "affine", "jitter": self.jitter, "scale": list(self.scale),
                "degrees": self.degrees, "fill": self.fill}

    def __call__(self, images, step, seed):
        import tensorflow as tf

        u = tf.random.stateless_uniform([4], seed=tf.stack([seed, step]))
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * u[0]
        angle = math.radians(self.degrees) * (2.0 * u[1] - 1.0)
        shift = self.jitter * (2.0 * u[2:] - 1.0)
        return warp(images, scale, angle, shift, self.fill)


def warp(images, scale, angle, shift, fill):
    """Scale and rotate `images` about their centre, then shift; same output size."""
    import tensorflow as tf

    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # ImageProjectiveTransform maps each output pixel back to where it samples the input.
    ox, oy = cx + shift[0], cy + shift[1]
    matrix = tf.stack([cos, sin, cx - cos * ox - sin * oy, -sin, cos, cy + sin * ox - cos * oy, 0.0, 0.0])
    matrix = tf.tile(matrix[None], [shape[0], 1])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=matrix, output_shape=tf.stack([height, width]),
        fill_value=fill, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
