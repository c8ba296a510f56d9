"""The network as a build sees it: its identity (the file's hash, the code its
loading needs) and its description, what a build needs to know of it without
loading it again, cached by the file's hash and DESCRIPTION_VERSION.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from . import networks as models
from .cache import Cache, atomic_write
from .errors import AtlasError
from .networks.receptive import receptive_fields
from .records import build_of_network
from .settings import Settings
from .tf_quiet import import_keras

# Bump when what `describe` records of a network changes, or the rules that find
# a layer's unit or the BatchNorms its pictures fold (networks/units.py, folding.py).
DESCRIPTION_VERSION = 8


@dataclass
class Network:
    """The model as the build sees it: its identity, and the Keras model once loaded."""

    name: str
    source: Path
    sha256: str
    weights_note: str
    input_size: tuple[int, int] | None = None
    description: dict = field(default_factory=dict)
    preprocess: str = "none"
    preprocess_why: str = ""
    keras_model: object | None = None
    code: dict = field(default_factory=dict)  # custom_objects, unsafe_deserialization: what loading needs
    conversions: Path | None = None  # where an ONNX file's Keras conversion is kept

    @cached_property
    def code_key(self) -> dict:
        """What the pictures' keys need of the code loading runs besides the model
        file: the custom-objects file's bytes (a custom layer's `call` is there,
        not in the model file), so an edited custom layer gets new pictures;
        for an ONNX file, the version of our conversion of it."""
        if models.is_onnx_file(self.name):
            return {"onnx_converter": models.CONVERTER_VERSION}
        path = self.code.get("custom_objects")
        if not path:
            return {}
        try:
            return {"custom_objects_sha256": models.file_digests(Path(path))[0]}
        except OSError as error:
            raise AtlasError(f"cannot read --custom-objects {path}: {error.strerror or error}") from None

    @property
    def layers(self) -> list[models.ConvLayer]:
        return [models.ConvLayer(**layer) for layer in self.description["layers"]]

    def unit(self, layer: str) -> models.Unit:
        """Where the layer's unit is, as the description records it (and its key says)."""
        conv, per_channel, nonlinearity = self.description["unit_graph"][layer]
        return models.Unit(conv, tuple(per_channel), nonlinearity)

    def fold(self, layer: str) -> dict[str, str]:
        """The BatchNorms the layer's pictures fold, as the description records them."""
        return self.description["folded"].get(layer, {})

    def load(self):
        if self.keras_model is None:
            self.keras_model = models.load_model(self.name, self.source, self.input_size, **self.code,
                                                 sha256=self.sha256, conversions=self.conversions)
        return self.keras_model


def open_network(settings: Settings, cache: Cache) -> Network:
    """Identify the network by its file's hash; describe it from the cache if we can."""
    source = models.model_source(settings.model, settings.weights)
    sha, md5 = models.file_digests(source)
    note = models.describe_weights(settings.model, source, sha, md5)
    if models.is_onnx_file(settings.model):
        sha = models.onnx_digest(source, sha)  # with the weights the exporter put beside it
    net = Network(settings.model, source, sha, note, settings.input_size, code=model_code(settings, cache, sha),
                  conversions=cache.root / "models")
    size = "x".join(map(str, settings.input_size)) if settings.input_size else "default"
    desc_path = cache.root / "models" / f"{sha[:24]}-{size}-v{DESCRIPTION_VERSION}.json"
    try:
        net.description = json.loads(desc_path.read_text())
    except (FileNotFoundError, ValueError):
        net.description = describe(net.load())
        atomic_write(desc_path, json.dumps(net.description).encode())
    if not net.description["layers"]:
        raise AtlasError(f"{settings.model} has no 2-D convolution layers to visualize")
    net.preprocess, net.preprocess_why = choose_preprocess(settings, tuple(net.description["preprocess_guess"]))
    return net


def model_code(settings: Settings, cache: Cache, sha256: str) -> dict:
    """What loading the model file needs: as given, else as the last build of
    this very file recorded it, so that a rebuild needs no flags again."""
    code = {"custom_objects": settings.custom_objects, "unsafe_deserialization": settings.unsafe_deserialization}
    if any(code.values()) or not models.is_model_file(settings.model):
        return code
    record = build_of_network(cache.root, sha256)
    if record is None:
        return code
    return {key: record.get("settings", {}).get(key, value) for key, value in code.items()}


def choose_preprocess(settings: Settings, guess: tuple[str, str]) -> tuple[str, str]:
    """The network's preprocessing and why: asked for, built in, or guessed from the model file."""
    if settings.preprocess:
        return settings.preprocess, "--preprocess"
    if models.is_onnx_file(settings.model):
        return "torch", models.ONNX_PREPROCESS_WHY
    if not models.is_model_file(settings.model):
        return models.builtin_spec(settings.model).preprocess, f"{settings.model}'s own"
    return guess


def describe(keras_model) -> dict:
    """What a build needs to know of a network without loading it again."""
    convs = models.conv_layers(keras_model)
    resolutions = [tuple(int(d) for d in layer.output.shape[1:3]) for layer, _ in convs]
    blocks = models.assign_blocks([layer.name for layer, _ in convs], resolutions)
    layers = [
        models.ConvLayer(layer.name, block, int(layer.output.shape[-1]), kind, resolution)
        for (layer, kind), block, resolution in zip(convs, blocks, resolutions)
    ]
    units = {layer.name: models.find_unit(keras_model, layer.name) for layer, _ in convs}
    folds = models.folds_batchnorm(keras_model)
    return {
        "input_shape": list(models.input_shape(keras_model)),
        "layers": [asdict(layer) for layer in layers],
        # the unit's key, and the unit and folded BatchNorms the pictures' engine is given:
        # the keys and the pixels come from this one record
        "units": {name: unit.key() for name, unit in units.items()},
        "unit_graph": {name: [unit.conv, list(unit.per_channel), unit.nonlinearity] for name, unit in units.items()},
        "folded": ({name: models.unit_fold_pairs(keras_model, name, unit) for name, unit in units.items()}
                   if folds else {}),
        "all_layers": [layer.name for layer in keras_model.layers],
        "preprocess_guess": list(models.guess_preprocess(keras_model)),
        "fields": {name: [list(f.size), list(f.jump), list(f.start)]
                   for name, f in receptive_fields(keras_model, [layer.name for layer, _ in convs]).items()},
        "flops": models.forward_flops(keras_model),
        "normalizes": any(isinstance(layer, import_keras().layers.Normalization) for layer in keras_model.layers),
        "folds_batchnorm": folds,
    }
