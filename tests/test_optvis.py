"""The render loop's parts on small models built here: a filter whose input
is silent on the starting image still gets a picture."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from generator.imaging import filter_seed
from generator.optvis.engine import LayerEngine
from generator.optvis.methods import METHODS
from generator.optvis.redirect import redirected_copy
from generator.tf_quiet import import_keras


def gated_depthwise_model():
    """conv (bias -5) -> ReLU6 -> depthwise: on a grey image (0 after "tf"
    preprocessing) the conv gives -5 everywhere, so the depthwise filter's one
    input channel is silent and a plain ReLU passes it no gradient at all."""
    keras = import_keras()
    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer="ones",
                            bias_initializer=keras.initializers.Constant(-5.0), name="gate")(image)
    x = keras.layers.ReLU(6.0, name="gate_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depthwise_initializer="ones", name="dw")(x)
    return keras.Model(image, x)


def final_activation(model, method) -> float:
    engine = LayerEngine(model, "dw", "float32", method, preprocess="tf")
    start = engine.start([filter_seed(0, "dw", 0)])
    _, _, activations = engine.run(start, [0])
    return float(activations[0])


def test_a_depthwise_filter_with_a_silent_input_gets_a_picture():
    model = gated_depthwise_model()
    plain = replace(METHODS["fourier"], steps=64, redirect_steps=0)
    assert final_activation(model, plain) == 0.0  # stuck where it started
    assert final_activation(model, replace(plain, redirect_steps=16)) > 1.0


def test_redirected_relus_compute_the_same_outputs():
    keras = import_keras()
    image = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="own")(image)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(2, 3)(x)
    x = keras.layers.Activation("relu")(x)
    model = keras.Model(image, x)
    batch = np.random.default_rng(0).uniform(-3, 3, (2, 12, 12, 3)).astype(np.float32)
    assert np.allclose(model(batch), redirected_copy(model)(batch), atol=1e-6)


def test_the_mean_colour_gain_scales_the_mean_colour_alone():
    from generator.optvis.param import FourierParam

    shape = (8, 10, 3)
    plain = FourierParam(decay_power=1.25)
    params = plain.init(0, shape)[None]

    def logits(param):
        image = np.asarray(param.to_image(params, shape), np.float64)
        return np.log(image / (1 - image))

    before, after = logits(plain), logits(replace(plain, dc_gain=4.0))
    assert np.allclose(after.mean(axis=(1, 2)), 4 * before.mean(axis=(1, 2)), rtol=1e-3)
    patterns = after - after.mean(axis=(1, 2), keepdims=True)
    assert np.allclose(patterns, before - before.mean(axis=(1, 2), keepdims=True), atol=1e-4)


def test_coarse_steps_run_at_a_smaller_size_first_and_the_picture_comes_out_whole():
    model = gated_depthwise_model()
    method = replace(METHODS["fourier"], steps=6, redirect_steps=2, coarse_size=0.5, coarse_steps=3)
    engine = LayerEngine(model, "dw", "float32", method, preprocess="tf")
    stages = [(end, model is engine.redirected, size) for end, model, size in engine.stages()]
    assert stages == [(2, True, (8, 8)), (3, False, (8, 8)), (None, False, (16, 16))]
    pixels, _, _ = engine.run(engine.start([1]), [0])
    assert pixels.shape == (1, 16, 16, 3) and np.ptp(pixels) > 0
    # where the coarse steps look is part of what the picture is: it is in the key
    assert method.key() != replace(method, coarse_crop=True).key() != replace(method, coarse_steps=0).key()


def test_redirected_gradients_pass_where_a_relu_is_dead_and_only_there():
    """One image alive (its true gradient reaches it), one dead (none does):
    the live one gets the true gradient, the dead one the redirected rule."""
    import tensorflow as tf

    from generator.optvis.redirect import redirected_relu

    rng = np.random.default_rng(0)
    for cap in (None, 6.0, 4.0):
        x = rng.uniform(-3, 9, (2, 5, 5, 2)).astype(np.float32)
        x[1] = np.where(rng.random((5, 5, 2)) < 0.5, -1.0, 7.0 if cap else -2.0)  # nothing active
        dy = rng.standard_normal(x.shape).astype(np.float32)
        tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            loss = tf.reduce_sum(redirected_relu(tensor, cap) * dy)
        got = tape.gradient(loss, tensor).numpy()
        active = (x > 0) & (x < (cap or np.inf))
        away = ((x <= 0) & (dy < 0)) | ((x >= (cap or np.inf)) & (dy > 0))
        assert np.array_equal(got[0], np.where(active[0], dy[0], 0.0)), cap
        assert np.array_equal(got[1], np.where(away[1], 0.0, dy[1])), cap
        assert np.abs(got[1]).max() > 0, cap


def test_the_warp_and_its_gradient_are_tensorflows_projective_transforms():
    """The warp gathers every image's pixels at once; its numbers are those of
    ImageProjectiveTransformV3 and its registered gradient (the gradient warped
    back by the inverse map), for a shrinking, enlarging and turning map."""
    import tensorflow as tf

    from generator.optvis.transforms import affine_warp

    rng = np.random.default_rng(1)
    for (in_h, in_w), (out_h, out_w), scale in [((32, 32), (32, 32), 1.1), ((20, 28), (33, 21), 0.6)]:
        angle = rng.uniform(-0.3, 0.3)
        matrix = np.array([scale * np.cos(angle), scale * np.sin(angle), -4.5,
                           -scale * np.sin(angle), scale * np.cos(angle), 7.5], np.float32)
        images = tf.constant(rng.random((3, in_h, in_w, 3), dtype=np.float32))
        dy = tf.constant(rng.standard_normal((3, out_h, out_w, 3)).astype(np.float32))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(images)
            ours = affine_warp(images, tf.constant(matrix), (out_h, out_w), 0.5)
            theirs = tf.raw_ops.ImageProjectiveTransformV3(
                images=images, transforms=np.tile(np.append(matrix, [0, 0])[None], [3, 1]).astype(np.float32),
                output_shape=[out_h, out_w], fill_value=0.5, interpolation="BILINEAR", fill_mode="CONSTANT")
            losses = tf.reduce_sum(ours * dy), tf.reduce_sum(theirs * dy)
        assert np.allclose(ours, theirs, atol=1e-5)
        assert np.any(np.asarray(theirs) == 0.5)  # the map reaches past the edges
        assert np.allclose(*(tape.gradient(loss, images) for loss in losses), atol=1e-4)

    # In a graph of unknown batch and size the channels stay known, as a convolution after it needs.
    warped = tf.function(lambda x: affine_warp(x, tf.constant(matrix), (8, 8), 0.5)).get_concrete_function(
        tf.TensorSpec([None, None, None, 3], tf.float32))
    assert warped.output_shapes.as_list() == [None, 8, 8, 3]


def test_the_fourier_images_gradient_is_the_spectrums_own():
    """The Fourier image's hand-written gradient is what TensorFlow's own
    chain of complex ops gives."""
    import tensorflow as tf

    from generator.optvis.param import FourierParam, spectrum_scale

    shape = (12, 10, 3)
    param = FourierParam(decay_power=1.25, dc_gain=4.0)
    params = tf.constant(np.stack([param.init(s, shape) for s in (0, 1)]) * 50)
    weights = tf.constant(np.random.default_rng(2).standard_normal((2, 12, 10, 3)).astype(np.float32))
    scale = tf.constant(spectrum_scale(12, 10, 1.25, 4.0))

    def plain(p):  # what the parameterization computes, differentiated by TensorFlow
        from generator.optvis.param import COLOR_MIX

        image = tf.signal.irfft2d(tf.complex(p[:, 0] * scale, p[:, 1] * scale), fft_length=[12, 10])
        return tf.sigmoid(tf.tensordot(tf.transpose(image, [0, 2, 3, 1]) / 4.0, COLOR_MIX.T, axes=1))

    gradients = []
    for to_image in (lambda p: param.to_image(p, shape), plain):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = tf.reduce_sum(to_image(params) * weights)
        gradients.append(tape.gradient(loss, params).numpy())
    assert np.abs(gradients[1]).max() > 0
    assert np.allclose(*gradients, rtol=1e-4, atol=1e-6 * np.abs(gradients[1]).max())
