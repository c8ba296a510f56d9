"""What a picture's score means, and the measures behind it (make quality's and the sweep's).

A unit's score for a picture is its activation relative to nature: the unit's
mean output before its nonlinearity, averaged over `copies` randomly jittered,
scaled and rotated copies of the picture (SCORING_WARP, the same warps every
run), set against the same quantity for each of a folder of photographs moved
by the same copies' warps, so that both lose the same grey borders:
score = (picture - natural mean) / (natural max - natural mean). 1 is as strong
as the best photo, 0 an average one, below 0 weaker than an average photo; it is
defined whatever the unit's sign, sparse units included. The photos' mean and
max per unit are computed in one pass per network and cached per layer. Beside
it, a picture's high-frequency power: the fraction of its spectral power above
half the Nyquist frequency (pixel noise scores high, smooth pictures low).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .cache import atomic_write, cache_key
from .errors import AtlasError
from .networks import layers_model, network_input
from .photos import load_photo
from .optvis.transforms import RandomAffine

SCORING_WARP = RandomAffine(jitter=8.0, scale=(0.9, 1.1), degrees=10.0)
SCORING_SEED = 12345
PHOTO_BATCH = 32


def unit_means(model, images) -> list[np.ndarray]:
    """Each output's spatial mean per image and channel: a list of (n, channels)."""
    outputs = model(images)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(o, np.float32).mean(axis=(1, 2)) for o in outputs]


def natural_stats(keras_model, network_sha: str, layer_names, photos, shape, preprocess, cache_dir: Path,
                  copies: int = 1, report=print) -> dict:
    """Per layer, the mean and the max over the photos of every unit's spatial
    mean output before its nonlinearity, each photo's averaged over the
    `copies` moved copies a picture is scored on (1: the photo as it is).
    Each layer is cached on its own, by network, photos, input and copies, so
    a run on some of the layers reuses a run on all of them."""
    basis = [network_sha, list(shape), preprocess, [(str(p), p.stat().st_size) for p in photos]]
    basis += [copies] if copies > 1 else []
    paths = {name: cache_dir / "quality" / f"natural-{cache_key({'photos': basis, 'layer': name})[:24]}.npz"
             for name in layer_names}
    missing = [name for name in layer_names if not paths[name].is_file()]
    if missing:
        for name, (mean, top) in photo_stats(keras_model, missing, photos, shape, preprocess, copies, report).items():
            out = io.BytesIO()
            np.savez(out, mean=mean, max=top)
            atomic_write(paths[name], out.getvalue())
    stats = {}
    for name in layer_names:
        with np.load(paths[name]) as data:
            stats[name] = (data["mean"], data["max"])
    return stats


def photo_stats(keras_model, layer_names, photos, shape, preprocess, copies, report) -> dict:
    """One pass over the photos for all the layers: per layer, (mean, max) per unit."""
    model = layers_model(keras_model, layer_names, pre_activation=True)
    sums, maxima, count = None, None, 0
    for start in range(0, len(photos), PHOTO_BATCH):
        batch = []
        for photo in photos[start : start + PHOTO_BATCH]:
            try:
                batch.append(load_photo(photo, shape[:2]))
            except ValueError as exc:
                report(f"skipping {exc}")
        if not batch:
            continue
        means = moved_means(model, np.stack(batch), copies, shape, preprocess)
        sums = [m.sum(axis=0) for m in means] if sums is None else [s + m.sum(axis=0) for s, m in zip(sums, means)]
        maxima = ([m.max(axis=0) for m in means] if maxima is None
                  else [np.maximum(x, m.max(axis=0)) for x, m in zip(maxima, means)])
        count += len(batch)
    if not count:
        raise AtlasError("no readable photographs to compare with")
    return {name: (s / count, x) for name, s, x in zip(layer_names, sums, maxima)}


def moved_means(model, images01: np.ndarray, copies: int, shape, preprocess: str) -> list[np.ndarray]:
    """`unit_means` of each image averaged over its `copies` moved copies (the
    same warps for every image), at the network's input size; 1: as it is."""
    import tensorflow as tf

    if copies <= 1:
        return unit_means(model, network_input(images01, preprocess))
    batch = tf.constant(images01, tf.float32)
    total = None
    for k in range(copies):
        moved = SCORING_WARP(batch, k, SCORING_SEED, shape[:2]).numpy()
        means = unit_means(model, network_input(moved, preprocess))
        total = means if total is None else [t + m for t, m in zip(total, means)]
    return [t / copies for t in total]


def robust_activation(submodel, picture01: np.ndarray, index: int, copies: int, shape, preprocess: str) -> float:
    """The unit's mean output over `copies` moved copies of the picture, at the network's input size."""
    return float(moved_means(submodel, picture01[None], copies, shape, preprocess)[0][0, index])


def relative_to_nature(value: float, natural_mean: float, natural_max: float) -> float:
    return (value - natural_mean) / max(natural_max - natural_mean, 1e-9)


def high_frequency_fraction(picture01: np.ndarray) -> float:
    gray = picture01.mean(axis=-1)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy = np.fft.fftfreq(gray.shape[0])[:, None]
    fx = np.fft.fftfreq(gray.shape[1])[None, :]
    radius = np.sqrt(fx * fx + fy * fy)  # cycles per pixel; Nyquist is 0.5
    total = power.sum()
    return float(power[radius > 0.25].sum() / total) if total > 0 else 0.0
