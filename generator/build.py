"""The build driver: which filters are wanted, which are cached, compute the rest.

Reads nothing but the weights file's bytes and the cache when nothing has
changed, so a no-op rebuild does not even start TensorFlow.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tqdm import tqdm

from . import model as models
from .cache import Cache, atomic_write, cache_key
from .errors import AtlasError
from .imaging import filter_seed, start_image, to_uint8
from .specs import parse_filters, select_filters, select_layers

# Bump when a change to the code changes the pixels it makes for the same inputs.
ALGORITHM_VERSION = 1
RECORD_NAME = "last-build.json"


@dataclass(frozen=True)
class Settings:
    """Everything, besides the network, that determines a filter's picture."""

    model: str = models.DEFAULT_MODEL
    weights: str | None = None
    method: str = "seed"
    iters: int = 50
    step: float = 10.0
    seed: int = 0
    precision: str = "auto"  # resolved to float32 or bfloat16 by the hardware

    def method_params(self) -> dict:
        return {"name": self.method, "iters": self.iters, "step": self.step, "init": "uniform[-0.5,0.5)"}


@dataclass
class Network:
    """The model as the build sees it: its identity, and the Keras model once loaded."""

    name: str
    source: Path
    sha256: str
    weights_note: str
    description: dict
    keras_model: object | None = None

    @property
    def layers(self) -> list[models.ConvLayer]:
        return [models.ConvLayer(**layer) for layer in self.description["layers"]]

    def load(self):
        if self.keras_model is None:
            self.keras_model = models.load_model(self.name, self.source)
        return self.keras_model


def open_network(settings: Settings, cache: Cache) -> Network:
    """Identify the network by its file's hash; describe it from the cache if we can."""
    source = models.model_source(settings.model, settings.weights)
    sha, md5 = models.file_digests(source)
    desc_path = cache.root / "models" / f"{sha[:24]}.json"
    note = models.describe_weights(settings.model, source, md5)
    net = Network(settings.model, source, sha, note, {})
    try:
        net.description = json.loads(desc_path.read_text())
    except (FileNotFoundError, ValueError):
        keras_model = net.load()
        net.description = {
            "input_shape": list(models.input_shape(keras_model)),
            "layers": [asdict(layer) for layer in models.conv_layers(keras_model)],
        }
        if not net.description["layers"]:
            raise AtlasError(f"{settings.model} has no 2-D convolution layers to visualize")
        atomic_write(desc_path, json.dumps(net.description).encode())
    return net


def filter_params(settings: Settings, net: Network, layer: str, index: int) -> dict:
    return {
        "algorithm": ALGORITHM_VERSION,
        "network": net.sha256,
        "input_shape": net.description["input_shape"],
        "layer": layer,
        "filter": index,
        "method": settings.method_params(),
        "seed": settings.seed,
        "precision": settings.precision,
    }


def build(
    settings: Settings,
    cache_dir: Path,
    layers: str | None = None,
    filters: str | None = None,
    progress: bool = True,
) -> dict:
    """Make sure every selected filter is in the cache; returns the build record."""
    if settings.iters < 1:
        raise AtlasError(f"--iters must be at least 1, got {settings.iters}")
    if settings.precision == "auto":
        from .engine import default_precision

        settings = replace(settings, precision=default_precision())
    cache = Cache(cache_dir)
    net = open_network(settings, cache)
    chosen = select_layers(net.layers, layers)
    wanted = select_filters(chosen, parse_filters(filters))
    keys = {
        (name, i): cache_key(filter_params(settings, net, name, i))
        for name, indices in wanted.items()
        for i in indices
    }
    activations, todo = find_cached(cache, keys, progress)
    if todo:
        activations.update(compute(settings, net, cache, keys, todo, progress))
    record = make_record(settings, net, chosen, wanted, keys, activations)
    atomic_write(cache.root / RECORD_NAME, json.dumps(record, indent=1).encode())
    return record


def find_cached(cache: Cache, keys: dict, progress: bool) -> tuple[dict, dict[str, list[int]]]:
    """Activations of the filters already cached, and per layer the filters that are not.

    Entries that exist but do not read back whole are reported and redone."""
    activations: dict = {}
    todo: dict[str, list[int]] = {}
    for (layer, index), key in keys.items():
        entry = cache.get(key)
        if entry is not None:
            activations[(layer, index)] = entry.activation
            continue
        if cache.has(key):
            report(f"cache entry for {layer} filter {index} is corrupt; recomputing it", progress)
            cache.remove(key)
        todo.setdefault(layer, []).append(index)
    return activations, todo


def compute(settings: Settings, net: Network, cache: Cache, keys: dict, todo: dict, progress: bool) -> dict:
    """Run the engine on the missing filters, caching each batch as it finishes."""
    from .engine import LayerEngine

    activations = {}
    keras_model = net.load()
    shape = tuple(net.description["input_shape"])
    total = sum(len(v) for v in todo.values())
    with tqdm(total=total, desc="atlas", unit="filter", disable=not progress, position=0) as overall:
        for layer, indices in todo.items():
            started = time.perf_counter()
            engine = LayerEngine(keras_model, layer, settings.precision)
            with tqdm(
                total=len(indices), desc=layer, unit="filter", leave=False,
                disable=not progress, position=1,
            ) as bar:
                for batch in chunks(indices, engine.batch_size):
                    starts = [start_image(filter_seed(settings.seed, layer, i), shape) for i in batch]
                    images, finals = engine.run(starts, batch, settings.iters, settings.step)
                    for i, image, activation in zip(batch, images, finals):
                        meta = {"layer": layer, "filter": i, "activation": float(activation)}
                        cache.put(keys[(layer, i)], to_uint8(image), meta)
                        activations[(layer, i)] = float(activation)
                    bar.update(len(batch))
                    overall.update(len(batch))
            seconds = time.perf_counter() - started
            report(f"{layer}: {len(indices)} filters in {seconds:.1f} s ({settings.precision})", progress)
    return activations


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def make_record(settings, net, chosen, wanted, keys, activations) -> dict:
    """What `render` needs: the network, its layers, and each filter's cache key."""
    layers = []
    for layer in chosen:
        entries = [
            {"index": i, "key": keys[(layer.name, i)], "activation": activations[(layer.name, i)]}
            for i in wanted[layer.name]
        ]
        layers.append({**asdict(layer), "entries": entries})
    return {
        "model": net.name if not models.is_model_file(net.name) else Path(net.name).stem,
        "network_sha256": net.sha256,
        "weights": net.weights_note,
        "source": str(net.source),
        "input_shape": net.description["input_shape"],
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("model", "weights")},
        "layers": layers,
    }


def report(message: str, progress: bool) -> None:
    tqdm.write(message) if progress else print(message)
