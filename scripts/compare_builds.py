"""A contact sheet of two builds side by side: for every layer both built, one
row with build A's pictures, then build B's, of the same filters.

    python scripts/compare_builds.py CACHE_A CACHE_B --labels "before|after" --out sheet.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

from generator.cache import Cache

TILE, GAP, LABEL = 112, 4, 150


def pictures(cache_dir: Path) -> dict[str, dict[int, Image.Image]]:
    """Per layer, per filter index: the first method's picture of the last build."""
    record = json.loads((cache_dir / "last-build.json").read_text())
    cache = Cache(cache_dir)
    return {
        layer["name"]: {e["index"]: Image.open(cache.path(e["images"][0]["key"])).convert("RGB")
                        for e in layer["entries"]}
        for layer in record["layers"]
    }


def sheet(a: dict, b: dict, labels: tuple[str, str], caption: str) -> Image.Image:
    layers = [name for name in a if name in b]
    rows = [(name, sorted(set(a[name]) & set(b[name]))) for name in layers]
    width = LABEL + max(len(idx) for _, idx in rows) * (TILE + GAP) * 2 + 3 * GAP
    out = Image.new("RGB", (width, 24 + len(rows) * (TILE + GAP)), "white")
    draw = ImageDraw.Draw(out)
    draw.text((4, 4), caption, fill="black")
    for row, (name, indices) in enumerate(rows):
        y = 24 + row * (TILE + GAP)
        draw.text((4, y + TILE // 2 - 12), f"{name}\nfilters {indices[0]}-{indices[-1]}", fill="black")
        for half, source in enumerate((a, b)):
            x0 = LABEL + half * (len(indices) * (TILE + GAP) + 3 * GAP)
            if row == 0:
                draw.text((x0, 4 + 10), labels[half], fill="black")
            for col, index in enumerate(indices):
                out.paste(source[name][index].resize((TILE, TILE), Image.NEAREST), (x0 + col * (TILE + GAP), y))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--labels", default="A|B", help="the two builds' labels, separated by |")
    p.add_argument("--caption", default="", help="say which network and weights the pictures came from")
    p.add_argument("--out", type=Path, default=Path("compare.png"))
    args = p.parse_args()
    labels = tuple(args.labels.split("|", 1))
    sheet(pictures(args.a), pictures(args.b), labels, args.caption).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
