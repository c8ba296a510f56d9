"""Rendering the static site from the cache's build records.

One site holds every model built into the cache: an index of the models,
and per model (under a folder of its own, so its links stay put when
another model is added) an index, one page per block, one per layer (a
thumbnail grid) and one per filter. Every link is relative, so the same
folder works opened from disk and served under a GitHub Pages project path.
Images are named by a hash of their bytes and shared between models; files
are only rewritten when their bytes change, so re-rendering touches nothing
that did not change.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import jinja2

from .names import safe_name
from .records import read_records
from .cache import Cache, atomic_write, ensure_writable
from .errors import AtlasError
from .words import plural

# The top-level templates/ folder, installed as the package `generator.templates`.
TEMPLATES = resources.files("generator.templates")
PREVIEW_COUNT = 8
THUMB_SIZE = 96  # the longer side; thumbnails keep the picture's aspect ratio
THUMB_QUALITY = 80
# Pillow filters by name: larger pictures are reduced with Lanczos, smaller ones
# enlarged with nearest-neighbour, so their pixels stay pixels.
THUMB_DOWNSCALE = "lanczos"
THUMB_UPSCALE = "nearest"
LARGE_SIZE = 384  # the filter page shows the picture this large on its longer side
STATIC = ("style.css", "atlas.js")
# What render owns in the site folder; anything else there is left alone:
# the shared image folders, the folders of single-model sites of earlier
# versions, and every folder marked as a model's.
MANAGED_DIRS = ("img", "thumbs", "examples", "blocks", "layers", "filters")
MODEL_MARKER = ".atlas-model"
# A temporary file (cache.write_temporary's `.NAME.*.tmp`) this old is a killed
# render's leftover; a younger one may be another render's, about to be renamed.
TEMPORARY_MAX_AGE_S = 3600


VIEW_SUMMARIES = {
    "channel": "maximizes the filter's mean over the whole feature map",
    "neuron": "maximizes the filter at the centre position only: one receptive field",
    "negative": "minimizes the filter's mean: what it most dislikes",
    "diversity": "several pictures optimized together, each maximizing the channel while a penalty on the "
                 "similarity of their Gram matrices at the layer pushes them apart (Lucid's diversity)",
}
VIEW_TITLES = {"channel": "channel", "neuron": "neuron (centre position)", "negative": "negative",
               "diversity": "diversity"}
# What each view's number is compared with among the photos: the quantity, and which end.
VIEW_MEASURES = {"channel": ("mean", "max"), "diversity": ("mean", "max"), "neuron": ("centre", "max"),
                 "negative": ("mean", "min")}


@dataclass
class Picture:
    method: str
    image: str  # path of the PNG under the site root
    thumb: str  # path of its small WebP thumbnail
    activation: float  # its filter's mean output after the nonlinearity
    view: str = "channel"
    member: int = 0
    unit: dict | None = None  # its unit output before the nonlinearity, measured as the photos' ("mean", "centre")
    precision: str = ""  # the arithmetic that made it
    width: int = LARGE_SIZE  # as shown on the filter page: the picture's own aspect ratio
    height: int = LARGE_SIZE

    @property
    def title(self) -> str:
        return VIEW_TITLES.get(self.view, self.view)

    def shown(self, size: int) -> tuple[int, int]:
        """Width and height at `size` pixels on the longer side (the large size is LARGE_SIZE)."""
        return round(self.width * size / LARGE_SIZE), round(self.height * size / LARGE_SIZE)


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
    def views(self) -> list[str]:
        """The views built for this filter, in the build's order."""
        return list(dict.fromkeys(p.view for p in self.pictures))

    def of_view(self, view: str) -> list[Picture]:
        return [p for p in self.pictures if p.view == view]

    @property
    def view_thumbs(self) -> dict[str, str]:
        """Per view, the thumbnail the layer grid shows for it."""
        return {view: self.of_view(view)[0].thumb for view in self.views}

    @property
    def dead(self) -> bool:
        """Silent on every photo (its highest output anywhere on any photo is at most 0)
        and on every picture: known only where photos were given."""
        top = self.examples.get("top")
        return bool(top) and top[0]["activation"] <= 0 and all(p.activation <= 0 for p in self.pictures)

    def standing(self, picture: Picture) -> str:
        """The picture's number set against the photos' own, in words."""
        natural = self.examples.get("natural")
        if not natural or not picture.unit:
            return f"mean activation {picture.activation:.3g}"
        quantity, end = VIEW_MEASURES.get(picture.view, ("mean", "max"))
        value, stats = picture.unit[quantity], natural[quantity]
        where = "mean over the feature map" if quantity == "mean" else "output at the centre"
        return f"{where} {value:.3g}, {compare(value, stats, end)}"

    @property
    def path(self) -> str:
        return f"{self.layer.model}/filters/{self.layer.slug}/{self.index}.html"


@dataclass
class LayerPage:
    model: str  # the model's folder
    name: str
    block: str
    total_filters: int
    kind: str = "conv"
    filters: list[FilterPage] = field(default_factory=list)
    # While a live build runs (generator/live.py), a layer not finished yet:
    # "indices" wanted, how many are "done", whether it is "computing" now.
    pending: dict | None = None

    @property
    def slug(self) -> str:
        return safe_name(self.name)

    @property
    def indices(self) -> list[int]:
        """The filters the layer shows, or will show once finished."""
        return self.pending["indices"] if self.pending else [f.index for f in self.filters]

    @property
    def path(self) -> str:
        return f"{self.model}/layers/{self.slug}.html"

    @property
    def preview(self) -> list[FilterPage]:
        return self.filters[:PREVIEW_COUNT]

    @property
    def alias(self) -> str:
        """block4_conv2 -> b4c2, conv_pw_13 -> cp13: each part's first letter and its digits."""
        return "".join(re.sub(r"\d", "", part)[:1] + re.sub(r"\D", "", part) for part in self.name.split("_")).lower()


@dataclass
class BlockPage:
    model: str
    name: str
    layers: list[LayerPage] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.model}/blocks/{safe_name(self.name)}.html"

    @property
    def filter_count(self) -> int:
        return sum(len(layer.filters) for layer in self.layers)


@dataclass
class ModelPage:
    name: str
    record: dict
    blocks: list[BlockPage] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return safe_name(self.name)

    @property
    def path(self) -> str:
        return f"{self.slug}/index.html"

    @property
    def layers(self) -> list[LayerPage]:
        return [layer for block in self.blocks for layer in block.layers]

    @property
    def filter_count(self) -> int:
        return sum(block.filter_count for block in self.blocks)

    @property
    def progress(self) -> dict | None:
        """How far a live build is, while it runs or after it stopped; None once finished."""
        return self.record.get("progress")

    @property
    def preview(self) -> list[FilterPage]:
        """A strip for the models' index: from the model's middle layer."""
        layers = [layer for layer in self.layers if layer.filters]
        return layers[len(layers) // 2].preview if layers else []


def render(cache_dir: Path, site_dir: Path) -> int:
    """Render every model built into the cache into `site_dir`; returns the page count."""
    cache = Cache(cache_dir)
    records = read_records(cache.root)
    if not records:
        raise AtlasError(f"no build found in {cache_dir}; run `filter-atlas build` first")
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

    models = [ModelPage(r["model"], public_record(r)) for r in records]
    for model in models:
        model.blocks = collect_pages(model, cache, emit)
    env = jinja_env()
    pages = [("index.html", "index.html", {"models": models, "model": None, "record": None})]
    for model in models:
        common = {"model": model, "record": model.record, "blocks": model.blocks}
        pages.append((model.path, "model.html", common))
        for block in model.blocks:
            pages.append((block.path, "block.html", {**common, "block": block}))
            for layer in block.layers:
                pages.append((layer.path, "layer.html", {**common, "block": block, "layer": layer}))
                for f in layer.filters:
                    pages.append((f.path, "filter.html", {**common, "block": block, "layer": layer, "filter": f}))
        emit(f"{model.slug}/{MODEL_MARKER}", b"")
    for relpath, template, context in pages:
        root = "../" * relpath.count("/")
        example = jump_example(context["model"] or models[0], qualified=context["model"] is None and len(models) > 1)
        html = env.get_template(template).render(root=root, jump_example=example, view_summaries=VIEW_SUMMARIES,
                                                 view_titles=VIEW_TITLES,
                                                 **context)
        emit(relpath, html.encode())
    for name in STATIC:
        emit(name, TEMPLATES.joinpath(name).read_bytes())
    emit("atlas-index.js", b"window.ATLAS = " + json.dumps(jump_index(models)).encode() + b";\n")
    emit("atlas.json", json.dumps({"models": [manifest(model) for model in models]}, indent=1).encode())
    emit(".nojekyll", b"")  # GitHub Pages: serve files as they are
    remove_stale(site, written)
    return len(pages)


def public_record(record: dict) -> dict:
    """The build record as the site may show it: nothing of this machine's paths.
    The photo folder by its last component, unreadable photos by their path in
    it; no source path (the weights note names the file, network_sha256 is its
    digest); settings without the model and weights paths, the model's own
    code by its file name."""
    record = {key: value for key, value in record.items() if key != "source"}
    record["settings"] = {k: v for k, v in record.get("settings", {}).items() if k not in ("model", "weights")}
    if record["settings"].get("custom_objects"):  # the model's own code, by file name
        record["settings"]["custom_objects"] = Path(record["settings"]["custom_objects"]).name
    if record.get("examples"):
        folder = Path(record["examples"]["folder"])
        record["examples"] = {**record["examples"], "folder": public_folder(folder),
                              "skipped": [public_photo(path, folder) for path in record["examples"]["skipped"]]}
    return record


def public_folder(folder: Path) -> str:
    """A folder's last component ("photos" for /home/NAME/private/photos, or for ".")."""
    return folder.name if folder.name not in ("", ".", "..") else folder.resolve().name


def public_photo(path: str, folder: Path) -> str:
    """A photo's path inside its folder, or its file name alone."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


def collect_pages(model: ModelPage, cache: Cache, emit) -> list[BlockPage]:
    """A model's blocks, layers and filters, each filter's image placed in the site."""
    blocks: dict[str, BlockPage] = {}
    sequence: list[FilterPage] = []
    for layer_rec in layer_records(model.record):
        layer = LayerPage(model.slug, layer_rec["name"], layer_rec["block"], layer_rec["filters"],
                          layer_rec.get("kind", "conv"), pending=layer_rec.get("pending"))
        for entry in layer_rec["entries"]:
            pictures = [
                Picture(img["method"], *place_image(cache, img["key"], layer.name, entry["index"], emit),
                        img["activation"], img["view"], img["member"], img.get("unit"), img["precision"],
                        *large_size(cache.path(img["key"])))
                for img in entry["images"]
            ]
            examples = place_examples(cache, entry.get("examples", {}), layer.name, entry["index"], emit)
            layer.filters.append(FilterPage(layer, entry["index"], pictures, examples))
        blocks.setdefault(layer.block, BlockPage(model.slug, layer.block)).layers.append(layer)
        sequence.extend(layer.filters)
    for before, after in zip(sequence, sequence[1:]):
        before.next, after.prev = after, before
    return list(blocks.values())


def layer_records(record: dict) -> list[dict]:
    """The record's layers; in a live build's partial record, with the pending
    ones (as `LayerPage.pending`) in the model's order."""
    if "pending" not in record:
        return record["layers"]
    pending = [{**layer, "entries": [], "pending": {k: layer[k] for k in ("indices", "done", "computing")}}
               for layer in record["pending"]]
    order = record["progress"]["order"]
    return sorted(record["layers"] + pending, key=lambda layer: order.index(layer["name"]))


def compare(value: float, stats: dict, end: str) -> str:
    """`value` against the photos' max, average and min of the same quantity."""
    high, low, average = stats["max"], stats["min"], stats["average"]
    if end == "min":
        if value < low:
            return f"below every photo (lowest {low:.3g})"
        return f"between the lowest photo ({low:.3g}) and an average one ({average:.3g})" if value < average \
            else f"not below an average photo ({average:.3g})"
    if value >= high:
        return f"above every photo (best {high:.3g})"
    if value >= average:
        return f"{(value - average) / max(high - average, 1e-9):.0%} of the way from an average photo " \
               f"({average:.3g}) to the best ({high:.3g})"
    return f"below an average photo ({average:.3g}; best {high:.3g})"


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
    for kind in ("top", "bottom"):
        for example in examples.get(kind, []):
            for path in (example["crop"], example["view"]):
                try:
                    emit(path, (cache.root / path).read_bytes(), content_named=True)
                except FileNotFoundError:
                    raise AtlasError(f"{layer} filter {index}: example {path} is missing from the cache; "
                                     "run `filter-atlas build --images DIR` again") from None
    return examples


def thumbnail(cache: Cache, digest: str, png: bytes) -> bytes:
    """A lossy WebP of the picture, ~7x smaller than the PNG, THUMB_SIZE on its
    longer side; made once, kept in the cache under its source, size and filter."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        size = fit(img.size, THUMB_SIZE)
        method = THUMB_DOWNSCALE if max(img.size) > THUMB_SIZE else THUMB_UPSCALE
        path = cache.root / "thumbs" / f"{digest}-{size[0]}x{size[1]}-{method}-q{THUMB_QUALITY}.webp"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        out = io.BytesIO()
        img.convert("RGB").resize(size, getattr(Image.Resampling, method.upper())).save(
            out, format="WEBP", quality=THUMB_QUALITY, method=6
        )
    atomic_write(path, out.getvalue())
    return out.getvalue()


def fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is `longest`, the aspect ratio kept."""
    scale = longest / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def large_size(png_path: Path) -> tuple[int, int]:
    """The filter page's width and height for a cached picture: its own size
    (read from the PNG header) scaled to LARGE_SIZE on the longer side."""
    with open(png_path, "rb") as f:
        header = f.read(24)
    return fit((int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")), LARGE_SIZE)


def jump_example(model: ModelPage, qualified: bool = False) -> str:
    """A query the jump box answers in this atlas: a middle layer's middle
    filter, with the model's name where several models share the page."""
    # A live build's pending layers count as they will once finished, so the example stays put.
    layers = [layer for layer in model.layers if layer.filters or (layer.pending and layer.pending["indices"])]
    if not layers:
        return "LAYER 0"
    layer = layers[len(layers) // 2]
    index = layer.indices[len(layer.indices) // 2]
    if qualified:
        return f"{model.name}/{layer.name} {index}"
    alias = f" or {layer.alias} {index}" if layer.alias != layer.name.lower() else ""
    return f"{layer.name} {index}{alias}"


def jump_index(models: list[ModelPage]) -> dict:
    """What the jump box needs to find any filter of any model offline."""
    return {
        "models": [
            {
                "name": model.name, "slug": model.slug, "path": model.path, "example": jump_example(model),
                "blocks": {block.name: block.path for block in model.blocks},
                "layers": [
                    {"name": layer.name, "alias": layer.alias, "path": layer.path,
                     "filters": {str(f.index): f.path for f in layer.filters}}
                    for layer in model.layers
                ],
            }
            for model in models
        ],
    }


def manifest(model: ModelPage) -> dict:
    """One model's part of site/atlas.json, paths relative to the site."""
    record = model.record
    return {
        "model": model.name,
        "page": model.path,
        "weights": record["weights"],
        "network_sha256": record["network_sha256"],
        "input_shape": record["input_shape"],
        "preprocess": record["preprocess"],
        "precision": record["settings"]["precision"],
        "methods": record["methods"],
        "views": record["views"],
        "examples": record.get("examples"),
        **({"progress": model.progress} if model.progress else {}),
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
                        **({"pending": layer.pending} if layer.pending else {}),
                        "filters": [
                            {
                                "index": f.index,
                                "page": f.path,
                                "pictures": [
                                    {"method": p.method, "view": p.view, "member": p.member, "image": p.image,
                                     "thumbnail": p.thumb, "activation": p.activation, "precision": p.precision,
                                     **({"unit": p.unit} if p.unit else {})}
                                    for p in f.pictures
                                ],
                                **({"dead": True} if f.dead else {}),
                                "examples": f.examples,
                            }
                            for f in layer.filters
                        ],
                    }
                    for layer in block.layers
                ],
            }
            for block in model.blocks
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
    env.filters["plural"] = plural  # {{ n | plural("filter") }}: "1 filter", "2 filters"
    env.filters["duration"] = duration  # {{ 4000 | duration }}: "1 h 7 min"
    return env


def duration(seconds: float) -> str:
    """A time left in words, as coarse as it is uncertain: "40 s", "12 min", "3 h 5 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def remove_stale(site: Path, written: set[Path]) -> None:
    """Delete what earlier renders made and this one did not, in render's own
    folders only. Another render of the same site may be writing meanwhile:
    its temporary files are left alone, and folders may come and go."""
    folders = [site / name for name in MANAGED_DIRS]
    folders += [marker.parent for marker in site.glob(f"*/{MODEL_MARKER}")]
    for folder in folders:
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and path not in written and not in_flight(path):
                path.unlink(missing_ok=True)
            elif path.is_dir():
                remove_if_empty(path)
        remove_if_empty(folder)


def in_flight(path: Path) -> bool:
    """Whether `path` is a temporary file another render may still rename into place."""
    if not (path.name.startswith(".") and path.name.endswith(".tmp")):
        return False
    try:
        return time.time() - path.stat().st_mtime < TEMPORARY_MAX_AGE_S
    except FileNotFoundError:  # renamed meanwhile
        return False


def remove_if_empty(folder: Path) -> None:
    try:
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError:  # gone already, or just filled again
        pass
