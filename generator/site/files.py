"""The site's files: pictures and photo crops placed under names made of
their content, thumbnails, and the removal of what a render no longer writes."""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import Cache, atomic_write
from ..errors import AtlasError
from .pages import LARGE_SIZE

THUMB_SIZE = 96  # the longer side; thumbnails keep the picture's aspect ratio
THUMB_QUALITY = 80

# Pillow filters by name: larger pictures are reduced with Lanczos, smaller ones
# enlarged with nearest-neighbour, so their pixels stay pixels.
THUMB_DOWNSCALE = "lanczos"
THUMB_UPSCALE = "nearest"

# What render owns in the site folder; anything else there is left alone:
# the shared image folders, the folders of single-model sites of earlier
# versions, and every folder marked as a model's.
MANAGED_DIRS = ("img", "thumbs", "examples", "blocks", "layers", "filters")
MODEL_MARKER = ".atlas-model"

# A temporary file (cache.write_temporary's `.NAME.*.tmp`) this old is a killed
# render's leftover; a younger one may be another render's, about to be renamed.
TEMPORARY_MAX_AGE_S = 3600


@dataclass
class Placed:
    """A picture in the site: its file, its thumbnail, its cache metadata, and
    for a picture optimized on a window of the input, that window alone."""
    image: str
    thumb: str
    meta: dict
    crop: str | None = None
    size: tuple[int, int] = (LARGE_SIZE, LARGE_SIZE)  # what the filter page shows, LARGE_SIZE on its longer side


def place_image(cache: Cache, key: str, layer: str, index: int, emit) -> Placed:
    """Put a cached picture and its thumbnail into the site; both named by
    content. A picture made on its receptive field (a window of the input set
    in grey) also gets that window as a file, and its thumbnail shows the window."""
    found = cache.read(key)
    if found is None:
        raise AtlasError(
            f"{layer} filter {index} is missing or corrupt in the cache; run `filter-atlas build` again"
        )
    data, entry = found
    image_path = emit_content(data, "img", "png", emit)
    window = entry.meta.get("window")
    crop = window_crop(data, window) if window else None
    shown = crop or data
    thumb = thumbnail(cache, hashlib.sha256(shown).hexdigest(), shown)
    thumb_path = emit_content(thumb, "thumbs", "webp", emit)
    crop_path = emit_content(crop, "img", "png", emit) if crop else None
    return Placed(image_path, thumb_path, entry.meta, crop_path, large_size(shown))


def emit_content(data: bytes, folder: str, suffix: str, emit) -> str:
    """Write `data` into the site under a name made of its content; returns the path."""
    path = f"{folder}/{hashlib.sha256(data).hexdigest()[:20]}.{suffix}"
    emit(path, data, content_named=True)
    return path


def window_crop(png: bytes, window: dict) -> bytes:
    """The part of a picture inside `window` ({"rows": [start, stop], "cols": ...}), as a PNG."""
    from PIL import Image

    (top, bottom), (left, right) = window["rows"], window["cols"]
    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as img:
        img.crop((left, top, right, bottom)).save(out, format="PNG")
    return out.getvalue()


def place_examples(cache: Cache, examples: dict, layer: str, index: int, emit, views: bool = True) -> dict:
    """Copy a filter's example crops and photo views (without `views`: the crops
    alone) from the cache into the site, under the same content-derived names."""
    for kind in ("top", "bottom"):
        for example in examples.get(kind, []):
            for path in (example["crop"], example["view"]) if views else (example["crop"],):
                try:
                    emit(path, (cache.root / path).read_bytes(), content_named=True)
                except FileNotFoundError:
                    raise AtlasError(f"{layer} filter {index}: example {path} is missing from the cache; "
                                     "run `filter-atlas build --images DIR` again") from None
    return examples


def thumbnail(cache: Cache, digest: str, png: bytes) -> bytes:
    """A lossy WebP of the picture, ~7x smaller than the PNG, THUMB_SIZE on its
    longer side; made once, kept in the cache under its source, size and filter."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        size = fit(img.size, THUMB_SIZE)
        method = THUMB_DOWNSCALE if max(img.size) > THUMB_SIZE else THUMB_UPSCALE
        path = cache.root / "thumbs" / f"{digest}-{size[0]}x{size[1]}-{method}-q{THUMB_QUALITY}.webp"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        out = io.BytesIO()
        img.convert("RGB").resize(size, getattr(Image.Resampling, method.upper())).save(
            out, format="WEBP", quality=THUMB_QUALITY, method=6
        )
    atomic_write(path, out.getvalue())
    return out.getvalue()


def fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is `longest`, the aspect ratio kept."""
    scale = longest / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def large_size(png: bytes) -> tuple[int, int]:
    """The filter page's width and height for a picture: its own size (read
    from the PNG header) scaled to LARGE_SIZE on the longer side."""
    return fit((int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")), LARGE_SIZE)


def remove_stale(site: Path, written: set[Path]) -> None:
    """Delete what earlier renders made and this one did not, in render's own
    folders only. Another render of the same site may be writing meanwhile:
    its temporary files are left alone, and folders may come and go."""
    folders = [site / name for name in MANAGED_DIRS]
    folders += [marker.parent for marker in site.glob(f"*/{MODEL_MARKER}")]
    for folder in folders:
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and path not in written and not in_flight(path):
                path.unlink(missing_ok=True)
            elif path.is_dir():
                remove_if_empty(path)
        remove_if_empty(folder)


def in_flight(path: Path) -> bool:
    """Whether `path` is a temporary file another render may still rename into place."""
    if not (path.name.startswith(".") and path.name.endswith(".tmp")):
        return False
    try:
        return time.time() - path.stat().st_mtime < TEMPORARY_MAX_AGE_S
    except FileNotFoundError:  # renamed meanwhile
        return False


def remove_if_empty(folder: Path) -> None:
    try:
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError:  # gone already, or just filled again
        pass
