"""PyTorch networks through ONNX: tiny graphs made here with onnx.helper (no
torch needed), each converted and compared with onnxruntime on the same input;
then atlases of them built as a user builds one, and the real exports in
../shared/models/ where they are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'filter-atlas[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from generator.cli import main  # noqa: E402
from generator.errors import AtlasError  # noqa: E402
from generator.networks.from_onnx import convert  # noqa: E402
from generator.networks.from_onnx.graph import namespace_path, scope_path  # noqa: E402

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "imagenet-samples"
RNG = np.random.default_rng(0)


class Net:
    """A tiny ONNX graph, written node by node as an exporter would."""

    def __init__(self, channels=3, size=16, batch="batch", opset=17):
        self.nodes, self.weights, self.opset = [], [], opset
        self.input = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, channels, size, size])
        self.count = 0

    def weight(self, name, array):
        self.weights.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(self, op, inputs, name=None, namespace=None, **attrs):
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        node = helper.make_node(op, inputs, [out], name=name or f"{op}_{self.count}", **attrs)
        if namespace:
            node.metadata_props.add(key="namespace", value=namespace)
        self.nodes.append(node)
        return out

    def conv(self, x, path, cin, cout, k=3, group=1, bias=True, **attrs):
        w = self.weight(f"{path}.weight", RNG.normal(0, 0.3, (cout, cin // group, k, k)))
        inputs = [x, w] + ([self.weight(f"{path}.bias", RNG.normal(0, 0.1, cout))] if bias else [])
        return self.node("Conv", inputs, name=f"/{path.replace('.', '/')}/Conv", group=group,
                         kernel_shape=[k, k], **attrs)

    def relu(self, x, path):
        return self.node("Relu", [x], name=f"/{path.replace('.', '/')}/Relu")

    def save(self, path: Path, output, **save) -> Path:
        graph = helper.make_graph(self.nodes, "tiny", [self.input],
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        onnx.checker.check_model(onnx.shape_inference.infer_shapes(model))
        onnx.save(model, str(path), **save)
        return path


def largest_difference(path: Path, batch: int = 2, size=None) -> float:
    """The converted network against onnxruntime, on the same random images."""
    keras_model = convert(path, size)
    height, width, channels = keras_model.input_shape[1:]
    x = RNG.uniform(-1, 1, (batch, height, width, channels)).astype(np.float32)
    ours = np.asarray(keras_model(x))
    theirs = ort.InferenceSession(str(path)).run(None, {"input": nchw(x)})[0]
    theirs = nhwc(theirs)
    assert ours.shape == theirs.shape
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-6))


def nchw(x):
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def nhwc(x):
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def conv_stack(tmp_path, **save) -> Path:
    net = Net()
    x = net.relu(net.conv("input", "features.0", 3, 4, pads=[1, 1, 1, 1]), "features.1")
    x = net.relu(net.conv(x, "features.2", 4, 6, strides=[2, 2], pads=[0, 0, 1, 1]), "features.3")
    return net.save(tmp_path / "stack.onnx", x, **save)


def grouped(tmp_path) -> Path:
    net = Net(channels=4)
    x = net.conv("input", "dw", 4, 8, group=4, pads=[1, 1, 1, 1])  # depthwise, multiplier 2
    x = net.conv(x, "grouped", 8, 6, group=2, k=1)
    return net.save(tmp_path / "grouped.onnx", x)


def conv_batchnorm(tmp_path) -> Path:
    net = Net()
    x = net.conv("input", "conv1", 3, 5, bias=False, pads=[1, 1, 1, 1])
    stats = [net.weight(f"bn1.{n}", v) for n, v in [
        ("weight", RNG.uniform(0.5, 2, 5)), ("bias", RNG.normal(0, 1, 5)),
        ("running_mean", RNG.normal(0, 1, 5)), ("running_var", RNG.uniform(0.5, 2, 5))]]
    x = net.node("BatchNormalization", [x, *stats], name="/bn1/BatchNormalization", epsilon=1e-3)
    return net.save(tmp_path / "bn.onnx", net.relu(x, "relu"))


def concat_branches(tmp_path) -> Path:
    net = Net()
    a = net.relu(net.conv("input", "inception3a.branch1.conv", 3, 4, k=1), "inception3a.branch1.relu")
    b = net.conv("input", "inception3a.branch2.conv", 3, 3, k=3, pads=[1, 1, 1, 1])
    c = net.node("MaxPool", ["input"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    return net.save(tmp_path / "concat.onnx", net.node("Concat", [a, b, c], axis=1))


def residual(tmp_path) -> Path:
    net = Net()
    x = net.relu(net.conv("input", "conv1", 3, 4, pads=[1, 1, 1, 1]), "relu")
    y = net.conv(net.relu(net.conv(x, "layer1.0.conv1", 4, 4, pads=[1, 1, 1, 1]), "layer1.0.relu"),
                 "layer1.0.conv2", 4, 4, pads=[1, 1, 1, 1])
    return net.save(tmp_path / "residual.onnx", net.relu(net.node("Add", [y, x]), "layer1.0.relu2"))


def ceil_mode_pool(tmp_path) -> Path:
    # 15 wide, kernel 3, stride 2, pad 1, ceil: PyTorch's rule drops a window that would start in the padding
    net = Net(size=15)
    x = net.conv("input", "conv1", 3, 4, k=1)
    x = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    x = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    return net.save(tmp_path / "ceil.onnx", x)


def lrn(tmp_path) -> Path:
    net = Net()
    x = net.relu(net.conv("input", "conv1", 3, 7, pads=[1, 1, 1, 1]), "relu")
    return net.save(tmp_path / "lrn.onnx", net.node("LRN", [x], size=5, alpha=1e-2, beta=0.75, bias=1.0))


def flatten_gemm(tmp_path) -> Path:
    net = Net(size=8)
    x = net.relu(net.conv("input", "features.0", 3, 4, strides=[2, 2], pads=[1, 1, 1, 1]), "features.1")
    x = net.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = net.node("Flatten", [x], axis=1)
    w, b = net.weight("fc.weight", RNG.normal(0, 0.3, (5, 16))), net.weight("fc.bias", RNG.normal(0, 1, 5))
    return net.save(tmp_path / "head.onnx", net.node("Gemm", [x, w, b], transB=1))


def computed_pads(tmp_path) -> Path:
    """The TorchScript exporter's ZeroPad2d: pads computed from constants at run time."""
    net = Net()

    def const(values):
        return net.node("Constant", [], value=numpy_helper.from_array(np.array(values, np.int64)))

    # F.pad's (left, right, top, bottom) = (1, 2, 0, 1), turned into ONNX's order as the exporter does
    zeros = net.node("ConstantOfShape", [const([4])], value=numpy_helper.from_array(np.zeros(1, np.int64)))
    pads = net.node("Reshape", [net.node("Concat", [const([1, 2, 0, 1]), zeros], axis=0), const([-1, 2])])
    pads = net.node("Slice", [pads, const([-1]), const([-(2 ** 62)]), const([0]), const([-1])])
    pads = net.node("Reshape", [net.node("Transpose", [pads], perm=[1, 0]), const([-1])])
    x = net.node("Pad", ["input", net.node("Cast", [pads], to=TensorProto.INT64)], name="/features/pad/Pad")
    x = net.conv(x, "features.conv", 3, 4, strides=[2, 2])
    x = net.node("Clip", [x, net.weight("low", 0.0), net.weight("high", 6.0)], name="/features/relu6/Clip")
    scale = net.weight("normalize.scale", RNG.uniform(0.5, 2, (1, 4, 1, 1)))
    x = net.node("Mul", [x, scale])
    return net.save(tmp_path / "pads.onnx", net.node("ReduceMean", [x], axes=[2, 3], keepdims=1))


GRAPHS = [conv_stack, grouped, conv_batchnorm, concat_branches, residual, ceil_mode_pool, lrn, flatten_gemm,
          computed_pads]


@pytest.mark.parametrize("make", GRAPHS, ids=[make.__name__ for make in GRAPHS])
def test_each_kind_of_graph_computes_what_onnxruntime_computes(make, tmp_path):
    assert largest_difference(make(tmp_path)) < 1e-5


def test_the_conversion_keeps_real_conv_layers_named_by_module(tmp_path):
    keras_model = convert(grouped(tmp_path))
    kinds = {layer.name: type(layer).__name__ for layer in keras_model.layers}
    assert kinds["dw"] == "DepthwiseConv2D" and kinds["grouped"] == "Conv2D"
    assert keras_model.get_layer("grouped").groups == 2
    from generator.networks import find_unit

    unit = find_unit(convert(conv_batchnorm(tmp_path)), "conv1")  # shown after its BatchNorm, as in Keras
    assert unit.per_channel == ("bn1",) and unit.nonlinearity == "relu"
    names = [layer.name for layer in convert(residual(tmp_path)).layers]
    assert {"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.relu"} <= set(names)


def test_module_paths_from_either_exporter():
    assert scope_path("/layer2/layer2.1/conv1/Conv") == "layer2.1.conv1"
    assert scope_path("/features/features.3/Conv") == "features.3"
    assert scope_path("/features/conv_dw_1/Conv") == "features.conv_dw_1"
    assert scope_path("/inception3a/branch2/branch2.0/conv/Conv") == "inception3a.branch2.0.conv"
    assert scope_path("/layer2/layer2.0/downsample/downsample.0/Conv") == "layer2.0.downsample.0"
    namespace = (": m.Net/features: torch.nn.modules.container.Sequential/features.conv1_bn: "
                 "torch.nn.modules.batchnorm.BatchNorm2d/_native_batch_norm: aten._native_batch_norm.default")
    assert namespace_path(namespace) == "features.conv1_bn"


def test_a_dynamic_size_needs_input_size(tmp_path):
    net = Net(size="height")
    net.input = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    path = net.save(tmp_path / "open.onnx", net.relu(net.conv("input", "conv", 3, 4, pads=[1, 1, 1, 1]), "relu"))
    with pytest.raises(AtlasError, match="--input-size"):
        convert(path)
    assert largest_difference(path, size=(12, 20)) < 1e-5


def bad_file_message(capsys, *args) -> str:
    code = main(["build", "--quiet", *map(str, args)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("filter-atlas: error: "), err
    return err


def test_bad_files_get_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all" * 10)
    assert "not a readable ONNX file" in bad_file_message(capsys, "--model", junk, "--cache-dir", tmp_path / "c")

    net = Net()
    net.input = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])
    second = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 3, 8, 8])
    x = net.node("Add", ["input", "mask"])
    graph = helper.make_graph(net.nodes, "two", [net.input, second],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)])
    two = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(two))
    assert "2 inputs (input, mask)" in bad_file_message(capsys, "--model", two, "--cache-dir", tmp_path / "c")

    old = Net(opset=11)
    old = old.save(tmp_path / "old.onnx", old.conv("input", "conv", 3, 4))
    assert "opset 11; export with opset 13 or later" in bad_file_message(capsys, "--model", old, "--cache-dir",
                                                                          tmp_path / "c")

    net = Net()
    x = net.conv("input", "conv", 3, 4, pads=[1, 1, 1, 1])
    scales = net.weight("scales", [1, 1, 2, 2])
    x = net.node("Resize", [x, "", scales], name="/decoder/up/Resize", mode="nearest")
    odd = net.save(tmp_path / "resize.onnx", x)
    message = bad_file_message(capsys, "--model", odd, "--cache-dir", tmp_path / "c")
    assert "ONNX op Resize" in message and "decoder.up" in message and "export" in message


def test_without_the_onnx_package_one_line_names_the_extra(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    path = conv_stack(tmp_path)
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert "filter-atlas[onnx]" in bad_file_message(capsys, "--model", path, "--cache-dir", tmp_path / "c")


def test_an_onnx_atlas_with_examples_is_named_by_module_and_converted_once(tmp_path, monkeypatch):
    import generator.networks.from_onnx as from_onnx

    model = conv_stack(tmp_path)
    cache, site = tmp_path / "cache", tmp_path / "site"
    args = ["--model", model, "--cache-dir", cache, "--images", Path(__file__).parent.parent / "data" / "photos"]
    main(["build", "--quiet", "--iters", "5", *map(str, args)])
    main(["render", "--cache-dir", str(cache), "--site-dir", str(site)])
    entries = json.loads((site / "atlas.json").read_text())
    model_entry = entries["models"][0] if "models" in entries else entries
    text = json.dumps(model_entry)
    assert "features.0" in text and "features.2" in text and "torch" in text
    assert any(site.rglob("*features.2*"))

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(from_onnx, "convert", no_second_conversion)
    main(["build", "--quiet", "--iters", "6", "--filters", "0", *map(str, args)])


def test_weights_in_a_second_file_load_and_count_in_the_key(tmp_path):
    from generator.description import open_network
    from generator.cache import Cache
    from generator.settings import Settings

    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    one_dir.mkdir(), two_dir.mkdir()
    one = conv_stack(one_dir)
    two = conv_stack(two_dir, save_as_external_data=True, all_tensors_to_one_file=True, location="stack.onnx.data",
                     size_threshold=0)
    assert (two_dir / "stack.onnx.data").is_file()
    assert largest_difference(two) < 1e-5

    def identity(path):
        return open_network(Settings(model=str(path)), Cache(tmp_path / "cache")).sha256

    before = identity(two)
    data = bytearray((two_dir / "stack.onnx.data").read_bytes())
    data[-1] ^= 1
    (two_dir / "stack.onnx.data").write_bytes(bytes(data))
    assert identity(two) != before != identity(one)
    (two_dir / "stack.onnx.data").unlink()
    with pytest.raises(AtlasError, match="stack.onnx.data, which is not beside it"):
        identity(two)


@pytest.mark.parametrize("name", ["mobilenet_v1_0.75_torch.onnx", "mobilenet_v1_0.75_torch_legacy.onnx"])
def test_the_real_pytorch_mobilenet_computes_what_onnxruntime_does(name):
    path = SHARED_MODELS / name
    if not path.is_file() or not PHOTOS.is_dir():
        pytest.skip(f"needs {path} and {PHOTOS} (../shared/ beside the checkout)")
    from generator.networks import network_input
    from generator.photos import find_photos, load_photo

    keras_model = convert(path)
    photos = find_photos(PHOTOS)[:8]
    x = np.asarray(network_input(np.stack([load_photo(p, (224, 224)) for p in photos]), "torch"))
    ours = np.asarray(keras_model(x))
    theirs = ort.InferenceSession(str(path)).run(None, {"input": nchw(x)})[0]
    difference = np.abs(ours - theirs).max()
    print(f"{name}: largest |logit difference| {difference:.2e} of {np.abs(theirs).max():.1f} on 8 photos")
    assert difference < 1e-3 * np.abs(theirs).max()
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    conv_names = [layer.name for layer in keras_model.layers if "Conv" in type(layer).__name__]
    assert len(conv_names) == 28 and conv_names[0] == "features.conv1" and "features.conv_pw_13" in conv_names


def test_an_onnx_atlas_shards_merges_and_shows_every_view_live(atlas, tmp_path):
    model = residual(tmp_path)
    common = ["--model", model, "--layers", "layer1", "--iters", 2, "--filters", "0", "--views", "unit",
              "--images", Path(__file__).parent.parent / "data" / "photos", "--quiet"]
    for k in range(2):
        code, _, err = atlas("build", *common, "--cache-dir", tmp_path / f"part{k}", "--shard", f"{k}/2")
        assert code == 0, err
    code, _, err = atlas("merge", tmp_path / "part0", tmp_path / "part1", "--cache-dir", tmp_path / "merged")
    assert code == 0, err
    code, out, err = atlas("build", *common, "--cache-dir", tmp_path / "merged", "--live-site", tmp_path / "site")
    assert code == 0, err
    record = json.loads(next((tmp_path / "merged" / "builds").glob("*.json")).read_text())
    assert record["computed"]["filters"] == 0  # every picture came from the two shards
    (entry,) = json.loads((tmp_path / "site" / "atlas.json").read_text())["models"]
    layers = {layer["name"]: layer for block in entry["blocks"] for layer in block["layers"]}
    assert list(layers) == ["layer1.0.conv1", "layer1.0.conv2"]  # the block of module layer1
    assert [block["name"] for block in entry["blocks"]] == ["layer1"]
    views = {picture["view"] for picture in layers["layer1.0.conv2"]["filters"][0]["pictures"]}
    assert {"channel", "neuron", "negative"} <= views


def test_a_module_paths_last_part_names_its_layer_where_unique():
    from generator.networks import ConvLayer
    from generator.specs import select_layers

    layers = [ConvLayer(name, name.split(".")[0], 4, "conv", (8, 8))
              for name in ["features.conv_pw_8", "layer1.0.conv1", "layer2.0.conv1"]]
    assert [l.name for l in select_layers(layers, "conv_pw_8")] == ["features.conv_pw_8"]
    assert [l.name for l in select_layers(layers, "layer2.0.conv1,features")] == ["features.conv_pw_8",
                                                                                  "layer2.0.conv1"]
    with pytest.raises(AtlasError, match="conv1"):
        select_layers(layers, "conv1")  # two layers' paths end so: name one


def test_a_pictures_key_holds_the_converters_version(tmp_path, monkeypatch):
    """The same ONNX file converted by another converter version may compute
    other values: its pictures must not be taken for the old ones."""
    import generator.networks as networks
    from generator.cache import Cache
    from generator.description import open_network
    from generator.keys import filter_params
    from generator.settings import Settings

    settings = Settings(model=str(conv_stack(tmp_path)))
    net = open_network(settings, Cache(tmp_path / "cache"))
    before = filter_params(settings, net, "fourier", "channel", "features.0", 0)
    monkeypatch.setattr(networks, "CONVERTER_VERSION", networks.CONVERTER_VERSION + 1)
    after = filter_params(settings, open_network(settings, Cache(tmp_path / "cache")), "fourier", "channel",
                          "features.0", 0)
    assert before["onnx_converter"] + 1 == after["onnx_converter"]


def test_circuits_follow_an_onnx_files_padded_max_pool(tmp_path):
    """PyTorch pads max pooling with -inf (a layer of the conversion's own): the
    circuits walk through it as through any padding, as the Circuits papers do."""
    from generator.circuits.expanded import Walker, expanded_weights, unit_stops
    from generator.networks import conv_layers

    net = Net()
    x = net.relu(net.conv("input", "conv1", 3, 4, pads=[1, 1, 1, 1]), "relu")
    x = net.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    x = net.conv(x, "layer1.conv", 4, 2, pads=[1, 1, 1, 1])
    keras_model = convert(net.save(tmp_path / "pool.onnx", x))
    names = [layer.name for layer, _ in conv_layers(keras_model)]
    walker = Walker(unit_stops(keras_model, names))
    expanded = expanded_weights(keras_model, "layer1.conv", walker)
    assert list(expanded) == ["conv1"] and np.abs(expanded["conv1"].weights).sum() > 0
