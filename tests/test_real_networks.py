"""Every built-in family from seeded weights, and the real ImageNet MobileNet
in ../shared/models/ (skipped, with the reason, where ../shared/ is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generator.networks import BUILTIN_MODELS, load_model, network_input
from generator.photos import find_photos, load_photo
from tests.conftest import read_record, REPO

SHARED = REPO.parent / "shared"
MOBILENET = SHARED / "models" / "mobilenet_v1_0.75_224_imagenet.keras"
SAMPLES = SHARED / "imagenet-samples"
needs_mobilenet = pytest.mark.skipif(
    not MOBILENET.is_file(), reason=f"the real MobileNet is not here ({MOBILENET} is absent)"
)
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is absent")

# The first conv layer of each family, and the smallest input it takes (to keep this quick).
FIRST_CONV = {
    "vgg16": ("block1_conv1", 32), "vgg19": ("block1_conv1", 32), "resnet50": ("conv1_conv", 32),
    "resnet50v2": ("conv1_conv", 32), "mobilenet": ("conv1", 32), "mobilenet_v2": ("Conv1", 32),
    "inception_v3": ("conv2d", 75), "densenet121": ("conv1_conv", 32), "efficientnetb0": ("stem_conv", 32),
    "convnext_tiny": ("convnext_tiny_stage_0_block_0_depthwise_conv", 32),
}


def test_every_builtin_family_is_covered():
    assert set(FIRST_CONV) == set(BUILTIN_MODELS)


@pytest.mark.parametrize("family", sorted(FIRST_CONV))
def test_every_builtin_family_builds_from_seeded_weights(atlas, tmp_path, family):
    layer, size = FIRST_CONV[family]
    weights = tmp_path / f"{family}-seeded.h5"
    code, _, err = atlas("seeded-weights", weights, "--model", family)
    assert code == 0, err
    cache = tmp_path / "cache"
    code, _, err = atlas("build", "--model", family, "--weights", weights, "--cache-dir", cache, "--quiet",
                         "--input-size", size, "--layers", layer, "--filters", "0-1", "--iters", 2)
    assert code == 0, err
    record = read_record(cache)
    assert record["preprocess"] == {"mode": BUILTIN_MODELS[family].preprocess, "why": f"{family}'s own"}
    assert record["weights"].startswith("Weights file") and "not Keras's ImageNet file" in record["weights"]
    assert [e["index"] for e in record["layers"][0]["entries"]] == [0, 1]
    description = json.loads(next((cache / "models").glob("*.json")).read_text())
    assert len({layer["block"] for layer in description["layers"]}) > 1


@pytest.fixture(scope="session")
def mobilenet():
    if not MOBILENET.is_file():
        pytest.skip(f"the real MobileNet is not here ({MOBILENET} is absent)")
    return load_model(str(MOBILENET), MOBILENET)


@needs_mobilenet
def test_real_mobilenet_atlas_has_every_convolution_in_stages(atlas, tmp_path):
    cache, site = tmp_path / "cache", tmp_path / "site"
    code, out, err = atlas("build", "--model", MOBILENET, "--cache-dir", cache,  # not --quiet: the preprocessing line
                           "--layers", "conv1,conv_dw_5,conv_pw_13,conv_preds", "--filters", "0-1", "--iters", 2)
    assert code == 0, err
    assert "preprocessing tf (the model is named 'mobilenet_0.75_224', a mobilenet)" in out
    description = json.loads(next((cache / "models").glob("*.json")).read_text())
    layers = description["layers"]
    assert len(layers) == 28
    assert sum(layer["kind"] == "depthwise" for layer in layers) == 13
    assert [layer["block"] for layer in layers if layer["name"] in ("conv1", "conv_dw_2", "conv_pw_13")] == [
        "stage1", "stage2", "stage5"]
    assert description["units"]["conv_pw_7"] == {"unit": ["conv_pw_7_bn", "conv_pw_7_relu"]}

    code, _, err = atlas("render", "--cache-dir", cache, "--site-dir", site)
    assert code == 0, err
    manifest = json.loads((site / "atlas.json").read_text())["models"][0]
    assert manifest["preprocess"]["mode"] == "tf"
    assert [b["name"] for b in manifest["blocks"]] == ["stage1", "stage3", "stage5", "stage6"]


@needs_mobilenet
@needs_samples
def test_real_mobilenet_classifies_through_the_atlas_preprocessing(mobilenet, atlas, tmp_path):
    """The network is wired right end to end: photos loaded, cropped and
    preprocessed as the atlas does it are classified as ImageNet says."""
    from generator.description import choose_preprocess
    from generator.settings import Settings
    from generator.networks import guess_preprocess

    mode, _ = choose_preprocess(Settings(model=str(MOBILENET)), guess_preprocess(mobilenet))
    photos = find_photos(SAMPLES)
    classes = sorted(p.name.split("_")[0] for p in photos)  # one photo per class
    first = photos[:100]
    images = np.stack([load_photo(p, (224, 224)) for p in first])
    predicted = mobilenet.predict(network_input(images, mode), verbose=0).reshape(len(first), -1).argmax(axis=1)
    truth = np.array([classes.index(p.name.split("_")[0]) for p in first])
    assert np.mean(predicted == truth) >= 0.70
