"""What the atlas calls models and layers, and file names for them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from . import networks as models


def model_name(model: str) -> str:
    """What the atlas calls a model: a built-in's name, or a model file's name without its suffix."""
    return Path(model).stem if models.is_model_file(model) else model


def safe_name(name: str) -> str:
    """A file name for anything a model may call a layer or itself; distinct names stay distinct."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip(".-") or "layer"
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return slug
