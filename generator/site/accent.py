"""The accent view's pictures in the site: each accentuation whole, and cut at
its photo's receptive-field box, to be shown beside that photo's crop
(templates/accent.html), with how far it moved from the photo.

An accentuation is its photo, changed: with --private-photos, where no whole
photo is published, only its crop at the box is (as picture and thumbnail).
"""

from __future__ import annotations

from .files import emit_content, place_image, thumbnail, window_crop
from .pages import Picture


def accent_picture(cache, img: dict, layer: str, index: int, emit, private_photos: bool = False) -> Picture:
    """One accentuation, placed in the site; its `accent` holds the page's caption
    numbers and "crop", the part at its photo's box."""
    import hashlib

    unwritten = lambda *args, **kwargs: None  # noqa: E731
    placed = place_image(cache, img["key"], layer, index, unwritten if private_photos else emit)
    data = cache.read(img["key"])[0]
    accent = {k: v for k, v in (placed.meta.get("accent") or {}).items() if k != "photo_sha256"}
    left, top, right, bottom = accent["box"]
    cut = window_crop(data, {"rows": [top, bottom], "cols": [left, right]})
    accent["crop"] = emit_content(cut, "img", "png", emit)
    image, thumb = placed.image, placed.thumb
    if private_photos:  # neither the whole photo, changed, nor its name
        accent.pop("photo", None)
        image = accent["crop"]
        thumb = emit_content(thumbnail(cache, hashlib.sha256(cut).hexdigest(), cut), "thumbs", "webp", emit)
    return Picture(img["method"], image, thumb, img["activation"], img["view"], img["member"], img.get("unit"),
                   img["precision"], accent=accent)
