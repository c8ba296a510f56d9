"""Rendering the static site from the last build record and the cache.

Pages: an index, one page per block, one per layer (a thumbnail grid) and
one per filter. Every link is relative, so the same folder works opened from
disk and served under a GitHub Pages project path. Images are named by a
hash of their bytes; files are only rewritten when their bytes change, so
re-rendering an unchanged atlas touches nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .build import RECORD_NAME
from .cache import Cache, atomic_write, ensure_writable
from .errors import AtlasError

# The top-level templates/ folder, installed as the package `generator.templates`.
TEMPLATES = resources.files("generator.templates")
PREVIEW_COUNT = 8
THUMB_SIZE = 96
THUMB_QUALITY = 80
STATIC = ("style.css", "atlas.js")
# What render owns in the site folder; anything else there is left alone.
MANAGED_DIRS = ("img", "thumbs", "blocks", "layers", "filters", "examples")


@dataclass
class Picture:
    method: str
    image: str  # path of the PNG under the site root
    thumb: str  # path of its small WebP thumbnail
    activation: float


@dataclass
class FilterPage:
    layer: "LayerPage"
    index: int
    pictures: list[Picture]  # one per method; the first is the one grids show
    examples: dict = field(default_factory=dict)  # "top" (and "bottom"): photos that drive it, crops in the site
    prev: "FilterPage | None" = None
    next: "FilterPage | None" = None

    @property
    def image(self) -> str:
        return self.pictures[0].image

    @property
    def thumb(self) -> str:
        return self.pictures[0].thumb

    @property
    def activation(self) -> float:
        return self.pictures[0].activation

    @property
    def top_crop(self) -> str | None:
        top = self.examples.get("top")
        return top[0]["crop"] if top else None

    @property
    def path(self) -> str:
        return f"filters/{self.layer.slug}/{self.index}.html"


@dataclass
class LayerPage:
    name: str
    block: str
    total_filters: int
    kind: str = "conv"
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

    @property
    def alias(self) -> str:
        """block4_conv2 -> b4c2, conv_pw_13 -> cp13: each part's first letter and its digits."""
        return "".join(re.sub(r"\d", "", part)[:1] + re.sub(r"\D", "", part) for part in self.name.split("_")).lower()


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
    ensure_writable(site)
    written: set[Path] = set()

    def emit(relpath: str, data: bytes, content_named: bool = False) -> None:
        """Write a site file unless it already holds these bytes (a file named
        by its content's hash holds them whenever it exists)."""
        path = site / relpath
        written.add(path)
        if path.is_file() and (content_named or path.read_bytes() == data):
            return
        atomic_write(path, data)

    blocks = collect_pages(record, cache, emit)
    env = jinja_env()
    common = {"model": record["model"], "record": record, "blocks": blocks, "jump_example": jump_example(blocks)}
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
    for name in STATIC:
        emit(name, TEMPLATES.joinpath(name).read_bytes())
    emit("atlas-index.js", b"window.ATLAS = " + json.dumps(jump_index(blocks)).encode() + b";\n")
    emit("atlas.json", json.dumps(manifest(record, blocks), indent=1).encode())
    emit(".nojekyll", b"")  # GitHub Pages: serve files as they are
    remove_stale(site, written)
    return len(pages)


def read_record(cache_dir: Path) -> dict:
    try:
        record = json.loads((cache_dir / RECORD_NAME).read_text())
    except FileNotFoundError:
        raise AtlasError(f"no build found in {cache_dir}; run `filter-atlas build` first") from None
    except ValueError:
        raise AtlasError(f"{cache_dir / RECORD_NAME} is corrupt; run `filter-atlas build` again") from None
    if "preprocess" not in record:
        raise AtlasError(f"{cache_dir / RECORD_NAME} was written by an older version; "
                         "run `filter-atlas build` again (cached pictures are reused)")
    return record


def collect_pages(record: dict, cache: Cache, emit) -> list[BlockPage]:
    """Blocks, layers and filters of the record, each filter's image placed in the site."""
    blocks: dict[str, BlockPage] = {}
    sequence: list[FilterPage] = []
    for layer_rec in record["layers"]:
        layer = LayerPage(layer_rec["name"], layer_rec["block"], layer_rec["filters"], layer_rec.get("kind", "conv"))
        for entry in layer_rec["entries"]:
            pictures = [
                Picture(img["method"], *place_image(cache, img["key"], layer.name, entry["index"], emit),
                        img["activation"])
                for img in entry["images"]
            ]
            examples = place_examples(cache, entry.get("examples", {}), layer.name, entry["index"], emit)
            layer.filters.append(FilterPage(layer, entry["index"], pictures, examples))
        blocks.setdefault(layer.block, BlockPage(layer.block)).layers.append(layer)
        sequence.extend(layer.filters)
    for before, after in zip(sequence, sequence[1:]):
        before.next, after.prev = after, before
    return list(blocks.values())


def place_image(cache: Cache, key: str, layer: str, index: int, emit) -> tuple[str, str]:
    """Put a cached picture and its thumbnail into the site; both named by content."""
    found = cache.read(key)
    if found is None:
        raise AtlasError(
            f"{layer} filter {index} is missing or corrupt in the cache; run `filter-atlas build` again"
        )
    data, _ = found
    digest = hashlib.sha256(data).hexdigest()
    thumb = thumbnail(cache, digest, data)
    image_path = f"img/{digest[:20]}.png"
    thumb_path = f"thumbs/{hashlib.sha256(thumb).hexdigest()[:20]}.webp"
    emit(image_path, data, content_named=True)
    emit(thumb_path, thumb, content_named=True)
    return image_path, thumb_path


def place_examples(cache: Cache, examples: dict, layer: str, index: int, emit) -> dict:
    """Copy a filter's example crops and photo views from the cache into the site,
    under the same content-derived names."""
    for entries in examples.values():
        for example in entries:
            for path in (example["crop"], example["view"]):
                try:
                    emit(path, (cache.root / path).read_bytes(), content_named=True)
                except FileNotFoundError:
                    raise AtlasError(f"{layer} filter {index}: example {path} is missing from the cache; "
                                     "run `filter-atlas build --images DIR` again") from None
    return examples


def thumbnail(cache: Cache, digest: str, png: bytes) -> bytes:
    """A lossy WebP of the picture, ~7x smaller than the PNG; made once, kept in the cache."""
    path = cache.root / "thumbs" / f"{digest}.webp"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as img:
        img.convert("RGB").resize((THUMB_SIZE, THUMB_SIZE), Image.NEAREST).save(
            out, format="WEBP", quality=THUMB_QUALITY, method=6
        )
    atomic_write(path, out.getvalue())
    return out.getvalue()


def jump_example(blocks: list[BlockPage]) -> str:
    """A query the jump box answers in this atlas: a middle layer's middle filter."""
    layers = [layer for block in blocks for layer in block.layers if layer.filters]
    if not layers:
        return "LAYER 0"
    layer = layers[len(layers) // 2]
    index = layer.filters[len(layer.filters) // 2].index
    alias = f" or {layer.alias} {index}" if layer.alias != layer.name.lower() else ""
    return f"{layer.name} {index}{alias}"


def jump_index(blocks: list[BlockPage]) -> dict:
    """What the jump box needs to find any filter offline: names, aliases, built indices."""
    return {
        "example": jump_example(blocks),
        "blocks": {block.name: block.path for block in blocks},
        "layers": [
            {"name": layer.name, "alias": layer.alias, "path": layer.path, "slug": layer.slug,
             "filters": [f.index for f in layer.filters]}
            for block in blocks for layer in block.layers
        ],
    }


def manifest(record: dict, blocks: list[BlockPage]) -> dict:
    """site/atlas.json: the whole atlas, machine-readable, paths relative to the site."""
    return {
        "model": record["model"],
        "weights": record["weights"],
        "network_sha256": record["network_sha256"],
        "input_shape": record["input_shape"],
        "preprocess": record["preprocess"],
        "precision": record["settings"]["precision"],
        "methods": record["methods"],
        "examples": record.get("examples"),
        "blocks": [
            {
                "name": block.name,
                "page": block.path,
                "layers": [
                    {
                        "name": layer.name,
                        "kind": layer.kind,
                        "page": layer.path,
                        "filters_in_layer": layer.total_filters,
                        "filters": [
                            {
                                "index": f.index,
                                "page": f.path,
                                "pictures": [
                                    {"method": p.method, "image": p.image, "thumbnail": p.thumb,
                                     "activation": p.activation}
                                    for p in f.pictures
                                ],
                                "examples": f.examples,
                            }
                            for f in layer.filters
                        ],
                    }
                    for layer in block.layers
                ],
            }
            for block in blocks
        ],
    }


def jinja_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: TEMPLATES.joinpath(name).read_text(encoding="utf-8")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def remove_stale(site: Path, written: set[Path]) -> None:
    """Delete what earlier renders made and this one did not, in render's own folders only."""
    for folder in MANAGED_DIRS:
        for path in sorted((site / folder).rglob("*"), reverse=True):
            # Another render of the same site may remove or add files meanwhile.
            if path.is_file() and path not in written:
                path.unlink(missing_ok=True)
            elif path.is_dir() and not any(path.iterdir()):
                try:
                    path.rmdir()
                except OSError:  # gone already, or just filled again
                    pass
