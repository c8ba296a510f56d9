"""How much circuits add to `render`: a VGG16-sized atlas (every filter of
VGG16's 13 layers, 4,224, one synthesized 96x96 picture each) rendered with
and without its circuits, computed from the given VGG16 weights.

    python scripts/circuits_render.py WORK_DIR [--weights FILE] [--rounds N]

Renders each variant N times (default 3), in turn, each into its own site
(the first round also writes the thumbnails), and prints the seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from generator.cache import Cache, cache_key
from generator.circuits import attach_circuits, network_circuits
from generator.description import open_network
from generator.settings import Settings


def synthetic_record(net, cache: Cache) -> dict:
    """A build record of every filter, each with one random picture put into `cache`."""
    rng = np.random.default_rng(0)
    layers = []
    for layer in net.layers:
        entries = []
        for i in range(layer.filters):
            key = cache_key({"synthetic": [layer.name, i]})
            if not cache.has(key):
                cache.put(key, rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
                          {"layer": layer.name, "filter": i, "method": "fourier", "activation": 1.0})
            entries.append({"index": i, "images": [{"method": "fourier", "view": "channel", "member": 0, "key": key,
                                                    "activation": 1.0, "precision": "float32"}]})
        layers.append({"name": layer.name, "block": layer.block, "filters": layer.filters, "kind": layer.kind,
                       "resolution": layer.resolution, "entries": entries})
    return {"schema": 2, "model": "vgg16", "network_sha256": net.sha256, "weights": net.weights_note,
            "source": str(net.source), "input_shape": [96, 96, 3], "preprocess": {"mode": "caffe", "why": "vgg16's own"},
            "settings": {"methods": ["fourier"], "iters": None, "seed": 0, "precision": "float32", "preprocess": None,
                         "input_size": None, "views": ["channel"], "diversity": 4, "custom_objects": None,
                         "unsafe_deserialization": False},
            "methods": {"fourier": {"iters": 128, "summary": "synthesized pictures"}},
            "views": {"channel": {"objective": "mean", "pictures": 1}}, "layers": layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--weights", default="weights/vgg16-seeded-0.h5")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    circuits_cache = Cache(args.work / "circuits-cache")
    net = open_network(Settings(model="vgg16", weights=args.weights), circuits_cache)
    record = synthetic_record(net, Cache(args.work / "plain" / "cache"))
    with_circuits = attach_circuits(copy.deepcopy(record), *network_circuits(
        net, circuits_cache, {layer.name: list(range(layer.filters)) for layer in net.layers}))
    for variant, content in (("plain", record), ("circuits", with_circuits)):
        builds = args.work / variant / "cache" / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        if variant == "circuits":
            synthetic_record(net, Cache(args.work / variant / "cache"))  # its own pictures, the same keys
        (builds / "vgg16.json").write_text(json.dumps(content, indent=1))
    times = {"plain": [], "circuits": []}
    for round_ in range(args.rounds):
        for variant in times:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "generator", "render", "--cache-dir", args.work / variant / "cache",
                            "--site-dir", args.work / variant / "site"], check=True, capture_output=True)
            times[variant].append(round(time.perf_counter() - started, 1))
            print(f"round {round_ + 1}, {variant}: {times[variant][-1]} s", flush=True)
    sizes = {v: (args.work / v / "site" / "atlas.json").stat().st_size for v in times}
    print(json.dumps({"seconds": times, "atlas_json_bytes": sizes}))


if __name__ == "__main__":
    main()
