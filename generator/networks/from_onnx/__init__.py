"""PyTorch networks through ONNX: the file `torch.onnx.export` writes, built
as a Keras model of real Conv2D, BatchNormalization, ... layers named by the
module paths the exporter recorded.

Our own small builder, not a converter package: onnx2tf makes a Keras 2 model
of TFOpLambda layers (no Conv2D for the atlas to find), nobuco needs Keras 2
and names layers generically (docs/onnx.md has the measurements). The
conversion is saved beside the build's cache, named by the ONNX file's digest
and CONVERTER_VERSION, so a rebuild loads it instead of converting again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ...errors import AtlasError
from ...tf_quiet import import_keras
from .graph import default_opset, external_files, image_input, read_model

# Bump when a conversion of the same file could give other layers or values.
CONVERTER_VERSION = 1
SUFFIX = ".onnx"
ONNX_PREPROCESS_WHY = ("an ONNX file: PyTorch's convention, RGB in [0, 1] then ImageNet's mean and std "
                       "(--preprocess overrides it)")


def is_onnx_file(model: str) -> bool:
    return str(model).lower().endswith(SUFFIX)


def onnx_digest(path: Path, file_sha256: str) -> str:
    """The network's identity: the .onnx file's digest, and with it those of
    the files beside it that hold its weights (the exporter's .onnx.data)."""
    extra = external_files(path)
    if not extra:
        return file_sha256
    digest = hashlib.sha256(file_sha256.encode())
    for data in extra:
        if not data.is_file():
            raise AtlasError(f"{path} keeps its weights in {data.name}, which is not beside it")
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def convert(path: Path, input_size: tuple[int, int] | None = None):
    """The Keras model of the ONNX file at `path`, NHWC, at its own input size
    or `input_size` where the file leaves it open."""
    from .ops import Graph
    from .graph import constants

    keras = import_keras()
    model = read_model(path)
    name, channels, height, width = image_input(model, path)
    size = fixed_size(path, (height, width), input_size)
    graph = Graph(constants(model), default_opset(model), path)
    inputs = keras.Input((*size, channels), name=re.sub(r"\W", "_", name))
    graph.values[name] = inputs
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise graph.unsupported(node, f"it is from the op set {node.domain!r}, not ONNX's own")
        graph.add(node)
    outputs = [graph.values[value.name] for value in model.graph.output]
    # "onnx_": not a keras.applications family's name (guess_preprocess reads those)
    keras_name = "onnx_" + re.sub(r"\W", "_", path.name[: -len(SUFFIX)])
    return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=keras_name)


def fixed_size(path: Path, own: tuple[int | None, int | None], asked: tuple[int, int] | None):
    if asked is None:
        if None in own:
            raise AtlasError(f"{path.name} has no fixed input size; pass --input-size, e.g. --input-size 224")
        return own
    if own != (None, None) and own != tuple(asked):
        raise AtlasError(f"{path.name} has a fixed input of {own[0]}x{own[1]}; --input-size "
                         f"{asked[0]}x{asked[1]} applies only to models without one")
    return tuple(asked)


def load_onnx(path: Path, sha256: str, input_size: tuple[int, int] | None = None, store: Path | None = None):
    """The converted model: from `store` where an earlier build saved it, else
    converted now (and saved there)."""
    from . import layers  # noqa: F401  registers the custom layers the saved file names

    keras = import_keras()
    size = "x".join(map(str, input_size)) if input_size else "own"
    saved = store / f"{sha256[:24]}-{size}-onnx{CONVERTER_VERSION}.keras" if store else None
    if saved is not None and saved.is_file():
        try:
            return keras.models.load_model(saved, compile=False)
        except Exception:  # a damaged copy: convert again
            saved.unlink(missing_ok=True)
    net = convert(path, input_size)
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=saved.parent, prefix=f".{saved.stem}.", suffix=".keras")
        os.close(fd)
        tmp = Path(tmp)  # a name of its own: concurrent builds never write one file
        try:
            net.save(tmp)
            os.replace(tmp, saved)
        finally:
            tmp.unlink(missing_ok=True)
    return net
