"""Rendering the static site from the cache's build records.

One site holds every model built into the cache: an index of the models,
and per model (under a folder of its own, so its links stay put when
another model is added) an index, one page per block, one per layer (a
thumbnail grid) and one per filter. Every link is relative, so the same
folder works opened from disk and served under a GitHub Pages project path.
Images are named by a hash of their bytes and shared between models; files
are only rewritten when their bytes change, so re-rendering touches nothing
that did not change.

The package: `pages` holds the pages as data, `files` the pictures, crops
and thumbnails under content names, `public` what of a record the site may
show, and `render` makes the pages and files from the records.
"""

from .files import thumbnail
from .render import render

__all__ = ["render", "thumbnail"]
