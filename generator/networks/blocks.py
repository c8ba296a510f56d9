"""Grouping a network's conv layers into blocks."""

from __future__ import annotations


def block_of(layer_name: str) -> str:
    """Keras names layers `<block>_<kind><n>`; the prefix groups them."""
    return layer_name.split("_", 1)[0]
