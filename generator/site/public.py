"""What of a build record the site may show: nothing of this machine's paths."""

from __future__ import annotations

from pathlib import Path

def public_record(record: dict, private_photos: bool = False) -> dict:
    """The build record as the site may show it: nothing of this machine's paths.
    The photo folder by its last component, unreadable photos by their path in
    it (with `private_photos`: neither, the unreadable ones counted); no source
    path (the weights note names the file, network_sha256 is its digest);
    settings without the model and weights paths, the model's own code by its
    file name."""
    record = {key: value for key, value in record.items() if key != "source"}
    record["settings"] = {k: v for k, v in record.get("settings", {}).items() if k not in ("model", "weights")}
    if record["settings"].get("custom_objects"):  # the model's own code, by file name
        record["settings"]["custom_objects"] = Path(record["settings"]["custom_objects"]).name
    if record.get("examples") and private_photos:
        record["examples"] = {**{k: v for k, v in record["examples"].items() if k != "folder"},
                              "skipped": len(record["examples"]["skipped"]), "private_photos": True}
    elif record.get("examples"):
        folder = Path(record["examples"]["folder"])
        record["examples"] = {**record["examples"], "folder": public_folder(folder),
                              "skipped": [public_photo(path, folder) for path in record["examples"]["skipped"]]}
    return record


# What of a filter's example the site shows with --private-photos: the crop, its number and where
# in the network's input it lies; not the photo's path in its folder ("photo"), nor the whole photo ("view").
PRIVATE_EXAMPLE_FIELDS = ("crop", "activation", "box")


def private_examples(examples: dict) -> dict:
    """A filter's examples without the photos' names and whole views (the "natural" statistics kept)."""
    return {kind: [{k: v for k, v in entry.items() if k in PRIVATE_EXAMPLE_FIELDS} for entry in value]
            if kind in ("top", "bottom") else value
            for kind, value in examples.items()}


def public_folder(folder: Path) -> str:
    """A folder's last component ("photos" for /home/NAME/private/photos, or for ".")."""
    return folder.name if folder.name not in ("", ".", "..") else folder.resolve().name


def public_photo(path: str, folder: Path) -> str:
    """A photo's path inside its folder, or its file name alone."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name
