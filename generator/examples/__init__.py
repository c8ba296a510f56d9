"""Dataset examples: the natural photographs that drive each filter hardest,
shown as the receptive-field crop around where the filter peaks, with the
photo as the network saw it one click away.

`make_examples` runs the pass (scan.py), cuts the crops and records, per
filter, what the site shows. Everything lands in the cache under names
derived from the photos' content, the network and its preprocessing, so a
rebuild with the same photos computes nothing.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import Cache, atomic_write
from ..errors import AtlasError
from ..photos import find_photos, load_photo
from .scan import collect, fingerprint, pass_key
from ..networks.receptive import Field

CROP_SIZE = 80  # pixels on the longer side
CROP_QUALITY = 82
VIEW_QUALITY = 90


@dataclass(frozen=True)
class ExampleOptions:
    images: Path
    k: int = 9
    bottom: bool = False


def make_examples(net, chosen, wanted: dict, options: ExampleOptions, cache: Cache, progress=True, report=print):
    """Per layer name and filter index: {"top": [...], "bottom": [...]} example
    entries (photo, crop and view paths in the cache, activation, box) and
    "natural": how the unit's mean and centre outputs range over the photos
    (max, min, average); and a summary."""
    folder = Path(options.images)
    photos = find_photos(folder)
    if not photos:
        raise AtlasError(f"no photographs (JPEG, PNG, WebP, BMP) in {folder}")
    if options.k < 1:
        raise AtlasError(f"--examples must be at least 1, got {options.k}")
    photo_set, photo_hashes = fingerprint(photos, folder)
    names = [layer.name for layer in chosen]
    shape = net.description["input_shape"]
    key = pass_key(net.sha256, shape, net.preprocess, photo_set, names, options.k)
    top, bottom, skipped, tallies = collect(net.load, names, photos, shape, net.preprocess, options.k,
                                   cache.root / "examples" / f"pass-{key}.npz", progress, report)
    fields = {name: Field(*map(tuple, net.description["fields"][name])) for name in names}
    kinds = [("top", top)] + ([("bottom", bottom)] if options.bottom else [])
    wanted_boxes: dict[int, set] = {}  # photo number -> boxes to cut from it
    chosen_examples = {}
    for name in names:
        per_filter = {}
        for index in wanted[name]:
            per_filter[index] = {"natural": {q: tallies[name][q].summary(index) for q in tallies[name]}}
            for kind, extremes in kinds:
                entries = []
                for value, number, (y, x) in zip(extremes[name].values[index], extremes[name].photos[index],
                                                 extremes[name].where[index]):
                    if number < 0:
                        continue
                    box = fields[name].box(int(y), int(x), shape[0], shape[1])
                    wanted_boxes.setdefault(int(number), set()).add(box)
                    entries.append({"photo": photos[number].relative_to(folder).as_posix(),
                                    "crop": crop_path(photo_hashes[number], shape, box),
                                    "view": view_path(photo_hashes[number], shape),
                                    "activation": float(value), "box": list(box)})
                per_filter[index][kind] = entries
        chosen_examples[name] = per_filter
    cut_crops(cache.root, photos, photo_hashes, shape, wanted_boxes)
    summary = {"folder": str(folder), "photos": len(photos) - len(skipped), "skipped": skipped,
               "k": options.k, "bottom": options.bottom,
               "unit": "the unit's output before its nonlinearity; the crop is the receptive field around its peak"}
    return chosen_examples, summary


def crop_path(photo_hash: str, shape, box) -> str:
    name = hashlib.sha256(f"{photo_hash}/{shape[0]}x{shape[1]}/{box}/{CROP_SIZE}".encode()).hexdigest()[:32]
    return f"examples/crops/{name[:2]}/{name}.webp"


def view_path(photo_hash: str, shape) -> str:
    return f"examples/views/{photo_hash[:32]}-{shape[0]}x{shape[1]}.jpg"


def cut_crops(root: Path, photos, photo_hashes, shape, wanted_boxes: dict) -> None:
    """Write the crops and views that are not in the cache yet, each photo loaded once."""
    for number, boxes in sorted(wanted_boxes.items()):
        view = root / view_path(photo_hashes[number], shape)
        missing = [box for box in sorted(boxes) if not (root / crop_path(photo_hashes[number], shape, box)).is_file()]
        if not missing and view.is_file():
            continue
        from PIL import Image

        pixels = np.round(load_photo(photos[number], shape[:2]) * 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if not view.is_file():
            atomic_write(view, encode(image, "JPEG", VIEW_QUALITY))
        for box in missing:
            crop = image.crop(box)
            crop = crop.resize(fit(crop.size), Image.BILINEAR if crop.width > CROP_SIZE else Image.NEAREST)
            atomic_write(root / crop_path(photo_hashes[number], shape, box), encode(crop, "WEBP", CROP_QUALITY))


def fit(size: tuple[int, int]) -> tuple[int, int]:
    """The crop's size scaled so its longer side is CROP_SIZE."""
    scale = CROP_SIZE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def encode(image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, quality=quality)
    return out.getvalue()
