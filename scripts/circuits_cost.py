"""Seconds the circuits of a whole network take (generator/circuits/): every
conv layer, every filter, in a fresh cache, then again from that cache.

    python scripts/circuits_cost.py MODEL [--weights FILE] [--custom-objects FILE.py] [--preprocess MODE]

Prints one JSON line: layers, filters, seconds to open and load the network,
seconds for the circuits, seconds to read them back, the cache's bytes, and
what was left out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from generator.cache import Cache
from generator.circuits import network_circuits
from generator.description import open_network
from generator.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--weights")
    parser.add_argument("--custom-objects")
    parser.add_argument("--preprocess")
    args = parser.parse_args()
    settings = Settings(model=args.model, weights=args.weights, custom_objects=args.custom_objects,
                        preprocess=args.preprocess)
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(Path(folder))
        started = time.perf_counter()
        net = open_network(settings, cache)
        net.load()
        loaded = time.perf_counter()
        wanted = {layer.name: list(range(layer.filters)) for layer in net.layers}
        _, summary = network_circuits(net, cache, wanted)
        computed = time.perf_counter()
        network_circuits(net, cache, wanted)
        again = time.perf_counter()
        size = sum(p.stat().st_size for p in (cache.root / "circuits").rglob("*.json"))
    print(json.dumps({"model": Path(args.model).name, "layers": len(wanted), "filters": sum(map(len, wanted.values())),
                      "open_and_load_s": round(loaded - started, 2), "circuits_s": round(computed - loaded, 2),
                      "cached_s": round(again - computed, 2), "cache_bytes": size, "missing": summary["missing"]}))


if __name__ == "__main__":
    main()
