"""Real networks: the right unit, the right input, every convolution, blocks
that mean something, any input size — on small models built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_record

from generator.imaging import decode_png
from generator.networks import assign_blocks, network_input
from generator.tf_quiet import import_keras


def save(model, path: Path) -> Path:
    model.save(path)
    return path


def build(atlas, model, cache, *extra):
    code, out, err = atlas("build", "--model", model, "--cache-dir", cache, "--quiet", *extra)
    assert code == 0, err
    return read_record(cache), out


def picture(cache: Path, record: dict, layer: str, index: int, method: int = 0) -> np.ndarray:
    entry = next(e for l in record["layers"] if l["name"] == layer for e in l["entries"] if e["index"] == index)
    key = entry["images"][method]["key"]
    pixels, _ = decode_png((cache / "filters" / key[:2] / f"{key}.png").read_bytes())
    return pixels.astype(np.float32) / 255.0


def test_a_negative_batchnorm_scale_flips_what_is_maximized(atlas, tmp_path):
    """conv -> BN (scale -2 for filter 0, +1 for filter 1) -> ReLU: the unit of
    filter 0 grows as its raw convolution falls, so its picture must push the
    raw convolution down, and filter 1's up."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    conv = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="block1_conv1")
    bn = keras.layers.BatchNormalization(name="block1_bn")
    x = keras.layers.ReLU(name="block1_relu")(bn(conv(inputs)))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="block2_conv1")(x)
    model = keras.Model(inputs, x)
    bn.set_weights([np.array([-2.0, 1.0]), np.zeros(2), np.zeros(2), np.ones(2)])
    path = save(model, tmp_path / "bn.keras")

    cache = tmp_path / "cache"
    record, _ = build(atlas, path, cache, "--layers", "block1_conv1", "--iters", 30, "--preprocess", "tf")
    raw = keras.Model(inputs, conv.output)
    grey = raw(network_input(np.full((1, 24, 24, 3), 0.5, np.float32), "tf")).numpy().mean(axis=(0, 1, 2))
    for index, direction in ((0, -1), (1, +1)):
        image = network_input(picture(cache, record, "block1_conv1", index)[None], "tf")
        moved = raw(image).numpy().mean(axis=(0, 1, 2))[index] - grey[index]
        assert direction * moved > 0.05, (index, moved)
    description = json.loads(next((cache / "models").glob("*.json")).read_text())
    assert description["units"]["block1_conv1"] == {"unit": ["block1_bn", "block1_relu"]}
    assert description["units"]["block2_conv1"] == {}  # its own activation: the key VGG16 always had


def test_depthwise_separable_and_a_conv_head_are_layers_of_the_atlas(atlas, tmp_path):
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="conv_dw_1")(x)
    x = keras.layers.ReLU(6.0, name="conv_dw_1_relu")(x)
    x = keras.layers.SeparableConv2D(5, 3, strides=2, padding="same", name="conv_sep_2")(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = keras.layers.Conv2D(3, 1, name="conv_preds")(x)
    path = save(keras.Model(inputs, x), tmp_path / "mixed.keras")

    record, _ = build(atlas, path, tmp_path / "cache", "--iters", 2, "--method", "fourier,seed")
    layers = {l["name"]: (l["kind"], l["filters"], l["block"]) for l in record["layers"]}
    assert layers == {
        "conv1": ("conv", 4, "stage1"),
        "conv_dw_1": ("depthwise", 8, "stage1"),  # 4 channels x depth multiplier 2
        "conv_sep_2": ("separable", 5, "stage2"),
        "conv_preds": ("conv", 3, "stage3"),
    }
    code, _, err = atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    assert code == 0, err
    atlas_json = json.loads((tmp_path / "site" / "atlas.json").read_text())["models"][0]
    kinds = [layer["kind"] for block in atlas_json["blocks"] for layer in block["layers"]]
    assert kinds == ["conv", "depthwise", "separable", "conv"]


@pytest.mark.parametrize("method", ["fourier", "seed"])
def test_odd_input_sizes(atlas, tmp_path, method):
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((17, 15, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="block1_conv1")(inputs)
    x = keras.layers.Conv2D(2, 3, strides=2, activation="relu", name="block2_conv1")(x)
    path = save(keras.Model(inputs, x), tmp_path / "odd.keras")

    record, _ = build(atlas, path, tmp_path / "cache", "--iters", 3, "--method", method)
    assert record["input_shape"] == [17, 15, 3]
    assert picture(tmp_path / "cache", record, "block2_conv1", 1).shape == (17, 15, 3)


def test_a_model_without_a_fixed_input_size_needs_one(atlas, tmp_path):
    keras = import_keras()
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="block1_conv1")(inputs)
    path = save(keras.Model(inputs, x), tmp_path / "any.keras")

    code, _, err = atlas("build", "--model", path, "--cache-dir", tmp_path / "c", "--quiet")
    assert code == 1 and "has no fixed input size; pass --input-size" in err
    assert len(err.strip().splitlines()) == 1
    record, _ = build(atlas, path, tmp_path / "c", "--iters", 2, "--input-size", "21x19")
    assert record["input_shape"] == [21, 19, 3]
    code, _, err = atlas("build", "--model", path, "--cache-dir", tmp_path / "c", "--input-size", "big")
    assert code == 1 and "cannot parse --input-size 'big'" in err


def test_a_fixed_input_size_is_kept(atlas, tiny_model, tmp_path):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "c", "--input-size", "32")
    assert code == 1 and "has a fixed input of 16x16" in err


VGG16 = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1"]
RESNET50 = ["conv1_conv", "conv2_block1_1_conv", "conv2_block1_0_conv", "conv2_block1_3_conv",
            "conv2_block2_1_conv", "conv3_block1_1_conv"]
MOBILENET_V2 = ["Conv1", "expanded_conv_depthwise", "expanded_conv_project", "block_1_expand",
                "block_1_depthwise", "block_1_project", "block_2_expand", "Conv_1"]
EFFICIENTNET = ["stem_conv", "block1a_dwconv", "block1a_se_reduce", "block1a_se_expand",
                "block1a_project_conv", "block2a_expand_conv", "block2a_dwconv", "top_conv"]
MOBILENET = ["conv1", "conv_dw_1", "conv_pw_1", "conv_dw_2", "conv_pw_2", "conv_dw_3", "conv_pw_3", "conv_preds"]
INCEPTION = ["conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4", "conv2d_8"]


@pytest.mark.parametrize(
    "names, resolutions, blocks",
    [
        (VGG16, [96, 96, 48, 48, 24], ["block1", "block1", "block2", "block2", "block3"]),
        (RESNET50, [112, 56, 56, 56, 56, 28],
         ["conv1", "conv2_block1", "conv2_block1", "conv2_block1", "conv2_block2", "conv3_block1"]),
        (MOBILENET_V2, [112, 112, 112, 112, 56, 56, 56, 7],
         ["Conv1", "expanded", "expanded", "block_1", "block_1", "block_1", "block_2", "Conv_1"]),
        (EFFICIENTNET, [112, 112, 1, 1, 112, 112, 56, 7],
         ["stem", "block1a", "block1a", "block1a", "block1a", "block2a", "block2a", "top"]),
        # Names that group nothing: the resolution stages instead.
        (MOBILENET, [112, 112, 112, 56, 56, 56, 56, 1],
         ["stage1", "stage1", "stage1", "stage2", "stage2", "stage2", "stage2", "stage3"]),
        (INCEPTION, [149, 147, 147, 73, 71, 35], ["stage1", "stage1", "stage1", "stage2", "stage2", "stage3"]),
    ],
)
def test_blocks_come_from_names_where_they_group_else_from_resolution(names, resolutions, blocks):
    assert assign_blocks(names, [(r, r) for r in resolutions]) == blocks


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocessing_matches_keras_applications(mode):
    from keras.applications import imagenet_utils

    image = np.random.default_rng(0).uniform(size=(2, 5, 4, 3)).astype(np.float32)
    expected = imagenet_utils.preprocess_input(image * 255.0, mode=mode)
    assert np.allclose(network_input(image, mode).numpy(), expected, atol=1e-4)


def test_preprocessing_is_chosen_recorded_and_shown(atlas, tmp_path):
    keras = import_keras()
    inputs = keras.Input((16, 16, 3))
    scaled = keras.layers.Rescaling(1 / 255.0)(inputs)
    own = save(keras.Model(inputs, keras.layers.Conv2D(2, 3, name="block1_conv1")(scaled)), tmp_path / "own.keras")
    bare = save(keras.Model(inputs, keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs), name="mine"),
                tmp_path / "bare.keras")

    record, out = build(atlas, own, tmp_path / "a", "--iters", 1)
    assert record["preprocess"]["mode"] == "none" and "Rescaling" in record["preprocess"]["why"]
    code, out, err = atlas("build", "--model", bare, "--cache-dir", tmp_path / "b", "--iters", 1)  # not --quiet
    assert code == 0, err
    assert read_record(tmp_path / "b")["preprocess"] == {
        "mode": "tf", "why": "nothing in the model says; pass --preprocess to choose"}
    assert "bare.keras: preprocessing tf (nothing in the model says" in out
    record, out = build(atlas, bare, tmp_path / "b", "--iters", 1, "--preprocess", "torch")
    assert record["preprocess"] == {"mode": "torch", "why": "--preprocess"}

    atlas("render", "--cache-dir", tmp_path / "b", "--site-dir", tmp_path / "site")
    assert json.loads((tmp_path / "site" / "atlas.json").read_text())["models"][0]["preprocess"]["mode"] == "torch"
    assert "preprocessing <code>torch</code>" in (tmp_path / "site" / "index.html").read_text()
    code, _, err = atlas("build", "--model", bare, "--cache-dir", tmp_path / "b", "--preprocess", "bgr")
    assert code == 1 and "unknown preprocessing 'bgr'; choose one of: caffe, tf, torch, none" in err


def test_the_seed_method_feeds_its_raw_image_whatever_the_preprocessing(atlas, tiny_model, tmp_path):
    keys = []
    for mode in ("caffe", "torch"):
        record, _ = build(atlas, tiny_model, tmp_path / mode, "--method", "seed,fourier", "--iters", 2,
                          "--layers", "block1_conv1", "--filters", "0", "--preprocess", mode)
        keys.append([img["key"] for img in record["layers"][0]["entries"][0]["images"]])
    assert keys[0][0] == keys[1][0]  # seed: the same picture
    assert keys[0][1] != keys[1][1]  # fourier: another input, another picture


def test_the_jump_box_suggests_a_filter_of_this_atlas(atlas, tiny_model, tmp_path):
    build(atlas, tiny_model, tmp_path / "cache", "--iters", 1)
    atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'placeholder="block1_conv2 2 or b1c2 2"' in index and "block4_conv2" not in index
