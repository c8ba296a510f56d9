"""The result cache: one PNG per filter, named by a hash of what made it.

Each entry is a single PNG whose text chunk records its key and the filter's
final activation, so an entry is written with one atomic rename and checked
with one read: a half-written or foreign file never passes as valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AtlasError
from .imaging import encode_png, read_png_meta


def cache_key(params: dict) -> str:
    """Stable hash of everything that determines a filter's pixels."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    path: Path
    meta: dict

    @property
    def activation(self) -> float:
        return self.meta["activation"]


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / "filters" / key[:2] / f"{key}.png"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> Entry | None:
        """The entry for `key`, or None when missing or not a whole, matching PNG."""
        found = self.read(key)
        return found[1] if found else None

    def read(self, key: str) -> tuple[bytes, Entry] | None:
        """The entry's PNG bytes and entry, checked to decode whole and carry `key`."""
        path = self.path(key)
        try:
            data = path.read_bytes()
            meta = read_png_meta(data)
        except (OSError, ValueError):
            return None
        if meta.get("key") != key:
            return None
        return data, Entry(path, meta)

    def put(self, key: str, pixels: np.ndarray, meta: dict) -> Entry:
        meta = {**meta, "key": key}
        path = self.path(key)
        atomic_write(path, encode_png(pixels, meta))
        return Entry(path, meta)

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename: readers see all or nothing.
    A full disk or a read-only folder becomes a one-line AtlasError."""
    tmp = None
    try:
        tmp = write_temporary(path.parent, f".{path.name}.", data)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AtlasError(f"cannot write {path}: {os_reason(path, exc)}") from None
        raise


def write_temporary(folder: Path, prefix: str, data: bytes) -> str:
    """`data` on disk under a name no other process can pick (so concurrent
    builds never touch each other's temporaries); returns its path."""
    for attempt in range(5):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
            break
        except FileNotFoundError:  # a render's cleanup removed the folder while it was empty
            if attempt == 4:
                raise
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the site from a web server's user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # a full disk refuses here, not later
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def os_reason(path: Path, exc: OSError) -> str:
    """The system's reason, but naming the real culprit when a parent is a file."""
    for parent in path.parents:
        if parent.exists():
            return exc.strerror or str(exc) if parent.is_dir() else f"{parent} is a file, not a folder"
    return exc.strerror or str(exc)


def ensure_writable(folder: Path) -> None:
    """Fail at once, not after the first batch, when `folder` cannot take files.
    The probe has a name of its own, so builds sharing the folder cannot collide."""
    try:
        Path(write_temporary(folder, ".write-test.", b"ok")).unlink()
    except OSError as exc:
        raise AtlasError(f"cannot write to {folder}: {os_reason(folder / 'probe', exc)}") from None
