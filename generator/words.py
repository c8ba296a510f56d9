"""Counts in words: "1 filter", "2 filters", for the command line and the pages."""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and the noun, singular for exactly one: plural(1, "layer") == "1 layer"."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"
