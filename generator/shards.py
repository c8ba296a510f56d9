"""Spreading a build over machines: `build --shard K/N` computes a fixed part
of the work, and the parts' caches are merged.

The work is cut into units (one method, one layer, at most UNIT_FILTERS
filters), each costed by its estimated FLOPs, and dealt longest first to the
least loaded shard. Every machine plans the same units from the same
network and settings, so N independent jobs (a GitHub Actions matrix, a
Slurm array, a Kubernetes indexed job) cover the atlas exactly once. Cache
entries are named by their content, so merging is copying the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cache import Cache, atomic_write
from .errors import AtlasError

# Filters per work unit: fixed, so that every machine plans the same units.
UNIT_FILTERS = 16
# What a merge copies: content-named files. Build records and examples-pass
# progress are per machine; the build over the merged cache writes its own.
MERGED = ("filters", "thumbs", "models", "examples/crops", "examples/views")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'K/N' -> (K, N): the K-th of N shards, counting from 0 (Slurm's and Kubernetes's indices)."""
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise AtlasError(f"cannot parse --shard {text!r}: expected K/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise AtlasError(f"--shard {text}: K must be 0 to N-1 and N at least 1")
    return index, count


@dataclass(frozen=True)
class WorkUnit:
    method: str
    view: str
    layer: str
    filters: tuple[int, ...]
    cost: float  # estimated FLOPs


def work_units(steps: dict[tuple[str, str], int], flops: dict[str, float],
               wanted: dict[str, list[int]]) -> list[WorkUnit]:
    """The build cut into units, each costed as steps x (forward + gradient) FLOPs x filters.
    `steps` per (method, view): a method's steps times the view's pictures per filter;
    `flops` per layer (the forward pass up to it)."""
    units = []
    for (method, view), method_steps in steps.items():
        for layer, indices in wanted.items():
            per_filter = method_steps * 2.0 * flops[layer]
            for start in range(0, len(indices), UNIT_FILTERS):
                chunk = tuple(indices[start : start + UNIT_FILTERS])
                units.append(WorkUnit(method, view, layer, chunk, per_filter * len(chunk)))
    return units


def assign_shards(units: list[WorkUnit], count: int) -> list[list[WorkUnit]]:
    """Longest first, each to the least loaded shard: deterministic, and
    balanced by cost rather than by count."""
    shards: list[list[WorkUnit]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit in sorted(units, key=lambda u: (-u.cost, u.method, u.view, u.layer, u.filters)):
        lightest = loads.index(min(loads))
        shards[lightest].append(unit)
        loads[lightest] += unit.cost
    return shards


def merge_caches(sources: list[Path], target: Path) -> dict[str, int]:
    """Copy into `target` every content-named file of `sources` that it lacks;
    picture entries only when they read back whole. Returns counts."""
    counts = {"copied": 0, "present": 0, "corrupt": 0}
    for source in map(Path, sources):
        if not (source / "filters").is_dir() and not (source / "models").is_dir():
            raise AtlasError(f"{source} is not an atlas cache (no filters/ or models/ in it)")
        for folder in MERGED:
            for path in sorted((source / folder).rglob("*")):
                if not path.is_file() or path.name.endswith(".tmp"):
                    continue
                destination = target / path.relative_to(source)
                if destination.is_file():
                    counts["present"] += 1
                elif folder == "filters" and Cache(source).get(path.stem) is None:
                    counts["corrupt"] += 1
                else:
                    atomic_write(destination, path.read_bytes())
                    counts["copied"] += 1
    return counts
