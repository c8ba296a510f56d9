"""Interpretability with a model as the observer.

Borowski et al. (ICLR 2021) asked people: given a unit's reference images,
which of two photos, one that drives the unit hard and one that drives it
low, is the "top" one? Here another network stands in for the people: it
embeds the references and the photos, and the photo nearer (cosine
similarity, mean over the references) to the references is its answer.
Over a unit's 10 top and 10 bottom photos, all 100 pairs: the fraction
answered right. "Nearer" is measured two ways: by the mean similarity to
the references, and by the similarity to the nearest one. 0.5 is chance; the unit's next top photos as references
give the natural ceiling.

The observer must not be the visualized network. For MobileNet, the BVLC
GoogLeNet in ../shared/models/ (its LRN layer needs googlenet_lrn.py there).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import AtlasError
from .networks import network_input

REPO = Path(__file__).resolve().parent.parent
GOOGLENET = REPO.parent / "shared" / "models" / "googlenet_bvlc_imagenet.keras"
# Mid-level: parts and textures, what a unit's pictures and photos can share.
EMBEDDING_LAYER = "inception_4c_output"
INPUT = 224


class Observer:
    """A network that embeds images (RGB in [0, 1], any size) as vectors."""

    def __init__(self, path: Path = GOOGLENET, layer: str = EMBEDDING_LAYER, preprocess: str = "caffe"):
        from .tf_quiet import import_keras

        keras = import_keras()
        if not Path(path).is_file():
            raise AtlasError(f"no observer network at {path}")
        lrn = Path(path).parent / "googlenet_lrn.py"
        if lrn.is_file():  # registers the CaffeLRN layer with Keras
            spec = importlib.util.spec_from_file_location("googlenet_lrn", lrn)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        model = keras.models.load_model(path, compile=False)
        self.model = keras.Model(model.input, model.get_layer(layer).output)
        self.name, self.layer, self.preprocess = Path(path).name, layer, preprocess

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, d) unit vectors: the layer's output averaged over positions."""
        import tensorflow as tf

        batch = tf.image.resize(np.stack([resized(i) for i in images]), (INPUT, INPUT))
        features = np.asarray(self.model(network_input(batch, self.preprocess)), np.float32).mean(axis=(1, 2))
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def resized(image: np.ndarray) -> np.ndarray:
    """float32 RGB in [0, 1] at the observer's input size."""
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels).resize((INPUT, INPUT), Image.BICUBIC), np.float32) / 255


def pairs_right(references: np.ndarray, top: np.ndarray, bottom: np.ndarray, rule: str = "mean") -> float:
    """Over every (top, bottom) pair of embeddings, how often the top one lies
    nearer the references; ties count half. `rule`: "mean", the mean cosine
    similarity to the references; "nearest", to the most similar one (a unit's
    diverse pictures show different faces: a top photo need match one)."""
    pool = np.mean if rule == "mean" else np.max
    near_top = pool(top @ references.T, axis=1)  # (n_top,)
    near_bottom = pool(bottom @ references.T, axis=1)
    wins = near_top[:, None] > near_bottom[None, :]
    ties = near_top[:, None] == near_bottom[None, :]
    return float((wins + 0.5 * ties).mean())
