"""Feature accentuation's photos (Hamblin, Fel et al. 2024): which photos a
filter's accent pictures start from, and those photos as the network sees them.

The accent view (optvis/views.py) starts each of a filter's pictures from one
of its top photos, found by the photo pass (examples/); a picture's key names
its photo by the SHA-256 of the photo file's bytes (keys.py), and its PNG
records which photo, where the filter peaks on it, and how far the picture
moved from it (build.py, engine.accent_measures), for the unit page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .errors import AtlasError
from .optvis.views import ACCENT_PHOTOS
from .photos import load_photo


def accent_seeds(found: dict, folder: Path, wanted: dict[str, list[int]]) -> dict:
    """Per (layer, filter), its top ACCENT_PHOTOS photos from the photo pass's
    `found` (examples.make_examples): each {"path", "photo", "sha256", "box"}."""
    digests: dict[str, str] = {}
    seeds = {}
    for layer, indices in wanted.items():
        for index in indices:
            top = found.get(layer, {}).get(index, {}).get("top", [])[:ACCENT_PHOTOS]
            if len(top) < ACCENT_PHOTOS:
                raise AtlasError(f"the accent view starts from each filter's top {ACCENT_PHOTOS} photos; "
                                 f"{layer} filter {index} has {len(top)} in {folder}")
            entries = []
            for example in top:
                path = Path(folder) / example["photo"]
                if example["photo"] not in digests:
                    digests[example["photo"]] = hashlib.sha256(path.read_bytes()).hexdigest()
                entries.append({"path": path, "photo": example["photo"], "sha256": digests[example["photo"]],
                                "box": list(example["box"])})
            seeds[(layer, index)] = entries
    return seeds


def seed_photos(seeds: dict, layer: str, indices: list[int], shape) -> list[np.ndarray]:
    """The seed photos of `indices`, in member order, as the network sees them (RGB in [0, 1])."""
    return [load_photo(entry["path"], tuple(shape[:2])) for i in indices for entry in seeds[(layer, i)]]
