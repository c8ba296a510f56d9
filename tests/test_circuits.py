"""Circuits (generator/circuits/): expanded weights between units, from the
weights alone, on tiny models whose weights are set by hand so the ranking is
known; against brute force with the ReLUs removed; in the build record, the
unit page and atlas.json; on the real MobileNet and GoogLeNet where
../shared/ has them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from generator.cache import Cache
from generator.circuits import Computer, network_circuits
from generator.circuits.expanded import Walker, expanded_weights, unit_stops
from generator.networks.units import conv_layers
from generator.tf_quiet import import_keras
from tests.conftest import REPO, copy_atlas, read_record

SHARED = REPO.parent / "shared" / "models"
MOBILENET = SHARED / "mobilenet_v1_0.75_224_imagenet.keras"
GOOGLENET = SHARED / "googlenet_bvlc_imagenet.keras"


def set_kernels(model, kernels: dict) -> None:
    """Each named conv's kernel (and a zero bias)."""
    for name, kernel in kernels.items():
        layer = model.get_layer(name)
        layer.set_weights([np.asarray(kernel, np.float32)] + [np.zeros(w.shape, np.float32) for w in layer.weights[1:]])


def one_by_one(rows) -> np.ndarray:
    """A 1x1 kernel from its (in, out) matrix."""
    return np.asarray(rows, np.float32)[None, None]


def links_of(model, layer: str) -> dict:
    """What the cache keeps of one layer's circuits."""
    return Computer(SimpleNamespace(load=lambda: model)).layer(layer)


def listed(found: list[dict], sign: str) -> list[tuple[str, int]]:
    return [(e["layer"], e["filter"]) for e in found if e["sign"] == sign]


def test_a_chain_ranks_inputs_and_outputs_by_their_kernels():
    keras = import_keras()
    L = keras.layers
    inputs = keras.Input((8, 8, 2))
    a = L.Conv2D(2, 1, activation="relu", name="a")(inputs)
    b = L.Conv2D(3, 3, padding="same", activation="relu", name="b")(a)
    model = keras.Model(inputs, b)
    kernel = np.zeros((3, 3, 2, 3), np.float32)
    kernel[1, 1, 0, 0], kernel[0, 0, 1, 0] = 2.0, -1.0  # b0: a0 excites, a1 inhibits
    kernel[:, :, 1, 1] = 0.5  # b1: a1 everywhere (4.5 in all)
    kernel[2, 2, 0, 2] = -3.0  # b2: a0 inhibits
    set_kernels(model, {"a": one_by_one(np.eye(2)), "b": kernel})
    found = links_of(model, "b")
    assert listed(found["inputs"]["0"], "excitatory") == [("a", 0)]
    assert listed(found["inputs"]["0"], "inhibitory") == [("a", 1)]
    assert found["inputs"]["0"][0]["kernel"] == [[0, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert listed(found["inputs"]["1"], "excitatory") == [("a", 1)] and found["inputs"]["1"][0]["weight"] == 4.5
    assert listed(found["outputs"]["a"]["0"], "excitatory") == [("b", 0)]
    assert listed(found["outputs"]["a"]["0"], "inhibitory") == [("b", 2)]
    assert links_of(model, "a")["inputs"] == {}  # its input is the image


def test_a_pointwise_layer_reads_the_layer_before_through_the_depthwise_one():
    keras = import_keras()
    L = keras.layers
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(3, 1, activation="relu", name="a")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(a)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU()(x)
    pw = L.Conv2D(2, 1, name="pw")(x)
    model = keras.Model(inputs, pw)
    depthwise = np.zeros((3, 3, 3, 1), np.float32)
    depthwise[1, 1, :, 0] = [1.0, -2.0, 3.0]
    set_kernels(model, {"a": one_by_one(np.eye(3)), "dw": depthwise, "pw": one_by_one([[1, 0], [1, 1], [1, 0]])})
    norm = model.get_layer("dw_bn")  # scale 2 on every channel: gamma 2, variance 1 - eps
    norm.set_weights([np.full(3, 2.0), np.zeros(3), np.zeros(3), np.full(3, 1 - norm.epsilon)])
    pointwise = links_of(model, "pw")
    assert listed(pointwise["inputs"]["0"], "excitatory") == [("a", 2), ("a", 0)]  # 6, 2
    assert listed(pointwise["inputs"]["0"], "inhibitory") == [("a", 1)]  # -4
    assert [e["weight"] for e in pointwise["inputs"]["0"]] == pytest.approx([6, 2, -4])
    assert len(pointwise["inputs"]["0"][0]["kernel"]) == 3  # the depthwise kernel's 3x3, through it
    assert listed(pointwise["inputs"]["1"], "excitatory") == [] and listed(pointwise["inputs"]["1"], "inhibitory") == [("a", 1)]
    # the depthwise unit's own outputs: the pointwise units reading it directly (1x1)
    assert listed(pointwise["outputs"]["dw"]["1"], "excitatory") == [("pw", 0), ("pw", 1)]
    assert pointwise["outputs"]["dw"]["1"][0]["kernel"] == [[1.0]]
    # and its input: the one channel of the layer before
    depth = links_of(model, "dw")
    assert listed(depth["inputs"]["1"], "inhibitory") == [("a", 1)] and listed(depth["inputs"]["1"], "excitatory") == []


def test_a_concat_of_two_branches_ranks_units_of_both():
    keras = import_keras()
    L = keras.layers
    inputs = keras.Input((8, 8, 2))
    b1 = L.Conv2D(2, 1, activation="relu", name="b1")(inputs)
    b2 = L.Conv2D(2, 1, activation="relu", name="b2")(inputs)
    x = L.MaxPooling2D(3, strides=1, padding="same")(L.Concatenate()([b1, b2]))
    t = L.Conv2D(1, 1, name="t")(x)
    model = keras.Model(inputs, t)
    set_kernels(model, {"b1": one_by_one(np.eye(2)), "b2": one_by_one(np.eye(2)),
                        "t": one_by_one([[1.0], [-1.0], [4.0], [0.5]])})
    found = links_of(model, "t")
    assert listed(found["inputs"]["0"], "excitatory") == [("b2", 0), ("b1", 0), ("b2", 1)]
    assert listed(found["inputs"]["0"], "inhibitory") == [("b1", 1)]
    assert found["inputs"]["0"][0]["kernel"] == [[4.0]]  # max pooling at stride 1: the identity


def test_a_residual_add_follows_both_branches():
    keras = import_keras()
    L = keras.layers
    inputs = keras.Input((8, 8, 2))
    a = L.Conv2D(2, 1, name="a")(inputs)
    b = L.Conv2D(2, 1, name="b")(L.ReLU()(a))
    s = L.ReLU()(L.Add()([a, L.Rescaling(0.5)(b)]))
    t = L.Conv2D(1, 1, name="t")(s)
    model = keras.Model(inputs, t)
    set_kernels(model, {"a": one_by_one(np.eye(2)), "b": one_by_one(np.eye(2)), "t": one_by_one([[2.0], [-1.0]])})
    found = links_of(model, "t")
    assert listed(found["inputs"]["0"], "excitatory") == [("a", 0), ("b", 0)]  # 2, then 1 through the halving
    assert listed(found["inputs"]["0"], "inhibitory") == [("a", 1), ("b", 1)]
    assert listed(found["outputs"]["a"]["0"], "excitatory") == [("t", 0)]


def linear_model():
    """ReLUs removed: padding, a strided depthwise conv, average pooling, Concat,
    BatchNorms, a residual Add with a strided 1x1 shortcut. `a` is the identity
    on the input, so nudging the input nudges `a`'s unit."""
    keras = import_keras()
    L = keras.layers
    keras.utils.set_random_seed(3)
    inputs = keras.Input((20, 20, 4))
    a = L.Conv2D(4, 1, use_bias=False, name="a")(inputs)
    b1 = L.DepthwiseConv2D(3, strides=2, name="dw")(L.ZeroPadding2D(((1, 0), (1, 0)))(a))
    b1 = L.BatchNormalization(name="dw_bn")(b1)
    b2 = L.AveragePooling2D(2)(a)
    x = L.AveragePooling2D(3, strides=1, padding="same")(L.Concatenate()([b1, b2]))
    t = L.BatchNormalization(name="t_bn")(L.Conv2D(5, 3, padding="same", use_bias=False, name="t")(x))
    shortcut = L.Conv2D(5, 1, strides=2, name="short")(a)
    u = L.Conv2D(3, 3, padding="same", name="u")(L.Add()([t, shortcut]))
    model = keras.Model(inputs, [t, u])
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.weights[0].shape[0]
            layer.set_weights([np.random.uniform(0.5, 2, n), np.random.randn(n), np.random.randn(n),
                               np.random.uniform(0.5, 2, n)])
    model.get_layer("a").set_weights([one_by_one(np.eye(4))[..., :]])
    return model


def test_expanded_weights_equal_the_change_when_an_input_unit_is_nudged():
    model = linear_model()
    names = [layer.name for layer, _ in conv_layers(model)]
    # every position of a's unit nudged at once (one photo per position and channel): t's centre change
    expanded = expanded_weights(model, "t", Walker(unit_stops(model, names, transparent={"dw"})))["a"]
    size, y = 20, 5
    nudges = np.eye(size * size * 4, dtype=np.float32).reshape(-1, size, size, 4)
    base = model.predict(np.zeros((1, size, size, 4), np.float32), verbose=0)[0][0, y, y]
    change = (model.predict(nudges, batch_size=800, verbose=0)[0][:, y, y] - base).reshape(size, size, 4, -1)
    top, left = y * expanded.stride[0] + expanded.origin[0], y * expanded.stride[1] + expanded.origin[1]
    height, width = expanded.weights.shape[:2]
    np.testing.assert_allclose(change[top:top + height, left:left + width], expanded.weights, atol=1e-5)
    assert np.abs(change).sum() == pytest.approx(np.abs(expanded.weights).sum(), rel=1e-4)  # nothing outside it
    # a whole unit nudged (its BatchNorm's shift, or its bias): u changes by the kernel's sum, both branches of the Add
    into_u = expanded_weights(model, "u", Walker(unit_stops(model, names)))
    for source, layer_name in (("t", "t_bn"), ("short", "short")):
        layer = model.get_layer(layer_name)
        for channel in range(2):
            weights = layer.get_weights()
            before = model.predict(np.zeros((1, size, size, 4), np.float32), verbose=0)[1][0, 5, 5]
            weights[1][channel] += 1.0
            layer.set_weights(weights)
            after = model.predict(np.zeros((1, size, size, 4), np.float32), verbose=0)[1][0, 5, 5]
            weights[1][channel] -= 1.0
            layer.set_weights(weights)
            np.testing.assert_allclose(after - before, into_u[source].weights[:, :, channel].sum(axis=(0, 1)),
                                       atol=1e-4)


def test_a_path_that_cannot_be_followed_is_left_out_with_the_reason(tmp_path):
    keras = import_keras()
    L = keras.layers
    inputs = keras.Input((8, 8, 2))
    a = L.Conv2D(2, 1, activation="relu", name="a")(inputs)
    gate = L.Conv2D(2, 1, activation="sigmoid", name="gate")(inputs)
    t = L.Conv2D(2, 1, name="t")(L.Multiply(name="gating")([a, gate]))
    model = keras.Model(inputs, t)
    net = SimpleNamespace(load=lambda: model, sha256="0" * 64, input_size=None, code_key={})
    found, summary = network_circuits(net, Cache(tmp_path), {"a": [0], "t": [0, 1]})
    assert found[("t", 0)]["inputs"] is None and found[("a", 0)]["outputs"] is None
    assert "gating (Multiply)" in summary["missing"]["t"]["inputs"]
    assert summary["missing"]["a"]["outputs"] == summary["missing"]["t"]["inputs"]
    assert found[("a", 0)]["inputs"] == []  # a's own input is the image: nothing left out
    assert summary["computed_layers"] == 2
    again = network_circuits(SimpleNamespace(**{**vars(net), "load": None}), Cache(tmp_path), {"a": [0], "t": [0, 1]})
    assert again[0] == found and again[1]["computed_layers"] == 0  # from the cache, without the model


def test_the_build_record_unit_page_and_atlas_json_have_them(tiny_atlas):
    record = read_record(tiny_atlas / "cache")
    entries = {(layer["name"], e["index"]): e for layer in record["layers"] for e in layer["entries"]}
    middle = entries[("block1_conv2", 0)]
    assert {e["layer"] for e in middle["inputs"]} == {"block1_conv1"}
    assert {e["layer"] for e in middle["outputs"]} == {"block2_conv1"}
    assert all(len(e["kernel"]) == 6 for e in middle["outputs"])  # 3x3 through the 2x2 pool's stride
    assert "inputs" in entries[("block1_conv1", 0)] and entries[("block1_conv1", 0)]["inputs"] == []
    assert record["circuits"]["missing"] == {}
    atlas = json.loads((tiny_atlas / "site" / "atlas.json").read_text())
    filters = {(layer["name"], f["index"]): f for block in atlas["models"][0]["blocks"]
               for layer in block["layers"] for f in layer["filters"]}
    assert filters[("block1_conv2", 0)]["inputs"] == middle["inputs"]
    page = (tiny_atlas / "site" / "tiny" / "filters" / "block1_conv2" / "0.html").read_text()
    assert "<h2>Inputs" in page and "<h2>Outputs" in page and "set aside" in page
    strongest = middle["inputs"][0]
    assert f'href="../../../tiny/filters/block1_conv1/{strongest["filter"]}.html"' in page
    assert page.count('<svg class="heat"') == len(middle["inputs"]) + len(middle["outputs"])
    first = (tiny_atlas / "site" / "tiny" / "filters" / "block1_conv1" / "0.html").read_text()
    assert "its input is the image" in first


def test_a_rebuild_reads_them_from_the_cache(tiny_atlas, tmp_path, atlas, tiny_model):
    work = copy_atlas(tiny_atlas, tmp_path / "copy")
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", work / "cache", "--quiet", "--iters", 5)
    assert code == 0, err
    record = read_record(work / "cache")
    assert record["circuits"]["computed_layers"] == 0
    assert record["layers"] == read_record(tiny_atlas / "cache")["layers"]


@pytest.mark.skipif(not MOBILENET.is_file(), reason=f"the real MobileNet is not here ({MOBILENET} is absent)")
def test_real_mobilenet_pointwise_inputs_are_the_depthwise_and_pointwise_kernels_multiplied():
    keras = import_keras()
    from generator.circuits.expanded import norm_scale

    model = keras.models.load_model(MOBILENET, compile=False)
    names = [layer.name for layer, _ in conv_layers(model)]
    dws = {name for name in names if name.startswith("conv_dw")}
    expanded = expanded_weights(model, "conv_pw_5", Walker(unit_stops(model, names, transparent=dws)))
    assert list(expanded) == ["conv_pw_4"]
    depthwise = model.get_layer("conv_dw_5").get_weights()[0][:, :, :, 0] * norm_scale(model.get_layer("conv_dw_5_bn"))
    pointwise = model.get_layer("conv_pw_5").get_weights()[0][0, 0] * norm_scale(model.get_layer("conv_pw_5_bn"))
    np.testing.assert_allclose(expanded["conv_pw_4"].weights, depthwise[..., None] * pointwise[None, None],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not GOOGLENET.is_file(), reason=f"the real GoogLeNet is not here ({GOOGLENET} is absent)")
def test_real_googlenet_follows_concat_and_max_pooling():
    from generator.networks.custom import import_custom_objects

    keras = import_keras()
    model = keras.models.load_model(GOOGLENET, compile=False,
                                    custom_objects=import_custom_objects(SHARED / "googlenet_lrn.py"))
    names = [layer.name for layer, _ in conv_layers(model)]
    walker = Walker(unit_stops(model, names))
    branches = ["inception_3b_1x1", "inception_3b_3x3", "inception_3b_5x5", "inception_3b_pool_proj"]
    into = expanded_weights(model, "inception_4a_1x1", walker)  # through the concat and a 3x3 stride-2 max pool
    assert sorted(into) == branches and all(e.weights.shape[:2] == (3, 3) for e in into.values())
    assert list(expanded_weights(model, "inception_4a_3x3", walker)) == ["inception_4a_3x3_reduce"]
    assert sorted(expanded_weights(model, "conv2_3x3_reduce", walker)) == ["conv1_7x7_s2"]  # the LRN set aside
