"""A user's own model as the atlas sees it: one flat graph.

Keras's transfer-learning guide calls a keras.applications backbone as one
layer of a new model, behind augmentation and a Rescaling layer. The atlas
reaches the conv layers inside such sub-models (functional or Sequential, at
any depth) by rebuilding the model as one flat functional graph of copies of
its layers, holding the same weights, so that everything else (the unit rule,
receptive fields, blocks, preprocessing) works on it as on any model:

- a layer keeps its own name where that is unique in the whole model, and is
  qualified by the sub-models it sits in where it is not: `backbone_b/conv1`,
  the shortest such path that is unique;
- random augmentation layers (RandomFlip, RandomRotation, RandomZoom, ...),
  no-ops at inference, are left out, so that no picture or example is ever
  flipped or rotated by them.

A model with neither sub-models nor augmentation layers is used as loaded,
so its layer names, units and cache keys stay what they were.
"""

from __future__ import annotations

from collections import defaultdict

from ..errors import AtlasError
from ..tf_quiet import import_keras

# Keras's image augmentation layers that are the identity at inference.
# (RandomCrop is not among them: at inference it crops to its size.)
AUGMENTATION = {
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
    "RandomHeight", "RandomWidth", "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness",
    "RandomShear", "RandomColorJitter", "RandomColorDegeneration", "RandomErasing", "RandomGaussianBlur",
    "RandomInvert", "RandomPerspective", "RandomPosterization", "RandomElasticTransform", "RandAugment",
    "AugMix", "CutMix", "MixUp", "Pipeline",
}


def is_augmentation(layer) -> bool:
    cls = type(layer)
    return cls.__name__ in AUGMENTATION and cls.__module__.startswith("keras")


def is_graph_model(layer) -> bool:
    """A functional or Sequential model: one whose layers we can walk."""
    keras = import_keras()
    from keras.src.models.functional import Functional

    return isinstance(layer, (Functional, keras.Sequential))


def needs_flattening(model) -> bool:
    return any(is_graph_model(layer) or is_augmentation(layer) for layer in model.layers)


def inner_layers(model):
    """The model's own layers, without its input layers."""
    keras = import_keras()
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def layer_paths(model, path: tuple = ()) -> list[tuple[str, ...]]:
    """Every layer the flat model will hold, as (sub-model names..., layer name)."""
    found = []
    for layer in inner_layers(model):
        if is_graph_model(layer):
            found += layer_paths(layer, path + (layer.name,))
        elif not is_augmentation(layer):
            found.append(path + (layer.name,))
    return found


def qualified_names(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Each path's name: its last part where that is unique, else the shortest
    tail of the path (`backbone_b/conv1`) that is."""
    length = {path: 1 for path in paths}
    while True:
        by_name = defaultdict(set)
        for path in paths:
            by_name[path[-length[path]:]].add(path)
        grew = False
        for clash in (group for group in by_name.values() if len(group) > 1):
            for path in clash:
                if length[path] < len(path):
                    length[path] += 1
                    grew = True
        if not grew:
            return {path: "/".join(path[-length[path]:]) for path in paths}


def clone_layer(layer, **config):
    """A fresh copy of `layer` (no weights yet) with `config` changed. A Lambda
    is copied with its function as it is, never through its serialized code."""
    keras = import_keras()
    if isinstance(layer, keras.layers.Lambda):
        own = layer.get_config()
        return keras.layers.Lambda(layer.function, output_shape=layer._output_shape, mask=layer.mask,
                                   arguments=layer.arguments, name=config.get("name", layer.name),
                                   dtype=config.get("dtype", own.get("dtype")))
    return layer.__class__.from_config({**layer.get_config(), **config})


def copy_weights(target, source) -> None:
    """`source`'s weights into `target` (a layer or a model), and the state
    some preprocessing layers derive from them (an adapted Normalization's
    mean and variance), as Keras's own loader settles it."""
    target.set_weights(source.get_weights())
    for layer in getattr(target, "layers", [target]):
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()


def flatten(model, input_size: tuple[int, int] | None = None):
    """The model as one flat functional graph (see the module's docstring), at
    `input_size` where the model's own input has no fixed spatial size."""
    keras = import_keras()
    from keras import tree

    if len(model.inputs) != 1:
        raise AtlasError(f"{model.name} has {len(model.inputs)} inputs; the atlas needs a model with one image input")
    _, height, width, channels = model.input_shape
    if (height is None or width is None) and input_size:
        height, width = input_size
    source_input = model.inputs[0]
    inputs = keras.Input((height, width, channels), name=source_input._keras_history[0].name)

    names = qualified_names(layer_paths(model))
    used: set[str] = {inputs._keras_history[0].name}
    copies: list[tuple[object, object, str]] = []  # (copy, original, final name)

    def final_name(path) -> str:
        name, count = names[path], 1
        while name in used:  # a sub-model called twice: its layers twice
            count += 1
            name = f"{names[path]}_{count}"
        used.add(name)
        return name

    def through_model(sub, path, tensors):
        if isinstance(sub, keras.Sequential):
            x = tensors[0]
            for layer in sub.layers:
                x = through(layer, path, (x,), {})
            return x
        return sub._run_through_graph(tensors, call_fn=lambda op, *args, **kwargs: through(op, path, args, kwargs))

    submodels: list[str] = []

    def through(layer, path, args, kwargs):
        if is_graph_model(layer):
            submodels.append(layer.name)
            return through_model(layer, path + (layer.name,), tree.flatten(args[0]))
        if is_augmentation(layer):
            return args[0]
        if not isinstance(layer, keras.layers.Layer):  # an operation without state (keras.ops.add)
            return layer(*args, **kwargs)
        name = final_name(path + (layer.name,))
        try:
            copy = clone_layer(layer, name=name if "/" not in name else f"__atlas_{len(copies)}")
        except Exception as exc:  # a custom layer whose get_config does not round-trip
            raise AtlasError(f"cannot copy layer {name!r} ({type(layer).__name__}) out of its sub-model: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
        outputs = copy(*args, **kwargs)
        copies.append((copy, layer, name))
        return outputs

    outputs = through_model(model, (), [inputs])
    flat = keras.Model(inputs, outputs, name=model.name)
    flat._atlas_submodels = tuple(submodels)  # their names, for the preprocessing guess
    for order, (copy, original, name) in enumerate(copies):
        copy_weights(copy, original)
        # The order the sub-models were walked in: each one's layers together
        # (Keras orders the flat model's layers by depth, interleaving them).
        copy._atlas_order = order
        # Keras refuses "/" in a name it is given, not in one it holds; the
        # flat model is never saved, and its truncations get neutral names.
        copy.name = name
    return flat
