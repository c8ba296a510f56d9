"""Build records: what a build leaves for `render`, one per model.

A record holds the network, its layers and, per filter, each picture's
cache key and final activation, with the dataset examples where photos
were given.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict
from pathlib import Path

from .errors import AtlasError
from .names import model_name, safe_name

RECORDS = "builds"  # one record per model: the last build of it, which `render` shows
# What a record holds. 1: one picture per method and filter. 2: pictures per
# method, view and member ("view", "member"), and the record's views.
SCHEMA_VERSION = 2


def make_record(settings, net, chosen, wanted, keys, activations, precisions=None) -> dict:
    """What `render` needs: the network, its layers, and each picture's cache key.
    `precisions`: where pictures of another precision than the build's were taken."""
    layers = []
    for layer in chosen:
        entries = [{"index": i, "images": filter_images(settings, layer.name, i, keys, activations, precisions or {})}
                   for i in wanted[layer.name]]
        layers.append({**asdict(layer), "entries": entries})
    return {
        "schema": SCHEMA_VERSION,
        "model": model_name(net.name),
        "network_sha256": net.sha256,
        "weights": net.weights_note,
        "source": str(Path(net.source).resolve()),
        "input_shape": net.description["input_shape"],
        "preprocess": {"mode": net.preprocess, "why": net.preprocess_why},
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("model", "weights")},
        "methods": {m: settings.method(m).key() | {"summary": settings.method(m).summary} for m in settings.methods},
        "views": {v: {"objective": settings.view(v).objective.key(), "pictures": settings.view(v).group}
                  for v in settings.views},
        "layers": layers,
    }


def filter_images(settings, layer: str, index: int, keys: dict, activations: dict, precisions: dict) -> list[dict]:
    """A filter's pictures: per method and view, each of the view's pictures."""
    return [
        {"method": m, "view": v, "member": member, "key": key, "activation": activation,
         "precision": precisions.get((m, v, layer, index), settings.precision)}
        for m in settings.methods
        for v in settings.views
        for member, (key, activation) in enumerate(zip(keys[(m, v, layer, index)], activations[(m, v, layer, index)]))
    ]


def attach_examples(record: dict, found: dict, summary: dict) -> dict:
    """Put each filter's dataset examples into the build record."""
    record["examples"] = summary
    for layer in record["layers"]:
        for entry in layer["entries"]:
            entry["examples"] = found.get(layer["name"], {}).get(entry["index"], {})
    return record


def record_pictures(record: dict) -> dict[str, list[tuple[int, str]]]:
    """Per layer, (filter index, cache key) of every picture in the record."""
    return {layer["name"]: [(entry["index"], image["key"]) for entry in layer["entries"] for image in entry["images"]]
            for layer in record["layers"]}


def attach_measures(record: dict, measures: dict[str, dict]) -> dict:
    """Give each picture its unit output as measured like a photo's (examples/measure.py)."""
    for layer in record["layers"]:
        for entry in layer["entries"]:
            for image in entry["images"]:
                image["unit"] = measures[image["key"]]
    return record


def unique_model_name(cache_root: Path, net) -> str:
    """What this cache calls the model: `model_name`'s name, unless another
    model's build already has it; then that name and the first 8 hex digits of
    the file's sha256 (`net-1a2b3c4d`). A model whose build is in the cache
    (the same file content, or the same file rebuilt after a change) keeps its name."""
    base = model_name(net.name)
    builds = {record["model"]: record for record in readable_builds(cache_root)}
    source = Path(net.source).resolve()
    same = lambda r: r.get("network_sha256") == net.sha256 or Path(r.get("source", "")).resolve() == source
    mine = [name for name, record in builds.items() if same(record)]
    if mine:
        return base if base in mine else mine[0]
    for name in (base, f"{base}-{net.sha256[:8]}", f"{base}-{net.sha256[:16]}", f"{base}-{net.sha256}"):
        if name not in builds:
            return name
    raise AtlasError(f"cannot name {net.name}: every name derived from {base} is taken in {cache_root}")


def readable_builds(cache_root: Path) -> list[dict]:
    """The records in the cache as they are, those that read back whole."""
    found = []
    for path in sorted((cache_root / RECORDS).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # render reports a corrupt record
        if isinstance(record, dict) and "model" in record:
            found.append(record)
    return found


def build_of_network(cache_root: Path, sha256: str) -> dict | None:
    """The last build in the cache of the model file with this digest, if any."""
    return next((r for r in readable_builds(cache_root) if r.get("network_sha256") == sha256), None)


def record_path(cache_root: Path, model: str) -> Path:
    return cache_root / RECORDS / f"{safe_name(model)}.json"


def read_records(cache_root: Path) -> list[dict]:
    """Every model's last build in the cache, by model name, in today's schema."""
    records = []
    for path in sorted((cache_root / RECORDS).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except ValueError:
            raise AtlasError(f"{path} is corrupt; run `filter-atlas build` again for that model") from None
        records.append(upgrade(record, cache_root))
    return sorted(records, key=lambda r: r["model"])


def upgrade(record: dict, cache_root: Path) -> dict:
    """A record of an earlier schema read as today's, or a clear message where it cannot be."""
    schema = record.get("schema", 1)
    if schema > SCHEMA_VERSION:
        raise AtlasError(f"the build of {record.get('model')} in {cache_root} was written by a newer "
                         "filter-atlas; upgrade it, or build again with this one")
    if "preprocess" not in record:
        raise AtlasError(f"the build of {record['model']} in {cache_root} was written by an older version; "
                         "run `filter-atlas build` again (cached pictures are reused)")
    if schema == 1:  # every picture was the channel view's only one
        for layer in record["layers"]:
            for entry in layer["entries"]:
                for image in entry["images"]:
                    image.setdefault("view", "channel")
                    image.setdefault("member", 0)
        record["views"] = {"channel": {"objective": "mean", "pictures": 1}}
        record["schema"] = SCHEMA_VERSION
    for layer in record["layers"]:  # pictures were the build's precision before each had its own
        for entry in layer["entries"]:
            for image in entry["images"]:
                image.setdefault("precision", record["settings"]["precision"])
    return record


def record_json(data) -> bytes:
    """A build record (or atlas.json) as `json.dumps(data, indent=1)`, but each
    circuits `inputs` and `outputs` list of links on one line, written by the
    C encoder: with an indent, Python's own encoder
    writes every number of every kernel on a line of its own, which took 40 s
    and 58 MB for a VGG16 atlas's 76,000 links (the same JSON values either way)."""
    token = f"circuits-{uuid.uuid4().hex}-"
    compact: list[str] = []

    def strip(value):
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in ("inputs", "outputs") and isinstance(item, list):
                    compact.append(json.dumps(item, separators=(",", ":")))
                    out[key] = f"{token}{len(compact) - 1}"
                else:
                    out[key] = strip(item)
            return out
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    text = json.dumps(strip(data), indent=1)
    return re.sub(f'"{token}(\\d+)"', lambda m: compact[int(m.group(1))], text).encode()
