"""Natural photographs as a network sees them: resized, centre-cropped, RGB in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AtlasError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# ImageNet's evaluation convention: resize the short side to 256, crop 224.
CROP_FRACTION = 224 / 256


def find_photos(folder: Path) -> list[Path]:
    """Every photo under `folder`, recursively, in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AtlasError(f"image folder not found: {folder}")
    return sorted(photos(folder))


def has_photos(folder: Path) -> bool:
    """Whether `find_photos` finds any, stopping at the first."""
    return any(True for _ in photos(Path(folder)))


def photos(folder: Path):
    return (p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def load_photo(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The photo scaled so that a centred (height, width) crop covers 224/256
    of it, as ImageNet models are evaluated; float32 RGB in [0, 1].
    Raises ValueError for a file that is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    height, width = size
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = max(height / (img.height * CROP_FRACTION), width / (img.width * CROP_FRACTION))
            resized = img.resize(
                (max(width, round(img.width * scale)), max(height, round(img.height * scale))), Image.BILINEAR
            )
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    crop = resized.crop((left, top, left + width, top + height))
    return np.asarray(crop, np.float32) / 255.0
