"""Update rules of the render loop. Both act on each image on its own, so a
batch of filters gives each filter what it would get alone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NormalizedAscent:
    """The seed's step: params += step * gradient / ||gradient||, per image."""

    step: float = 10.0

    def key(self) -> dict:
        return {"step": self.step}

    def init_state(self, params):
        return ()

    def update(self, params, grads, state, i, steps):
        import tensorflow as tf

        axes = list(range(1, len(params.shape)))
        # tf.math.l2_normalize, per image: x * rsqrt(max(sum(x^2), 1e-12))
        sq = tf.reduce_sum(tf.square(grads), axis=axes, keepdims=True)
        grads = grads * tf.math.rsqrt(tf.maximum(sq, 1e-12))
        return params + grads * self.step, state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma and Ba), ascending; with schedule "cosine" the learning
    rate falls from `lr` to 0 along half a cosine over the run: big steps
    while the picture takes shape, small ones that add little noise at the end."""

    lr: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"

    def key(self) -> dict:
        key = {"optimizer": "adam", "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}
        if self.schedule != "constant":
            key["schedule"] = self.schedule
        return key

    def init_state(self, params):
        import tensorflow as tf

        return (tf.zeros_like(params), tf.zeros_like(params))

    def update(self, params, grads, state, i, steps):
        import math

        import tensorflow as tf

        m, v = state
        m = self.beta1 * m + (1 - self.beta1) * grads
        v = self.beta2 * v + (1 - self.beta2) * tf.square(grads)
        t = tf.cast(i + 1, tf.float32)
        m_hat = m / (1 - tf.pow(self.beta1, t))
        v_hat = v / (1 - tf.pow(self.beta2, t))
        lr = self.lr
        if self.schedule == "cosine":
            lr = self.lr * 0.5 * (1.0 + tf.cos(math.pi * tf.cast(i, tf.float32) / tf.cast(steps, tf.float32)))
        return params + lr * m_hat / (tf.sqrt(v_hat) + self.eps), (m, v)
