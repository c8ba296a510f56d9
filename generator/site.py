"""Rendering the static site from the last build record and the cache.

Pages: an index, one page per block, one per layer (a thumbnail grid) and
one per filter. Every link is relative, so the same folder works opened from
disk and served under a GitHub Pages project path. Images are named by a
hash of their bytes; files are only rewritten when their bytes change, so
re-rendering an unchanged atlas touches nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .build import RECORD_NAME
from .cache import Cache, atomic_write
from .errors import AtlasError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PREVIEW_COUNT = 8
# What render owns in the site folder; anything else there is left alone.
MANAGED_DIRS = ("img", "blocks", "layers", "filters")
MANAGED_FILES = ("index.html", "style.css", ".nojekyll")


@dataclass
class Picture:
    method: str
    image: str  # path of the PNG under the site root
    activation: float


@dataclass
class FilterPage:
    layer: "LayerPage"
    index: int
    pictures: list[Picture]  # one per method; the first is the one grids show
    prev: "FilterPage | None" = None
    next: "FilterPage | None" = None

    @property
    def image(self) -> str:
        return self.pictures[0].image

    @property
    def activation(self) -> float:
        return self.pictures[0].activation

    @property
    def path(self) -> str:
        return f"filters/{self.layer.slug}/{self.index}.html"


@dataclass
class LayerPage:
    name: str
    block: str
    total_filters: int
    filters: list[FilterPage] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return safe_name(self.name)

    @property
    def path(self) -> str:
        return f"layers/{self.slug}.html"

    @property
    def preview(self) -> list[FilterPage]:
        return self.filters[:PREVIEW_COUNT]


@dataclass
class BlockPage:
    name: str
    layers: list[LayerPage] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"blocks/{safe_name(self.name)}.html"

    @property
    def filter_count(self) -> int:
        return sum(len(layer.filters) for layer in self.layers)


def safe_name(name: str) -> str:
    """A file name for anything a model may call a layer; distinct names stay distinct."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip(".-") or "layer"
    if slug != name:
        slug += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return slug


def render(cache_dir: Path, site_dir: Path) -> int:
    """Render the site for the last build into `site_dir`; returns the page count."""
    record = read_record(Path(cache_dir))
    cache = Cache(cache_dir)
    site = Path(site_dir)
    written: set[Path] = set()

    def emit(relpath: str, data: bytes) -> None:
        path = site / relpath
        written.add(path)
        if not (path.is_file() and path.read_bytes() == data):
            write_site_file(path, data)

    blocks = collect_pages(record, cache, emit)
    env = jinja_env()
    common = {"model": record["model"], "record": record, "blocks": blocks}
    pages = [("index.html", "index.html", {})]
    for block in blocks:
        pages.append((block.path, "block.html", {"block": block}))
        for layer in block.layers:
            pages.append((layer.path, "layer.html", {"block": block, "layer": layer}))
            for f in layer.filters:
                pages.append((f.path, "filter.html", {"block": block, "layer": layer, "filter": f}))
    for relpath, template, context in pages:
        root = "../" * relpath.count("/")
        html = env.get_template(template).render(root=root, **common, **context)
        emit(relpath, html.encode())
    emit("style.css", (TEMPLATES / "style.css").read_bytes())
    emit(".nojekyll", b"")  # GitHub Pages: serve files as they are
    remove_stale(site, written)
    return len(pages)


def read_record(cache_dir: Path) -> dict:
    try:
        return json.loads((cache_dir / RECORD_NAME).read_text())
    except FileNotFoundError:
        raise AtlasError(f"no build found in {cache_dir}; run `filter-atlas build` first") from None
    except ValueError:
        raise AtlasError(f"{cache_dir / RECORD_NAME} is corrupt; run `filter-atlas build` again") from None


def collect_pages(record: dict, cache: Cache, emit) -> list[BlockPage]:
    """Blocks, layers and filters of the record, each filter's image placed in the site."""
    blocks: dict[str, BlockPage] = {}
    sequence: list[FilterPage] = []
    for layer_rec in record["layers"]:
        layer = LayerPage(layer_rec["name"], layer_rec["block"], layer_rec["filters"])
        for entry in layer_rec["entries"]:
            pictures = [
                Picture(img["method"], place_image(cache, img["key"], layer.name, entry["index"], emit),
                        img["activation"])
                for img in entry["images"]
            ]
            layer.filters.append(FilterPage(layer, entry["index"], pictures))
        blocks.setdefault(layer.block, BlockPage(layer.block)).layers.append(layer)
        sequence.extend(layer.filters)
    for before, after in zip(sequence, sequence[1:]):
        before.next, after.prev = after, before
    return list(blocks.values())


def place_image(cache: Cache, key: str, layer: str, index: int, emit) -> str:
    found = cache.read(key)
    if found is None:
        raise AtlasError(
            f"{layer} filter {index} is missing or corrupt in the cache; run `filter-atlas build` again"
        )
    data, _ = found
    relpath = f"img/{hashlib.sha256(data).hexdigest()[:20]}.png"
    emit(relpath, data)
    return relpath


def jinja_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def write_site_file(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise AtlasError(f"cannot write {path}: {exc.strerror or exc}") from None


def remove_stale(site: Path, written: set[Path]) -> None:
    """Delete what earlier renders made and this one did not, in render's own folders only."""
    for folder in MANAGED_DIRS:
        for path in sorted((site / folder).rglob("*"), reverse=True):
            if path.is_file() and path not in written:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
