"""Which filters `make quality` measures: a fixed sample of every layer's, the
same ones every run (used by quality.py for the pictures and view_quality.py
for the unit page's views)."""

from __future__ import annotations

import random


def sample_filters(layers, per_layer: int, seed: int = 0) -> dict[str, list[int]]:
    """`per_layer` filters of every layer, the same ones every run."""
    return {
        layer.name: sorted(random.Random(f"{seed}/{layer.name}").sample(range(layer.filters),
                                                                        min(per_layer, layer.filters)))
        for layer in layers
    }


def sample_seed(args) -> int:
    """Which filters are sampled: --sample-seed, or --seed as before (a second sample
    checks on other units what was tuned on the first)."""
    return args.seed if args.sample_seed is None else args.sample_seed
