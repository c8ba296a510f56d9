"""Redirected ReLU gradients (Lucid's `redirected_relu_grad`), for the first
steps of a render.

A ReLU passes no gradient where its input is below zero (nor ReLU6 above
six). If a unit's input is silent everywhere on the starting image, its
picture never moves: a depthwise filter sees a single input channel, and
when that channel is zero on the random start, plain gradient ascent leaves
the picture where it began. For an image whose true gradient through a ReLU
is zero everywhere, the redirected gradient lets it through where it pushes
the input back into the ReLU's active range; anywhere else it changes nothing.
"""

from __future__ import annotations

from ..networks.nesting import clone_layer, copy_weights
from ..tf_quiet import import_keras


def redirected_relu(x, max_value=None):
    """relu(x) (capped at `max_value`) whose gradient is redirected for images
    whose true gradient is zero."""
    import tensorflow as tf

    @tf.custom_gradient
    def relu(x):
        low = tf.zeros_like(x)
        y = tf.maximum(x, low) if max_value is None else tf.clip_by_value(x, low, tf.cast(max_value, x.dtype))

        def grad(dy):
            true = relu_gradient(dy, x, max_value)
            # An image is dead where its true gradient is zero everywhere. Two
            # reductions tell; the redirected gradient is computed only when some
            # image is, which after the first steps is rarely.
            axes = list(range(1, len(x.shape)))
            dead = (tf.reduce_max(true, axis=axes, keepdims=True) == 0) & (
                tf.reduce_min(true, axis=axes, keepdims=True) == 0)

            def redirect():
                # Ascent moves x by +dy: keep dy where it moves x towards the active range.
                away = (x <= 0) & (dy < 0)
                if max_value is not None:
                    away = away | ((x >= max_value) & (dy > 0))
                return tf.where(dead, tf.where(away, tf.zeros_like(dy), dy), true)

            return tf.cond(tf.reduce_any(dead), redirect, lambda: true)

        return y, grad

    return relu(x)


def relu_gradient(dy, x, max_value=None):
    """The ReLU's (capped at `max_value`) true gradient, in one fused pass where TensorFlow has one."""
    import tensorflow as tf

    if max_value is None:
        return tf.raw_ops.ReluGrad(gradients=dy, features=x)
    if float(max_value) == 6.0:
        return tf.raw_ops.Relu6Grad(gradients=dy, features=x)
    return tf.where((x > 0) & (x < max_value), dy, tf.zeros_like(dy))


def relu_cap(layer) -> tuple[bool, float | None]:
    """Whether a layer (or a conv layer's own activation) is a plain ReLU, and its cap."""
    keras = import_keras()
    if isinstance(layer, keras.layers.ReLU):
        plain = not layer.negative_slope and not layer.threshold
        return plain, (float(layer.max_value) if layer.max_value is not None else None)
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    if name in ("relu", "relu6"):
        return True, 6.0 if name == "relu6" else None
    return False, None


def redirected_copy(model):
    """A copy of `model`, sharing nothing, whose plain ReLUs (layers, and conv
    layers' own relu activations) redirect their gradients."""
    keras = import_keras()

    class RedirectedReLU(keras.layers.Layer):
        def __init__(self, max_value=None, **kwargs):
            super().__init__(**kwargs)
            self.max_value = max_value

        def call(self, x):
            return redirected_relu(x, self.max_value)

    def clone(layer):
        plain, cap = relu_cap(layer)
        config = layer.get_config()
        if not plain:
            return clone_layer(layer)
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            return RedirectedReLU(cap, name=layer.name, dtype=layer.dtype_policy)
        copy = layer.__class__.from_config({**config, "activation": "linear"})
        copy.activation = lambda x: redirected_relu(x, cap)
        return copy

    copy = keras.models.clone_model(model, clone_function=clone)
    copy_weights(copy, model)
    return copy
