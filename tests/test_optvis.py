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
