"""Rendering the site: every model's pages from the cache's build records,
with Jinja2, and the files beside them (atlas.json, the jump index)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jinja2

from ..cache import Cache, atomic_write, ensure_writable
from ..errors import AtlasError
from ..records import read_records, record_json
from ..circuits.page import CircuitPages, circuit_fields
from ..words import plural
from .files import MODEL_MARKER, place_examples, place_image, remove_stale
from .pages import VIEW_SUMMARIES, VIEW_TITLES, BlockPage, FilterPage, LayerPage, ModelPage, Picture
from .public import private_examples, public_record
from .accent import accent_picture
from ..optvis.views import SEEDED_VIEWS

# The top-level templates/ folder, installed as the package `generator.templates`.
TEMPLATES = resources.files("generator.templates")
STATIC = ("style.css", "atlas.js")


def render(cache_dir: Path, site_dir: Path, private_photos: bool = False) -> int:
    """Render every model built into the cache into `site_dir`; returns the page
    count. With `private_photos`, the site shows the photos' crops alone: no
    photo's file name or path, no folder name, no whole photo (the cache keeps them)."""
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

    models = [ModelPage(r["model"], public_record(r, private_photos)) for r in records]
    for model in models:
        model.blocks = collect_pages(model, cache, emit, private_photos)
        link_circuits(model)
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
    emit("atlas.json", record_json({"models": [manifest(model) for model in models]}))  # indent=1
    emit(".nojekyll", b"")  # GitHub Pages: serve files as they are
    remove_stale(site, written)
    return len(pages)


def collect_pages(model: ModelPage, cache: Cache, emit, private_photos: bool = False) -> list[BlockPage]:
    """A model's blocks, layers and filters, each filter's image placed in the site."""
    blocks: dict[str, BlockPage] = {}
    sequence: list[FilterPage] = []
    for layer_rec in layer_records(model.record):
        layer = LayerPage(model.slug, layer_rec["name"], layer_rec["block"], layer_rec["filters"],
                          layer_rec.get("kind", "conv"), pending=layer_rec.get("pending"))
        for entry in layer_rec["entries"]:
            pictures = [picture(cache, img, layer.name, entry["index"], emit) if img["view"] not in SEEDED_VIEWS
                        else accent_picture(cache, img, layer.name, entry["index"], emit, private_photos)
                        for img in entry["images"]]
            examples = place_examples(cache, entry.get("examples", {}), layer.name, entry["index"], emit,
                                      views=not private_photos)
            if private_photos:
                examples = private_examples(examples)
            layer.filters.append(FilterPage(layer, entry["index"], pictures, examples))
        blocks.setdefault(layer.block, BlockPage(model.slug, layer.block)).layers.append(layer)
        sequence.extend(layer.filters)
    for before, after in zip(sequence, sequence[1:]):
        before.next, after.prev = after, before
    return list(blocks.values())


def link_circuits(model: ModelPage) -> None:
    """Each filter page's inputs and outputs (generator/circuits/page.py), linked to the pages this atlas has."""
    pages = {(layer.name, f.index): f for layer in model.layers for f in layer.filters}
    shown = CircuitPages(pages)
    for layer in layer_records(model.record):
        for entry in layer["entries"]:
            page = pages[(layer["name"], entry["index"])]
            page.circuits = shown.view(layer["name"], entry, model.record, "../" * page.path.count("/"))
            page.circuit_fields = circuit_fields(entry)


def picture(cache: Cache, img: dict, layer: str, index: int, emit) -> Picture:
    """One of a filter's pictures, placed in the site."""
    placed = place_image(cache, img["key"], layer, index, emit)
    return Picture(img["method"], placed.image, placed.thumb, img["activation"], img["view"], img["member"],
                   img.get("unit"), img["precision"], *placed.size,
                   window=placed.meta.get("window"), crop=placed.crop)


def layer_records(record: dict) -> list[dict]:
    """The record's layers; in a live build's partial record, with the pending
    ones (as `LayerPage.pending`) in the model's order."""
    if "pending" not in record:
        return record["layers"]
    pending = [{**layer, "entries": [], "pending": {k: layer[k] for k in ("indices", "done", "computing")}}
               for layer in record["pending"]]
    order = record["progress"]["order"]
    return sorted(record["layers"] + pending, key=lambda layer: order.index(layer["name"]))


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
                                **f.circuit_fields,
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
