"""Parsing the user's `--layers` and `--filters` selections."""

from __future__ import annotations

from .errors import AtlasError
from .networks import ConvLayer, not_a_conv_layer


def parse_filters(spec: str | None) -> list[int] | None:
    """'0-7,12' -> [0, 1, ..., 7, 12]; None means every filter."""
    if spec is None:
        return None
    indices: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:  # a range; a leading "-" is a negative number
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                indices.update(range(low, high + 1))
            else:
                indices.add(int(part))
        except ValueError:
            raise AtlasError(
                f"cannot parse --filters {spec!r}: expected indices and ranges like 0-7,12"
            ) from None
    negative = [i for i in indices if i < 0]
    if negative:
        raise AtlasError(f"filter index {min(negative)} is negative")
    return sorted(indices)


def by_module_tail(name: str, names: list[str]) -> str:
    """A PyTorch module path's last parts name its layer where no other layer's
    path ends so: `conv_pw_8` is an ONNX file's `features.conv_pw_8`."""
    if name in names:
        return name
    matches = [full for full in names if full.endswith("." + name)]
    return matches[0] if len(matches) == 1 else name


def select_layers(layers: list[ConvLayer], spec: str | None, all_names=()) -> list[ConvLayer]:
    """Layers named in `spec` (layer or block names, comma-separated), in model order.
    `all_names` holds every layer of the model, to tell "not a convolution" from "unknown"."""
    if spec is None:
        return list(layers)
    wanted = [name.strip() for name in spec.split(",") if name.strip()]
    if not wanted:
        raise AtlasError(f"cannot parse --layers {spec!r}: expected names like block1_conv1,block3")
    wanted = [by_module_tail(name, [layer.name for layer in layers]) for name in wanted]
    known = {layer.name for layer in layers} | {layer.block for layer in layers}
    for name in wanted:
        if name not in known:
            raise not_a_conv_layer(name, [layer.name for layer in layers], exists=name in all_names)
    return [l for l in layers if l.name in wanted or l.block in wanted]


def select_filters(layers: list[ConvLayer], indices: list[int] | None) -> dict[str, list[int]]:
    """Per layer, the requested filter indices that it has."""
    if indices is None:
        return {layer.name: list(range(layer.filters)) for layer in layers}
    widest = max(layers, key=lambda layer: layer.filters)
    if indices[-1] >= widest.filters:
        raise AtlasError(
            f"filter {indices[-1]} is out of range: {widest.name} has filters 0-{widest.filters - 1}"
        )
    return {layer.name: [i for i in indices if i < layer.filters] for layer in layers}
