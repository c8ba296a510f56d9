"""Build records: what a build leaves for `render`, one per model.

A record holds the network, its layers and, per filter, each picture's
cache key and final activation, with the dataset examples where photos
were given.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .errors import AtlasError
from .names import model_name, safe_name

RECORDS = "builds"  # one record per model: the last build of it, which `render` shows


def make_record(settings, net, chosen, wanted, keys, activations) -> dict:
    """What `render` needs: the network, its layers, and each picture's cache key."""
    layers = []
    for layer in chosen:
        entries = [
            {
                "index": i,
                "images": [
                    {"method": m, "key": keys[(m, layer.name, i)], "activation": activations[(m, layer.name, i)]}
                    for m in settings.methods
                ],
            }
            for i in wanted[layer.name]
        ]
        layers.append({**asdict(layer), "entries": entries})
    return {
        "model": model_name(net.name),
        "network_sha256": net.sha256,
        "weights": net.weights_note,
        "source": str(net.source),
        "input_shape": net.description["input_shape"],
        "preprocess": {"mode": net.preprocess, "why": net.preprocess_why},
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("model", "weights")},
        "methods": {m: settings.method(m).key() | {"summary": settings.method(m).summary} for m in settings.methods},
        "layers": layers,
    }


def attach_examples(record: dict, found: dict, summary: dict) -> dict:
    """Put each filter's dataset examples into the build record."""
    record["examples"] = summary
    for layer in record["layers"]:
        for entry in layer["entries"]:
            entry["examples"] = found.get(layer["name"], {}).get(entry["index"], {})
    return record


def record_path(cache_root: Path, model: str) -> Path:
    return cache_root / RECORDS / f"{safe_name(model)}.json"


def read_records(cache_root: Path) -> list[dict]:
    """Every model's last build in the cache, by model name."""
    records = []
    for path in sorted((cache_root / RECORDS).glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except ValueError:
            raise AtlasError(f"{path} is corrupt; run `filter-atlas build` again for that model") from None
    return sorted(records, key=lambda r: r["model"])
