"""Reading an ONNX file: the checks a user's file must pass, its constants,
and the PyTorch module path each node came from.

The two exporters record module paths differently: the TorchScript one in
node names (`/layer2/layer2.1/conv1/Conv`), today's dynamo one in each node's
`metadata_props["namespace"]` (`...features.conv1_bn: torch.nn...BatchNorm2d/...`)
with opaque names (`node_Conv_505`). Where it folded a BatchNorm into a Conv,
the namespace is the BatchNorm's; the Conv's weight keeps the conv's name
(`features.conv1.weight`), so that comes first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import AtlasError

EXTRA = "pip install 'filter-atlas[onnx]'"


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise AtlasError(f"reading ONNX files needs the onnx package: {EXTRA}") from None
    return onnx


def read_model(path: Path):
    """The checked model, with its weights (from beside it where the exporter
    put them in a second file)."""
    onnx = import_onnx()
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError, a missing .onnx.data file
        raise AtlasError(f"{path} is not a readable ONNX file: {first_words(exc)}") from None
    if not model.graph.node:
        raise AtlasError(f"{path} is not an ONNX model (no graph nodes); export it with torch.onnx.export")
    opset = default_opset(model)
    if opset < 13:
        raise AtlasError(f"{path} uses ONNX opset {opset}; export with opset 13 or later "
                         "(torch.onnx.export(..., opset_version=17))")
    return model


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def external_files(path: Path) -> list[Path]:
    """The files beside `path` that hold its weights (`model.onnx.data`), in a
    fixed order: their bytes are the network too."""
    onnx = import_onnx()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise AtlasError(f"{path} is not a readable ONNX file: {first_words(exc)}") from None
    locations = {entry.value for tensor in model.graph.initializer
                 for entry in tensor.external_data if entry.key == "location"}
    return [path.parent / location for location in sorted(locations)]


def image_input(model, path: Path):
    """The graph's one image input: (name, channels, height, width); a size the
    file leaves open is None."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise AtlasError(f"{path} has {len(inputs)} inputs ({names}); the atlas needs a network "
                         "with one image input: export the model with a single NCHW image tensor")
    value = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] is None:
        raise AtlasError(f"{path}: input {value.name!r} has shape {shape_text(dims)}; the atlas needs "
                         "an image input [batch, channels, height, width] (NCHW) with a fixed channel count")
    return value.name, dims[1], dims[2], dims[3]


def shape_text(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def constants(model) -> dict[str, np.ndarray]:
    """The initializers, as arrays."""
    from onnx import numpy_helper

    return {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}


def evaluate(node, inputs: list[np.ndarray], opset: int) -> list[np.ndarray]:
    """A node whose inputs are all constants, computed here (the TorchScript
    exporter's padding arithmetic, shape tensors)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [name for name in node.input]
    feeds = {name: value for name, value in zip(names, inputs) if name}
    graph = helper.make_graph([node], "constant", [helper.make_tensor_value_info(n, 1, None) for n in feeds], [
        helper.make_tensor_value_info(n, 1, None) for n in node.output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return [np.asarray(out) for out in ReferenceEvaluator(model).run(None, feeds)]


def attributes(node) -> dict:
    from onnx import helper

    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def module_path(node) -> str | None:
    """The PyTorch module path a node came from, as its exporter recorded it."""
    if node.op_type == "Conv" and len(node.input) > 1:
        weight = re.fullmatch(r"([A-Za-z_][\w.]*)\.weight", node.input[1])
        if weight:
            return weight.group(1)
    props = {prop.key: prop.value for prop in node.metadata_props}
    if "namespace" in props:
        return namespace_path(props["namespace"])
    if node.name.startswith("/"):
        return scope_path(node.name)
    return None


def namespace_path(namespace: str) -> str | None:
    """dynamo's `: Net/features: Sequential/features.conv1_bn: BatchNorm2d/op: aten.op`
    -> `features.conv1_bn`: the innermost module's path (the last scope that is
    a module, not an aten op)."""
    paths = [scope.split(": ")[0] for scope in namespace.split("/")
             if ": " in scope and not scope.split(": ", 1)[1].startswith("aten.")]
    paths = [path for path in paths if path]
    return paths[-1] if paths else None


def scope_path(name: str) -> str | None:
    """TorchScript's `/layer2/layer2.1/conv1/Conv` -> `layer2.1.conv1`: a scope is
    a module's attribute name, or a container's child as `container.index`
    (`/inception3a/branch2/branch2.0/conv/Conv` -> `inception3a.branch2.0.conv`)."""
    path: list[str] = []
    for scope in (scope for scope in name.strip("/").split("/")[:-1] if scope):
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path) or None


def first_words(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
