"""Images in and out: the seeded start image, and the PNG a filter ends as."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from PIL import Image, PngImagePlugin

META_KEY = "filter-atlas"
PNG_END = b"IEND\xaeB`\x82"  # the end chunk's type and CRC: every whole PNG ends so


def filter_seed(base_seed: int, layer: str, index: int, member: int = 0) -> int:
    """A per-filter seed, so any filter can be recomputed alone and get the same start;
    the other pictures of a filter's group (`member` > 0) start elsewhere."""
    text = f"{base_seed}/{layer}/{index}" + (f"/{member}" if member else "")
    text = text.encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def start_image(seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    """The seed's `create_image`: uniform noise in [-0.5, 0.5), reproducible."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale to 0..255, as the seed's `plot_image` shows an image."""
    image = np.asarray(image, dtype=np.float64)
    low, high = image.min(), image.max()
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.round(scaled * 255).astype(np.uint8)


def encode_png(pixels: np.ndarray, meta: dict) -> bytes:
    """PNG bytes carrying `meta` as a text chunk, so one file is one cache entry."""
    info = PngImagePlugin.PngInfo()
    info.add_text(META_KEY, json.dumps(meta, sort_keys=True))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", pnginfo=info, optimize=False)
    return out.getvalue()


def read_png_meta(data: bytes) -> dict:
    """The metadata of an atlas PNG, after checking every chunk's CRC through the
    end marker (a truncated or damaged file fails) without decompressing pixels."""
    if not data.endswith(PNG_END):
        raise ValueError("not a valid atlas PNG: it does not end with the IEND chunk")
    try:
        with Image.open(io.BytesIO(data)) as img:
            meta = json.loads(img.info[META_KEY])
            img.verify()
            return meta
    except Exception as exc:
        raise ValueError(f"not a valid atlas PNG: {exc}") from None


def decode_png(data: bytes) -> tuple[np.ndarray, dict]:
    """Pixels and metadata; raises ValueError for anything that is not a whole PNG."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decodes every row: a truncated file fails here
            meta = json.loads(img.text[META_KEY])
            return np.asarray(img), meta
    except Exception as exc:
        raise ValueError(f"not a valid atlas PNG: {exc}") from None
