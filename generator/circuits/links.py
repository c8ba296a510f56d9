"""From expanded weights to what a unit page lists: each unit's strongest
inputs and outputs, as the Circuits figures rank them.

A kernel's *positive part* (the sum of its positive weights) is how much the
input unit can excite the unit; its *negative part* how much it can inhibit
it. Excitatory links are ranked by the first, inhibitory ones by the second;
`weight` is the kernel's signed sum. A link whose part is zero is not listed.
"""

from __future__ import annotations

import numpy as np

EXCITATORY, INHIBITORY = 6, 3  # how many of each a unit page lists
# Significant digits kept: a kernel's values are drawn, not compared (and make most of a
# record's and atlas.json's bytes: VGG16's 4,224 filters list 76,000 links); sums are ranked.
KERNEL_DIGITS, SUM_DIGITS = 3, 5


def rounded(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def link(layer: str, index: int, kernel: np.ndarray, sign: str) -> dict:
    """One listed link: the other unit, its signed sum and parts, and the kernel itself."""
    return {"layer": layer, "filter": int(index), "weight": rounded(kernel.sum(), SUM_DIGITS), "sign": sign,
            "positive": rounded(kernel.clip(min=0).sum(), SUM_DIGITS),
            "negative": rounded(kernel.clip(max=0).sum(), SUM_DIGITS),
            "kernel": [[rounded(v, KERNEL_DIGITS) for v in row] for row in kernel.tolist()]}


def strongest(scores: np.ndarray, count: int, largest: bool) -> np.ndarray:
    """Indices of the `count` largest (or most negative) nonzero scores, strongest first."""
    order = np.argsort(-scores if largest else scores, kind="stable")[:count]
    return order[scores[order] > 0] if largest else order[scores[order] < 0]


def parts(expanded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative parts, (source channels, target channels)."""
    return expanded.clip(min=0).sum(axis=(0, 1)), expanded.clip(max=0).sum(axis=(0, 1))


def layer_links(target: str, expanded: dict[str, np.ndarray]) -> dict:
    """For one conv layer: each of its units' listed inputs, and, per source layer
    and unit, the candidates for that unit's outputs among this layer's units."""
    sources = list(expanded)
    summed = {source: parts(weights) for source, weights in expanded.items()}
    owner = np.concatenate([np.full(expanded[s].shape[2], n) for n, s in enumerate(sources)]) if sources else []
    within = np.concatenate([np.arange(expanded[s].shape[2]) for s in sources]) if sources else []
    positive = np.concatenate([summed[s][0] for s in sources]) if sources else None
    negative = np.concatenate([summed[s][1] for s in sources]) if sources else None
    targets = next(iter(expanded.values())).shape[3] if sources else 0
    inputs = {}
    for c in range(targets):
        found = []
        for sign, scores, count in (("excitatory", positive[:, c], EXCITATORY), ("inhibitory", negative[:, c], INHIBITORY)):
            for k in strongest(scores, count, sign == "excitatory"):
                source = sources[owner[k]]
                found.append(link(source, within[k], expanded[source][:, :, within[k], c], sign))
        inputs[str(c)] = found
    outputs = {}
    for source in sources:
        pos, neg = summed[source]
        per_unit = {}
        for a in range(pos.shape[0]):
            per_unit[str(a)] = [link(target, c, expanded[source][:, :, a, c], sign)
                                for sign, scores, count in (("excitatory", pos[a], EXCITATORY),
                                                            ("inhibitory", neg[a], INHIBITORY))
                                for c in strongest(scores, count, sign == "excitatory")]
        outputs[source] = per_unit
    return {"layer": target, "sources": sources, "inputs": inputs, "outputs": outputs}


def merged_outputs(candidates: list[list[dict]]) -> list[dict]:
    """A unit's outputs over every layer it feeds: the strongest of each layer's candidates."""
    every = [entry for found in candidates for entry in found]
    excite = sorted((e for e in every if e["sign"] == "excitatory"), key=lambda e: -e["positive"])[:EXCITATORY]
    inhibit = sorted((e for e in every if e["sign"] == "inhibitory"), key=lambda e: e["negative"])[:INHIBITORY]
    return excite + inhibit
