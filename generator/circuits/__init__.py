"""Circuits: each unit's strongest inputs and outputs, from the weights alone.

A build computes, for the conv layers it shows and those they feed, the
expanded weights between units (expanded.py) and the links a unit page lists
(links.py), caches them per layer under the network's hash, and puts each
filter's `inputs` and `outputs` into the build record, so that `render` needs
no TensorFlow. A second build reads the cache and loads nothing.

Depthwise convolutions are both units of the atlas and steps of the path: a
pointwise layer's inputs are the units of the conv layer before the depthwise
one, through it (channel to channel); a depthwise unit's outputs are the
pointwise units that read it directly. A layer whose path cannot be followed
has its inputs left out (and the layers feeding it their outputs), with the
reason in the record's `circuits.missing`.
"""

from __future__ import annotations

import hashlib
import json
import time

from ..cache import atomic_write
from ..names import safe_name

# Bump when what is cached per layer changes (the path's rules, the ranking, the fields).
CIRCUITS_VERSION = 2  # 2: an ONNX file's padding before max pooling and Clip are followed
SET_ASIDE = ("ReLU and the other nonlinearities (and LRN) are set aside; max pooling counts as the identity "
             "(spread over its window where it strides); BatchNorms are folded; borders are left out")


def circuits_folder(net, cache):
    code = hashlib.sha256(json.dumps(net.code_key, sort_keys=True).encode()).hexdigest()[:8]
    size = "x".join(map(str, net.input_size)) if net.input_size else "default"
    return cache.root / "circuits" / f"{net.sha256[:24]}-{size}-{code}-v{CIRCUITS_VERSION}"


def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Computer:
    """The network's walks, made once and only where something is not cached."""

    def __init__(self, net):
        from ..networks.units import conv_layers
        from .expanded import Walker, unit_stops

        self.model = net.load()
        names = [layer.name for layer, _ in conv_layers(self.model)]
        self.depthwise = {layer.name for layer, kind in conv_layers(self.model) if kind == "depthwise"}
        self.names = names
        self.through = Walker(unit_stops(self.model, names, transparent=self.depthwise))
        self.literal = Walker(unit_stops(self.model, names))

    def sources(self, target: str) -> tuple[list[str], str | None]:
        """The layers whose units feed `target` (for their outputs), and why it cannot be followed, if so."""
        from .expanded import Unfollowable

        found = []
        for walker in (self.through, self.literal):
            try:
                found += [s for s in walker.paths(self.model.get_layer(target).input) if s not in found]
            except Unfollowable as error:
                return sorted(set(found) | set(error.sources)), f"{target}: {error}"
            except Exception as error:  # a graph this code does not know: left out, the build goes on
                return found, f"{target}: its path could not be followed ({type(error).__name__}: {error})"
        return found, None

    def layer(self, target: str) -> dict:
        """What the cache keeps of one target layer: its units' inputs, and its candidates
        for the outputs of each unit that feeds it."""
        from .expanded import Unfollowable, expanded_weights
        from .links import layer_links

        sources, why = self.sources(target)
        if why:
            return {"layer": target, "sources": sources, "missing": why}
        try:
            through = layer_links(target, {s: e.weights for s, e in
                                           expanded_weights(self.model, target, self.through).items()})
            literal = {s: e.weights for s, e in  # a depthwise unit's outputs: the units reading it directly
                       expanded_weights(self.model, target, self.literal, only=self.depthwise).items()}
        except Unfollowable as error:
            return {"layer": target, "sources": sources, "missing": f"{target}: {error}"}
        except Exception as error:  # as in `sources`
            return {"layer": target, "sources": sources,
                    "missing": f"{target}: its path could not be followed ({type(error).__name__}: {error})"}
        direct = layer_links(target, literal)
        outputs = {**through["outputs"], **direct["outputs"]}
        return {"layer": target, "sources": sorted(outputs), "inputs": through["inputs"], "outputs": outputs}


def network_circuits(net, cache, wanted: dict[str, list[int]]) -> tuple[dict, dict]:
    """Per (layer, filter) of `wanted`, its `inputs` and `outputs` (or None where left
    out), and the summary the record keeps: what was left out and why, and the seconds."""
    started = time.perf_counter()
    folder = circuits_folder(net, cache)
    graph = read_json(folder / "graph.json")
    computer = None
    if graph is None:
        computer = Computer(net)
        graph = {"layers": computer.names,
                 "sources": {name: computer.sources(name)[0] for name in computer.names}}
        atomic_write(folder / "graph.json", json.dumps(graph).encode())
    readers = {name: [t for t in graph["layers"] if name in graph["sources"][t]] for name in wanted}
    needed = list(dict.fromkeys([*wanted, *(t for found in readers.values() for t in found)]))
    layers, computed = {}, 0
    for target in needed:
        path = folder / f"{safe_name(target)}.json"
        layers[target] = read_json(path)
        if layers[target] is None:
            computer = computer or Computer(net)
            layers[target] = computer.layer(target)
            atomic_write(path, json.dumps(layers[target]).encode())
            computed += 1
    found, missing = {}, {}
    for name, indices in wanted.items():
        own = layers[name]
        broken = [layers[t]["missing"] for t in readers[name] if "missing" in layers[t]]
        if "missing" in own:
            missing.setdefault(name, {})["inputs"] = own["missing"]
        if broken:
            missing.setdefault(name, {})["outputs"] = broken[0]
        for i in indices:
            from .links import merged_outputs

            found[(name, i)] = {
                "inputs": None if "missing" in own else own["inputs"].get(str(i), []),
                "outputs": None if broken else merged_outputs([layers[t]["outputs"][name][str(i)] for t in readers[name]]),
            }
    summary = {"version": CIRCUITS_VERSION, "set_aside": SET_ASIDE, "missing": missing,
               "computed_layers": computed, "seconds": round(time.perf_counter() - started, 3)}
    return found, summary


def attach_circuits(record: dict, found: dict, summary: dict) -> dict:
    """Each filter entry's `inputs` and `outputs` (absent where left out), and the summary."""
    record["circuits"] = summary
    for layer in record["layers"]:
        for entry in layer["entries"]:
            links = found.get((layer["name"], entry["index"]), {})
            for key in ("inputs", "outputs"):
                if links.get(key) is not None:
                    entry[key] = links[key]
    return record
