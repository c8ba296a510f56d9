"""The pictures measured as the photos are: each picture (the PNG a reader
sees) fed to the network like a photo, and its own filter's unit output
before the nonlinearity taken as its mean over the feature map and at the
centre position. Set beside the photos' tallies, these give each picture's
number on the unit page a meaning ("above every photo").

A measure depends only on the picture, whose cache key already names the
network, its preprocessing and everything else, so it is cached by that key.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..cache import Cache, atomic_write
from ..imaging import decode_png
from ..networks import layers_model, network_input

BATCH = 32


def measure_path(root: Path, key: str) -> Path:
    return root / "measures" / key[:2] / f"{key}.json"


def measure_pictures(net, pictures: dict[str, list[tuple[int, str]]], cache: Cache) -> dict[str, dict]:
    """Per picture key, {"mean": ..., "centre": ...}. `pictures` holds per layer
    (filter index, key) pairs. Loads the network only where a measure is missing."""
    found, missing = {}, {}
    for layer, items in pictures.items():
        for index, key in items:
            try:
                found[key] = json.loads(measure_path(cache.root, key).read_text())
            except (FileNotFoundError, ValueError):
                missing.setdefault(layer, []).append((index, key))
    for layer, items in missing.items():
        model = layers_model(net.load(), [layer], pre_activation=True)
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            images = np.stack([decode_png(cache.read(key)[0])[0] for _, key in batch]).astype(np.float32) / 255
            outputs = np.asarray(model(network_input(images, net.preprocess)), np.float32)
            height, width = outputs.shape[1:3]
            for n, (index, key) in enumerate(batch):
                measure = {"mean": float(outputs[n, :, :, index].mean()),
                           "centre": float(outputs[n, height // 2, width // 2, index])}
                atomic_write(measure_path(cache.root, key), json.dumps(measure).encode())
                found[key] = measure
    return found
