"""The user's own model: a backbone nested in a fine-tuned model (functional or
Sequential, at any depth), the model's own preprocessing and augmentation
layers, custom layers and Lambdas, every file a user has — on tiny models
built here, and on the real MobileNet and GoogLeNet where ../shared has them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, read_record

from generator.imaging import decode_png
from generator.networks.nesting import qualified_names
from generator.tf_quiet import import_keras

SHARED = REPO.parent / "shared"
PHOTOS = REPO / "data" / "photos"


def build(atlas, model, cache, *extra, quiet=True):
    code, out, err = atlas("build", "--model", model, "--cache-dir", cache, *(["--quiet"] if quiet else []), *extra)
    assert code == 0, err
    return read_record(cache), out


def fails(atlas, model, cache, *extra) -> str:
    """The one line a build that cannot go ahead prints."""
    code, _, err = atlas("build", "--model", model, "--cache-dir", cache, "--quiet", *extra)
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def description(cache: Path) -> dict:
    (path,) = (Path(cache) / "models").glob("*.json")
    return json.loads(path.read_text())


def pictures(cache: Path, record: dict) -> dict:
    """(layer, index) -> the picture's pixels."""
    found = {}
    for layer in record["layers"]:
        for entry in layer["entries"]:
            key = entry["images"][0]["key"]
            found[(layer["name"], entry["index"])] = decode_png((cache / "filters" / key[:2] / f"{key}.png").read_bytes())[0]
    return found


def examples(record: dict) -> dict:
    """(layer, index) -> the photos of its top examples, in order."""
    return {(layer["name"], e["index"]): [x["photo"] for x in e["examples"]["top"]]
            for layer in record["layers"] for e in layer["entries"]}


def backbone(name: str = "backbone", size: int = 16):
    """A tiny keras.applications-like backbone: conv -> BN -> ReLU blocks, a strided conv."""
    keras = import_keras()
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="block1_conv1")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.ReLU(6.0, name="block1_relu")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="block1_conv2")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="block2_conv1")(x)
    return keras.Model(inputs, x, name=name)


def random_bn(model, seed: int = 0):
    """BatchNormalization statistics that are not the identity, so that a lost BN would show."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(-2, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, n)])
    return model


def finetuned(base, size: int = 16):
    """Keras's transfer-learning guide: augmentation, Rescaling, the backbone as one layer, a new head."""
    keras = import_keras()
    inputs = keras.Input((size, size, 3))
    x = keras.layers.RandomFlip()(inputs)
    x = keras.layers.RandomRotation(0.2)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def test_the_guides_finetuned_model_is_its_backbone_with_its_own_preprocessing(atlas, tmp_path):
    """Every conv of the nested backbone is a layer of the atlas, under its own
    name, with its unit after BatchNorm; the model's Rescaling is its
    preprocessing; the augmentation layers change no picture and no example:
    the atlas is the bare backbone's under tf preprocessing."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    base = random_bn(backbone())
    bare = tmp_path / "bare.keras"
    base.save(bare)
    model = tmp_path / "finetuned.keras"
    finetuned(base).save(model)

    args = ("--iters", 3, "--precision", "float32", "--images", PHOTOS, "--examples", 3)
    record, out = build(atlas, model, tmp_path / "c", *args, quiet=False)  # --quiet hides the preprocessing line
    assert [(l["name"], l["block"], l["filters"]) for l in record["layers"]] == [
        ("block1_conv1", "block1", 4), ("block1_conv2", "block1", 5), ("block2_conv1", "block2", 6)]
    assert record["preprocess"]["mode"] == "none"
    assert "Rescaling" in record["preprocess"]["why"] and "the same as tf" in record["preprocess"]["why"]
    assert "finetuned.keras: preprocessing none" in out
    assert description(tmp_path / "c")["units"]["block1_conv1"] == {"unit": ["block1_bn", "block1_relu"]}

    reference, _ = build(atlas, bare, tmp_path / "r", *args, "--preprocess", "tf")
    ours, theirs = pictures(tmp_path / "c", record), pictures(tmp_path / "r", reference)
    assert ours.keys() == theirs.keys()
    # x * 255 / 127.5 - 1 against x * 2 - 1: measured byte for byte the same in float32.
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert examples(record) == examples(reference)
    assert description(tmp_path / "c")["fields"] == description(tmp_path / "r")["fields"]


def test_a_sequential_wrapper_and_an_h5_file(atlas, tmp_path):
    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0), backbone(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"wrapped{suffix}"
        model.save(path)
        record, _ = build(atlas, path, tmp_path / suffix, "--iters", 1, "--filters", 0)
        assert [l["name"] for l in record["layers"]] == ["block1_conv1", "block1_conv2", "block2_conv1"]
        assert record["preprocess"]["mode"] == "none" and "x / 255" in record["preprocess"]["why"]

    # Without a scaling layer, a backbone named as keras.applications names its models tells the family.
    bare = keras.Sequential([keras.Input((16, 16, 3)), backbone("densenet121"), keras.layers.Flatten()])
    bare.save(tmp_path / "bare.keras")
    record, _ = build(atlas, tmp_path / "bare.keras", tmp_path / "bare", "--iters", 1, "--filters", 0)
    assert record["preprocess"] == {"mode": "torch", "why": "the sub-model is named 'densenet121', a densenet121"}


def test_two_levels_of_nesting_keep_units_fields_and_blocks(atlas, tmp_path):
    """A functional backbone inside a Sequential inside the model: the same
    layers, units, receptive fields and blocks as the backbone alone."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    base = random_bn(backbone())
    base.save(tmp_path / "bare.keras")
    middle = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1), base],
                              name="middle")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.RandomZoom(0.1)(inputs)
    x = keras.layers.GlobalMaxPooling2D()(middle(x))
    (tmp_path / "deep").mkdir()
    keras.Model(inputs, keras.layers.Dense(2)(x)).save(tmp_path / "deep" / "deep.keras")

    record, _ = build(atlas, tmp_path / "deep" / "deep.keras", tmp_path / "c", "--iters", 1, "--filters", 0)
    reference, _ = build(atlas, tmp_path / "bare.keras", tmp_path / "r", "--iters", 1, "--filters", 0)
    strip = lambda r: [{k: v for k, v in l.items() if k != "entries"} for l in r["layers"]]  # noqa: E731
    assert strip(record) == strip(reference)
    ours, theirs = description(tmp_path / "c"), description(tmp_path / "r")
    assert ours["units"] == theirs["units"] and ours["fields"] == theirs["fields"]
    assert ours["preprocess_guess"][0] == "none" and "before its first convolution" not in ours["preprocess_guess"][1]


def test_a_name_in_two_sub_models_is_qualified_by_its_sub_model(atlas, tmp_path):
    """Two backbones with the same layer names: each name qualified by its own
    sub-model, unique on the site and in atlas.json; a layer selected by it;
    sharded and merged, and given examples."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    a, b = backbone("backbone_a")(x), backbone("backbone_b")(x)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(a), keras.layers.GlobalAveragePooling2D()(b)])
    x = keras.layers.Dense(2, name="head")(x)
    path = tmp_path / "twins.keras"
    keras.Model(inputs, x).save(path)

    record, _ = build(atlas, path, tmp_path / "c", "--iters", 1, "--filters", "0-1", "--images", PHOTOS,
                      "--examples", 2)
    names = [l["name"] for l in record["layers"]]
    assert sorted(names) == sorted(f"backbone_{s}/{n}" for s in "ab"
                                   for n in ("block1_conv1", "block1_conv2", "block2_conv1"))
    blocks = {l["name"]: l["block"] for l in record["layers"]}
    assert blocks["backbone_b/block1_conv2"] == "backbone_b/block1"
    assert all(e["examples"]["top"] for l in record["layers"] for e in l["entries"])
    units = description(tmp_path / "c")["units"]
    assert units["backbone_b/block1_conv1"] == {"unit": ["backbone_b/block1_bn", "backbone_b/block1_relu"]}

    code, _, err = atlas("render", "--cache-dir", tmp_path / "c", "--site-dir", tmp_path / "site")
    assert code == 0, err
    (model,) = json.loads((tmp_path / "site" / "atlas.json").read_text())["models"]
    shown = [layer["name"] for block in model["blocks"] for layer in block["layers"]]
    assert sorted(shown) == sorted(names)
    assert len(list((tmp_path / "site" / "twins" / "layers").glob("*.html"))) == 6

    err = fails(atlas, path, tmp_path / "c", "--layers", "block2_conv1")
    assert "'block2_conv1' is in several sub-models; name one: backbone_" in err
    assert "backbone_a/block2_conv1" in err and "backbone_b/block2_conv1" in err
    one, _ = build(atlas, path, tmp_path / "one", "--iters", 1, "--layers", "backbone_a/block2_conv1")
    assert [l["name"] for l in one["layers"]] == ["backbone_a/block2_conv1"]
    for k in range(2):
        code, _, err = atlas("build", "--model", path, "--cache-dir", tmp_path / f"part{k}", "--iters", 1,
                             "--filters", "0-1", "--shard", f"{k}/2", "--quiet")
        assert code == 0, err
    code, _, err = atlas("merge", tmp_path / "part0", tmp_path / "part1", "--cache-dir", tmp_path / "merged")
    assert code == 0, err
    merged, _ = build(atlas, path, tmp_path / "merged", "--iters", 1, "--filters", "0-1")
    assert merged["computed"]["filters"] == 0
    assert pictures(tmp_path / "merged", merged).keys() == pictures(tmp_path / "c", record).keys()


def test_qualified_names_are_the_shortest_unique_tails():
    paths = [("conv1",), ("a", "x", "conv1"), ("b", "x", "conv1"), ("a", "x", "bn"), ("b", "y", "conv2")]
    assert qualified_names(paths) == {
        ("conv1",): "conv1", ("a", "x", "conv1"): "a/x/conv1", ("b", "x", "conv1"): "b/x/conv1",
        ("a", "x", "bn"): "bn", ("b", "y", "conv2"): "conv2"}


def test_augmentation_layers_at_the_top_change_nothing(atlas, tmp_path):
    """RandomFlip and RandomRotation in front of a plain model: not a pixel of
    any picture or any example differs from the model without them."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    base = backbone()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.RandomRotation(0.3)(keras.layers.RandomFlip()(inputs))
    x = base.layers[1](x)
    for layer in base.layers[2:]:
        x = layer(x)
    keras.Model(inputs, x, name="augmented").save(tmp_path / "augmented.keras")
    keras.Model(base.input, base.output, name="plain").save(tmp_path / "plain.keras")

    args = ("--iters", 3, "--filters", "0-2", "--precision", "float32", "--images", PHOTOS, "--examples", 2)
    augmented, _ = build(atlas, tmp_path / "augmented.keras", tmp_path / "a", *args)
    plain, _ = build(atlas, tmp_path / "plain.keras", tmp_path / "p", *args)
    ours, theirs = pictures(tmp_path / "a", augmented), pictures(tmp_path / "p", plain)
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert examples(augmented) == examples(plain)


CUSTOM = '''
import keras


class Scale(keras.layers.Layer):
    """A custom layer, not registered with Keras."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
'''


def scaled_input(tmp_path: Path):
    """CUSTOM written to my_layers.py, and a 16x16 input doubled by its Scale
    layer: (the code file, the input, the doubled tensor)."""
    from generator.networks.custom import import_custom_objects

    keras = import_keras()
    keras.utils.set_random_seed(0)
    code_file = tmp_path / "my_layers.py"
    code_file.write_text(CUSTOM)
    inputs = keras.Input((16, 16, 3))
    return code_file, inputs, import_custom_objects(code_file)["Scale"](2.0, name="double")(inputs)


def test_a_custom_layer_needs_custom_objects_once(atlas, tmp_path):
    """Without its code: one line naming the class and the flag. With
    --custom-objects: an atlas, nested or not, .keras or .h5; the flag is
    recorded, so a rebuild and render need it no more."""
    from generator.networks.custom import import_custom_objects

    keras = import_keras()
    keras.utils.set_random_seed(0)
    code_file = tmp_path / "my_layers.py"
    code_file.write_text(CUSTOM)
    scale = import_custom_objects(code_file)["Scale"]
    inner = keras.Sequential([keras.Input((16, 16, 3)), scale(0.5, name="halve"),
                              keras.layers.Conv2D(3, 3, activation="relu", name="block1_conv1")], name="inner")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 1, name="block2_conv1")(inner(scale(2.0, name="double")(inputs)))
    model = keras.Model(inputs, x)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"custom{suffix}"
        model.save(path)
        cache = tmp_path / f"c{suffix}"
        err = fails(atlas, path, cache, "--iters", 1)
        assert "custom layer class Scale" in err and "--custom-objects FILE.py" in err, err
        record, _ = build(atlas, path, cache, "--iters", 1, "--custom-objects", code_file)
        assert [l["name"] for l in record["layers"]] == ["block1_conv1", "block2_conv1"]
        assert record["settings"]["custom_objects"] == str(code_file.resolve())
        (cache / "models").rename(cache / "old-models")  # describe again, which loads the model
        again, _ = build(atlas, path, cache, "--iters", 2)
        assert again["settings"]["custom_objects"] == str(code_file.resolve())
        code, _, err = atlas("render", "--cache-dir", cache, "--site-dir", tmp_path / f"site{suffix}")
        assert code == 0, err

    wrong = tmp_path / "other.py"
    wrong.write_text("def helper(x):\n    return x\n")
    err = fails(atlas, tmp_path / "custom.keras", tmp_path / "w", "--custom-objects", wrong)
    assert "defines only helper" in err
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    err = fails(atlas, tmp_path / "custom.keras", tmp_path / "w", "--custom-objects", broken)
    assert "cannot import --custom-objects" in err and "no_such_module_here" in err
    err = fails(atlas, tmp_path / "custom.keras", tmp_path / "w", "--custom-objects", tmp_path / "nothing.py")
    assert "no such file" in err


def test_an_edited_custom_layer_gets_new_pictures(atlas, tmp_path, monkeypatch):
    """The custom layer's code is part of what makes the pictures: edit the
    --custom-objects file, rebuild, and the pictures are made again with the new
    code, under new keys; put the old code back and the old pictures are found."""
    from generator.optvis.engine import LayerEngine

    keras = import_keras()
    code_file, inputs, x = scaled_input(tmp_path)
    path = tmp_path / "custom.keras"
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="block1_conv1")(x)).save(path)
    args = ("--iters", 2, "--custom-objects", code_file)
    first, _ = build(atlas, path, tmp_path / "c", *args)

    code_file.write_text(CUSTOM.replace("return x * self.factor", "return x * self.factor * 3.0"))
    edited, _ = build(atlas, path, tmp_path / "c", *args)
    assert edited["computed"]["filters"] == 2
    keys = lambda record: [i["key"] for e in record["layers"][0]["entries"] for i in e["images"]]
    assert set(keys(edited)).isdisjoint(keys(first))

    code_file.write_text(CUSTOM)
    monkeypatch.setattr(LayerEngine, "run", lambda *a, **k: pytest.fail("the first code's pictures are cached"))
    again, _ = build(atlas, path, tmp_path / "c", *args)
    assert keys(again) == keys(first)


def test_a_lambda_layer_needs_unsafe_deserialization(atlas, tmp_path):
    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t / 127.5 - 1.0, name="scale")(inputs)
    x = keras.layers.Conv2D(3, 3, name="block1_conv1")(x)
    x = keras.layers.Lambda(lambda t: t - 0.5, name="shift")(x)
    x = keras.layers.Conv2D(2, 3, activation="relu", name="block2_conv1")(x)
    model = keras.Model(inputs, x)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"lambda{suffix}"
        model.save(path)
        err = fails(atlas, path, tmp_path / f"c{suffix}", "--iters", 1)
        assert "Lambda layer ('scale', 'shift')" in err and "--unsafe-deserialization" in err
        assert "Python code stored in the file" in err
        record, _ = build(atlas, path, tmp_path / f"c{suffix}", "--iters", 2, "--unsafe-deserialization",
                          "--preprocess", "none")
        assert [l["name"] for l in record["layers"]] == ["block1_conv1", "block2_conv1"]
        assert record["settings"]["unsafe_deserialization"] is True

    # nested in a sub-model too, and in the seed method's path
    base = keras.Model(inputs, x, name="with_lambdas")
    outer_in = keras.Input((16, 16, 3))
    nested = tmp_path / "nested_lambda.keras"
    keras.Model(outer_in, base(outer_in)).save(nested)
    record, _ = build(atlas, nested, tmp_path / "n", "--iters", 2, "--unsafe-deserialization", "--method",
                      "fourier,seed")
    assert [l["name"] for l in record["layers"]] == ["block1_conv1", "block2_conv1"]


def test_files_that_are_no_keras_model_get_one_line(atlas, tmp_path):
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    (saved / "variables").mkdir()
    for name in (str(saved), str(saved) + "/"):
        err = fails(atlas, name, tmp_path / "c")
        assert "TensorFlow SavedModel folder" in err and ".keras" in err
    err = fails(atlas, tmp_path / "missing.keras", tmp_path / "c")
    assert "model file not found" in err
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    err = fails(atlas, tmp_path / "junk.keras", tmp_path / "c")
    assert "cannot load" in err

    import h5py  # a Keras 2 file with a tf.* call saved as a layer, which Keras 3 cannot read

    layers = [{"class_name": "InputLayer", "config": {"name": "input_1"}},
              {"class_name": "TFOpLambda", "config": {"name": "tf.math.multiply", "function": "math.multiply"}},
              {"class_name": "Conv2D", "config": {"name": "conv"}}]
    with h5py.File(tmp_path / "keras2.h5", "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"name": "m", "layers": layers}})
    err = fails(atlas, tmp_path / "keras2.h5", tmp_path / "c")
    assert "TensorFlow operations saved as layers by Keras 2 (layer 'tf.math.multiply'" in err


def photo_subset(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted((SHARED / "imagenet-samples").glob("*.jpg"))[:count]:
        shutil.copy(photo, folder / photo.name)
    return folder


MOBILENET = SHARED / "models" / "mobilenet_v1_0.75_224_imagenet.keras"
GOOGLENET = SHARED / "models" / "googlenet_bvlc_imagenet.keras"


@pytest.mark.skipif(not MOBILENET.is_file(), reason="the real MobileNet is not in ../shared/models/")
def test_the_real_mobilenet_finetuned_as_the_guide_does_gives_the_same_pictures(atlas, tmp_path):
    """The real MobileNet as a fine-tuned model's backbone, behind augmentation
    and Rescaling(1/127.5, offset=-1), with a fresh 5-class head: all its 28
    convolutions, its stages, preprocessing from its own Rescaling, and the
    same pictures as the bare MobileNet under tf."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    mobilenet = keras.models.load_model(MOBILENET, compile=False)
    base = keras.Model(mobilenet.input, mobilenet.get_layer("conv_preds").output, name=mobilenet.name)
    path = tmp_path / "finetuned.keras"
    finetuned(base, 224).save(path)

    args = ("--layers", "conv_pw_13", "--filters", "0-3", "--iters", 8, "--precision", "float32")
    record, _ = build(atlas, path, tmp_path / "c", *args, "--images", photo_subset(tmp_path, 12), "--examples", 2)
    reference, _ = build(atlas, MOBILENET, tmp_path / "r", *args)
    assert reference["preprocess"]["mode"] == "tf" and record["preprocess"]["mode"] == "none"
    assert "the same as tf" in record["preprocess"]["why"]
    layers = description(tmp_path / "c")["layers"]
    assert len(layers) == 28 and layers == description(tmp_path / "r")["layers"]
    assert {layer["block"] for layer in layers} == {f"stage{i}" for i in range(1, 7)}
    assert all(len(e["examples"]["top"]) == 2 for e in record["layers"][0]["entries"])
    ours, theirs = pictures(tmp_path / "c", record), pictures(tmp_path / "r", reference)
    assert ours.keys() == theirs.keys() == {("conv_pw_13", i) for i in range(4)}
    # The model's Rescaling, x * 255 * (1 / 127.5) - 1, against tf's x * 2 - 1: in float32 with 8 steps
    # measured byte for byte the same (all 4 pictures, every pixel; a tolerance was not needed).
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.skipif(not GOOGLENET.is_file(), reason="the real GoogLeNet is not in ../shared/models/")
def test_the_real_googlenet_with_its_custom_lrn_layer(atlas, tmp_path):
    lrn = SHARED / "models" / "googlenet_lrn.py"
    err = fails(atlas, GOOGLENET, tmp_path / "c", "--preprocess", "caffe")
    assert "CaffeLRN" in err and "--custom-objects" in err

    # Two of inception_4a's branches (both behind the two LRN layers); a block
    # name's expansion to its layers is tested on the tiny model.
    record, _ = build(atlas, GOOGLENET, tmp_path / "c", "--custom-objects", lrn, "--preprocess", "caffe",
                      "--layers", "inception_4a_1x1,inception_4a_5x5", "--filters", "0-1", "--iters", 4,
                      "--images", photo_subset(tmp_path, 12), "--examples", 2)
    layers = description(tmp_path / "c")["layers"]
    assert len(layers) == 57
    blocks = list(dict.fromkeys(layer["block"] for layer in layers))
    assert blocks == ["conv1", "conv2"] + [f"inception_{m}" for m in
                                           ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert [layer["block"] for layer in layers if layer["name"].startswith("inception_4a_")] == ["inception_4a"] * 6
    assert [l["name"] for l in record["layers"]] == ["inception_4a_1x1", "inception_4a_5x5"]
    assert all(len(e["examples"]["top"]) == 2 for l in record["layers"] for e in l["entries"])


def test_inception_modules_are_blocks():
    from generator.networks import assign_blocks

    names = ["conv1_7x7_s2", "conv2_3x3_reduce", "conv2_3x3", "inception_3a_1x1", "inception_3a_3x3_reduce",
             "inception_3a_3x3", "inception_3a_pool_proj", "inception_3b_1x1", "inception_3b_5x5"]
    sizes = [(112, 112), (56, 56), (56, 56)] + [(28, 28)] * 6
    assert assign_blocks(names, sizes) == ["conv1", "conv2", "conv2"] + ["inception_3a"] * 4 + ["inception_3b"] * 2
    assert assign_blocks(["backbone_b/block1_conv1", "backbone_b/block1_conv2", "backbone_b/block2_conv1"],
                         [(8, 8)] * 3) == ["backbone_b/block1", "backbone_b/block1", "backbone_b/block2"]


def test_an_adapted_normalization_keeps_its_statistics(tmp_path):
    """A Normalization adapted to data, in a sub-model: its mean and variance
    survive the flat graph and the truncated copies the pictures are made on."""
    from generator.networks import guess_preprocess, layers_model, load_model

    keras = import_keras()
    keras.utils.set_random_seed(0)
    data = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 3)).astype(np.float32)
    norm = keras.layers.Normalization()
    norm.adapt(data)
    inner = keras.Sequential([keras.Input((8, 8, 3)), norm, keras.layers.Conv2D(2, 3, name="c")], name="inner")
    inputs = keras.Input((8, 8, 3))
    path = tmp_path / "norm.keras"
    keras.Model(inputs, inner(inputs)).save(path)

    saved = keras.models.load_model(path, compile=False)
    flat = load_model(str(path), path)
    assert guess_preprocess(flat)[0] == "none"
    assert np.allclose(layers_model(flat, ["c"])(data).numpy(), saved(data).numpy(), atol=1e-4)

    # Its pictures were once made without those statistics: their keys say they are applied now,
    # and a model without a Normalization keeps the keys it had.
    from generator.description import describe
    from generator.keys import network_key

    assert network_key(describe(flat)) == {"normalization": "adapted mean and variance applied"}
    assert network_key(describe(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)]))) == {}
