"""BatchNorm folded into the convolution before it: the same network, one
pass less per BatchNorm, other keys; a cache made before folding still counts."""

from __future__ import annotations

import json
import shutil

import numpy as np

import generator.networks as networks
from generator.networks import fold_batchnorm, foldable_pairs
from generator.tf_quiet import import_keras
from tests.conftest import read_record
from tests.test_own_model import random_bn


def mobilenet_like():
    """Conv -> BN -> ReLU6 -> depthwise -> BN -> ReLU6, and three BatchNorms
    that must stay: one after a conv with its own activation, one after a conv
    whose output another layer reads too, one after a conv whose output an
    operation that is not a layer (keras.ops.add) reads too."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="conv_dw_1")(x)
    x = keras.layers.BatchNormalization(name="conv_dw_1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv_dw_1_relu")(x)
    x = keras.layers.Conv2D(5, 1, activation="relu", name="conv_pw_1")(x)
    x = keras.layers.BatchNormalization(name="conv_pw_1_bn")(x)
    shared = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="conv2_bn")(shared)
    x = keras.layers.Add(name="skip")([x, shared])
    read_twice = keras.layers.Conv2D(5, 1, name="conv3")(x)
    x = keras.ops.add(keras.layers.BatchNormalization(name="conv3_bn")(read_twice), read_twice)
    return random_bn(keras.Model(inputs, x))


def test_folding_computes_the_same_function_with_the_foldable_batchnorms_gone():
    model = mobilenet_like()
    assert foldable_pairs(model) == {"conv1_bn": "conv1", "conv_dw_1_bn": "conv_dw_1"}
    folded = fold_batchnorm(model)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert kinds.count("BatchNormalization") == 3  # the three that cannot fold
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    expected, got = model(images).numpy(), folded(images).numpy()
    assert np.abs(expected).max() > 1
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_a_model_without_batchnorm_is_used_as_it_is(tiny_model):
    model = networks.load_model(str(tiny_model), tiny_model)
    assert foldable_pairs(model) == {} and fold_batchnorm(model) is model


def build(atlas, model, cache, *more):
    code, _, err = atlas("build", "--model", model, "--cache-dir", cache, "--iters", "3", "--quiet",
                         "--precision", "float32", "--layers", "conv_dw_1,conv_pw_1", "--filters", "0-2", *more)
    assert code == 0, err
    return read_record(cache)


def keys_and_activations(record) -> tuple[list, list]:
    images = [image for layer in record["layers"] for entry in layer["entries"] for image in entry["images"]]
    return [image["key"] for image in images], [image["activation"] for image in images]


def test_a_cache_made_before_folding_is_used_and_new_pictures_get_their_own_keys(atlas, tmp_path, monkeypatch):
    path = tmp_path / "bn.keras"
    mobilenet_like().save(path)
    # A cache as builds made it before: nothing folded.
    with monkeypatch.context() as before:
        before.setattr(networks, "folds_batchnorm", lambda model: False)
        old = build(atlas, path, tmp_path / "old")
    shutil.rmtree(tmp_path / "old" / "models")  # the description is remade, as after the upgrade

    again = build(atlas, path, tmp_path / "old")
    assert again["computed"]["filters"] == 0
    assert keys_and_activations(again)[0] == keys_and_activations(old)[0]

    fresh = build(atlas, path, tmp_path / "new")
    assert fresh["computed"]["filters"] == 6
    description = json.loads(next((tmp_path / "new" / "models").glob("*.json")).read_text())
    assert description["folds_batchnorm"] is True
    new_keys, new_activations = keys_and_activations(fresh)
    old_keys, old_activations = keys_and_activations(old)
    assert not set(new_keys) & set(old_keys)  # other rounding, other pixels: never under the old keys
    # the same network: its pictures reach what they reached unfolded
    np.testing.assert_allclose(new_activations, old_activations, rtol=1e-2, atol=1e-3)


def test_pictures_are_made_as_their_keys_say_whatever_the_rules_find_later(atlas, tmp_path, monkeypatch):
    """A picture's key takes the layer's unit and folding from the network's
    description, cached on the first build; the engine is given the same. So
    rules changed after that (without DESCRIPTION_VERSION bumped) cannot put
    other pixels under the cached keys: a filter computed then gets exactly
    the pixels a fresh cache gives it."""
    import generator.networks.folding as folding
    import generator.networks.units as units

    path = tmp_path / "bn.keras"
    mobilenet_like().save(path)
    build(atlas, path, tmp_path / "cache", "--filters", "0")  # describes the network
    fresh = build(atlas, path, tmp_path / "fresh", "--filters", "1")
    with monkeypatch.context() as changed:
        changed.setattr(folding, "foldable_pairs", lambda model: {})  # "fold nothing"
        changed.setattr(units, "find_unit", lambda model, name: units.Unit(name, (), None))  # "the bare conv"
        later = build(atlas, path, tmp_path / "cache", "--filters", "1")
    assert later["computed"]["filters"] == 2
    assert keys_and_activations(later) == keys_and_activations(fresh)  # bit for bit
    for key in keys_and_activations(later)[0]:
        png = f"filters/{key[:2]}/{key}.png"
        assert (tmp_path / "cache" / png).read_bytes() == (tmp_path / "fresh" / png).read_bytes()
