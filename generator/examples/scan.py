"""One streaming pass over a folder of photographs: for every filter of every
selected layer at once, the photos whose unit output peaks highest (and,
optionally, dips lowest), where, and by how much; and how the unit's mean
over the feature map and its centre value range over the photos, the same
quantities a picture's channel and neuron views maximize.

Memory stays bounded whatever the number of photos: per filter only the
running top k survive a batch. Progress is saved after every chunk, so an
interrupted pass resumes where it stopped (at worst redoing one chunk).
The unit is the one the pictures show (see networks/units.py), taken
before its nonlinearity so that its lows mean something too.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import interrupts
from ..cache import atomic_write
from ..networks import layers_model, network_input
from ..photos import load_photo

EXAMPLES_VERSION = 2  # 2: the photos' tallies of mean and centre outputs
BATCH = 32
CHUNK = 256  # photos between two saves of the running state


@dataclass
class Extremes:
    """A layer's running top k per filter: values, photo numbers, positions (y, x)."""

    values: np.ndarray  # (filters, k)
    photos: np.ndarray  # (filters, k), -1 where nothing yet
    where: np.ndarray  # (filters, k, 2)

    @classmethod
    def empty(cls, filters: int, k: int, largest: bool) -> "Extremes":
        fill = -np.inf if largest else np.inf
        return cls(np.full((filters, k), fill, np.float32), np.full((filters, k), -1, np.int32),
                   np.zeros((filters, k, 2), np.int32))

    def merge(self, values, photos, where, largest: bool) -> None:
        """Add a batch ((filters, batch) values and photo numbers, (filters, batch, 2) positions).
        Ties keep the earlier photo, so chunking never changes the result."""
        all_values = np.concatenate([self.values, values], axis=1)
        order = np.argsort(-all_values if largest else all_values, axis=1, kind="stable")[:, : self.values.shape[1]]
        self.values = np.take_along_axis(all_values, order, axis=1)
        self.photos = np.take_along_axis(np.concatenate([self.photos, photos], axis=1), order, axis=1)
        self.where = np.take_along_axis(np.concatenate([self.where, where], axis=1), order[..., None], axis=1)


@dataclass
class Tally:
    """Per filter, the highest, lowest and summed value of one quantity over the photos so far."""

    high: np.ndarray  # (filters,)
    low: np.ndarray
    total: np.ndarray
    count: np.ndarray  # () photos counted

    @classmethod
    def empty(cls, filters: int) -> "Tally":
        return cls(np.full(filters, -np.inf, np.float32), np.full(filters, np.inf, np.float32),
                   np.zeros(filters, np.float64), np.zeros((), np.int64))

    def add(self, values: np.ndarray) -> None:
        """Add a batch: (batch, filters) values."""
        self.high = np.maximum(self.high, values.max(axis=0))
        self.low = np.minimum(self.low, values.min(axis=0))
        self.total = self.total + values.sum(axis=0, dtype=np.float64)
        self.count = self.count + len(values)

    def summary(self, index: int) -> dict:
        return {"max": float(self.high[index]), "min": float(self.low[index]),
                "average": float(self.total[index] / max(int(self.count), 1))}


TALLIES = ("mean", "centre")  # the unit's mean over the feature map; its value at the centre position


def fingerprint(photos: list[Path], root: Path) -> tuple[str, list[str]]:
    """A content hash of the photo set, and each photo's own."""
    each = []
    whole = hashlib.sha256()
    for photo in photos:
        digest = hashlib.sha256(photo.read_bytes()).hexdigest()
        each.append(digest)
        whole.update(f"{photo.relative_to(root).as_posix()}\0{digest}\n".encode())
    return whole.hexdigest(), each


def pass_key(network_sha: str, shape, preprocess: str, photo_set: str, layers: list[str], k: int) -> str:
    text = json.dumps([EXAMPLES_VERSION, network_sha, list(shape), preprocess, photo_set, layers, k])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def batch_extremes(model):
    """A compiled function: for a batch, per layer, each filter's spatial max and
    min and their flat positions, its spatial mean and its centre value."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(images):
        outputs = model(images)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        result = []
        for out in outputs:
            flat = tf.reshape(tf.cast(out, tf.float32), [tf.shape(out)[0], -1, tf.shape(out)[-1]])
            centre = tf.cast(out[:, out.shape[1] // 2, out.shape[2] // 2, :], tf.float32)
            result.append((tf.reduce_max(flat, 1), tf.argmax(flat, 1, output_type=tf.int32),
                           tf.reduce_min(flat, 1), tf.argmin(flat, 1, output_type=tf.int32),
                           tf.reduce_mean(flat, 1), centre))
        return result

    return run


def save_state(path: Path, done: int, skipped: list[str], top: dict, bottom: dict, tallies: dict) -> None:
    arrays = {"done": np.array(done)}
    for kind, extremes in (("top", top), ("bottom", bottom)):
        for name, e in extremes.items():
            arrays.update({f"{kind}/{name}/values": e.values, f"{kind}/{name}/photos": e.photos,
                           f"{kind}/{name}/where": e.where})
    for name, per_quantity in tallies.items():
        for quantity, t in per_quantity.items():
            arrays.update({f"tally/{name}/{quantity}/{field}": getattr(t, field)
                           for field in ("high", "low", "total", "count")})
    out = io.BytesIO()
    np.savez(out, skipped=np.array(skipped, dtype=str), **arrays)
    atomic_write(path, out.getvalue())


def load_state(path: Path, names: list[str]):
    """The saved progress, or None where there is none or it does not read back whole."""
    try:
        with np.load(path) as data:
            def extremes(kind):
                return {n: Extremes(data[f"{kind}/{n}/values"], data[f"{kind}/{n}/photos"], data[f"{kind}/{n}/where"])
                        for n in names}
            tallies = {n: {q: Tally(*(data[f"tally/{n}/{q}/{field}"] for field in ("high", "low", "total", "count")))
                           for q in TALLIES} for n in names}
            return int(data["done"]), list(data["skipped"]), extremes("top"), extremes("bottom"), tallies
    except (OSError, ValueError, KeyError, EOFError):
        return None


def collect(load_model, layer_names: list[str], photos: list[Path], shape, preprocess: str, k: int,
            state_path: Path, progress: bool = True, report=print):
    """Run (or resume) the pass; returns (top, bottom, skipped, tallies): Extremes per
    layer, the unreadable photos, and per layer the Tally of each of TALLIES.
    `load_model()` gives the network, loaded only if work is left."""
    state = load_state(state_path, layer_names) if state_path.is_file() else None
    if state is not None and state[0] >= len(photos):
        return state[2], state[3], state[1], state[4]
    model = layers_model(load_model(), layer_names, pre_activation=True)
    widths = [int(o.shape[2]) for o in model.outputs]
    if state is None:
        channels = [int(o.shape[-1]) for o in model.outputs]
        state = (0, [], {n: Extremes.empty(c, k, True) for n, c in zip(layer_names, channels)},
                 {n: Extremes.empty(c, k, False) for n, c in zip(layer_names, channels)},
                 {n: {q: Tally.empty(c) for q in TALLIES} for n, c in zip(layer_names, channels)})
    done, skipped, top, bottom, tallies = state
    run = batch_extremes(model)
    with tqdm(total=len(photos), initial=done, desc="examples", unit="photo", disable=not progress) as bar:
        for chunk_start in range(done, len(photos), CHUNK):
            chunk = range(chunk_start, min(chunk_start + CHUNK, len(photos)))
            for start in range(chunk.start, chunk.stop, BATCH):
                numbers, images = [], []
                for number in range(start, min(start + BATCH, chunk.stop)):
                    try:
                        images.append(load_photo(photos[number], shape[:2]))
                        numbers.append(number)
                    except ValueError as exc:
                        skipped.append(str(photos[number]))
                        report(f"skipping {exc}")
                if images:
                    results = run(network_input(np.stack(images), preprocess))
                    ids = np.array(numbers, np.int32)
                    for name, width, (high, at_high, low, at_low, mean, centre) in zip(layer_names, widths, results):
                        tallies[name]["mean"].add(mean.numpy())
                        tallies[name]["centre"].add(centre.numpy())
                        for extremes, values, at, largest in ((top[name], high, at_high, True),
                                                              (bottom[name], low, at_low, False)):
                            at = at.numpy().T  # (filters, batch)
                            where = np.stack([at // width, at % width], axis=-1)
                            photo_ids = np.broadcast_to(ids, at.shape)
                            extremes.merge(values.numpy().T, photo_ids, where, largest)
                bar.update(min(start + BATCH, chunk.stop) - start)
                interrupts.check()
            save_state(state_path, chunk.stop, skipped, top, bottom, tallies)
    return top, bottom, skipped, tallies
