"""Do a unit's listed inputs matter on photos? On the real MobileNet in
../shared/models/, for 48 units (4 drawn with a fixed seed from each of
conv_pw_2 ... conv_pw_13), the 6 excitatory inputs the unit page lists
(units of the pointwise layer before, through the depthwise conv) against
every input unit, by gradient x activation over the unit's 20 top photos.

A unit's top photos: the highest peaks of its output (before its ReLU) over
the photos (default ../shared/imagenet-samples/). In each, the unit's output at
its peak is differentiated through the real network (ReLUs in) with respect to
the input layer's units after their ReLU6; an input unit's attribution is the
sum over positions of gradient x activation, averaged over the 20 photos. A
unit passes when its listed inputs' mean attribution exceeds the median input
unit's.

    python scripts/circuits_photos.py [--photos DIR] [--cache-dir DIR]

Prints a line per unit and a JSON summary: units, passed, share, and the
share of a layer's input units a listed input is above, on average.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from generator.cache import Cache
from generator.circuits import network_circuits
from generator.description import open_network
from generator.networks import network_input
from generator.photos import find_photos, load_photo
from generator.settings import Settings

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
MODEL = SHARED / "models" / "mobilenet_v1_0.75_224_imagenet.keras"
LAYERS = [f"conv_pw_{k}" for k in range(2, 14)]
PER_LAYER, TOP_PHOTOS = 4, 20


def peaks(model, layers, images):
    """Per layer, each photo's per-filter peak of the unit output (before the ReLU) and where it is."""
    import keras

    features = keras.Model(model.input, [model.get_layer(f"{name}_bn").output for name in layers])
    found = {name: ([], []) for name in layers}
    for start in range(0, len(images), 50):
        for name, out in zip(layers, features.predict(images[start:start + 50], verbose=0)):
            flat = out.reshape(len(out), -1, out.shape[-1])
            found[name][0].append(flat.max(1))
            found[name][1].append(flat.argmax(1))
    return {name: (np.concatenate(v), np.concatenate(i)) for name, (v, i) in found.items()}


def attribution(model, source: str, layer: str, channel: int, images, positions) -> np.ndarray:
    """Per input unit of `source`: gradient x activation of `layer`'s unit at `positions`, averaged over `images`."""
    import keras
    import tensorflow as tf

    names = [layer.name for layer in model.layers]
    chain = [model.get_layer(n) for n in names[names.index(f"{source}_relu") + 1:names.index(f"{layer}_bn") + 1]]
    inputs = tf.convert_to_tensor(keras.Model(model.input, model.get_layer(f"{source}_relu").output)
                                  .predict(images, verbose=0))
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        x = inputs
        for step in chain:
            x = step(x, training=False) if isinstance(step, keras.layers.BatchNormalization) else step(x)
        flat = tf.reshape(x[..., channel], (len(images), -1))
        picked = tf.reduce_sum(tf.gather(flat, positions, axis=1, batch_dims=1))
    gradient = tape.gradient(picked, inputs)
    return (gradient * inputs).numpy().sum(axis=(1, 2)).mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=SHARED / "imagenet-samples")
    parser.add_argument("--cache-dir", type=Path, help="a cache to keep the circuits in (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache(args.cache_dir or Path(folder))
        net = open_network(Settings(model=str(MODEL)), cache)
        model = net.load()
        rng = np.random.default_rng(0)
        sample = {name: sorted(rng.choice(model.get_layer(name).filters, PER_LAYER, replace=False).tolist())
                  for name in LAYERS}
        found, _ = network_circuits(net, cache, sample)
    images = network_input(np.stack([load_photo(p, (224, 224)) for p in find_photos(args.photos)]), "tf").numpy()
    peak = peaks(model, LAYERS, images)
    rows, ranks = [], []
    for layer, channels in sample.items():
        source = f"conv_pw_{int(layer.split('_')[-1]) - 1}"
        for c in channels:
            values, where = peak[layer][0][:, c], peak[layer][1][:, c]
            top = np.argsort(-values, kind="stable")[:TOP_PHOTOS]
            scores = attribution(model, source, layer, c, images[top], where[top])
            listed = [e["filter"] for e in found[(layer, c)]["inputs"] if e["sign"] == "excitatory"]
            assert all(e["layer"] == source for e in found[(layer, c)]["inputs"])
            mean, median = float(scores[listed].mean()), float(np.median(scores))
            rows.append(mean > median)
            ranks.append(float(np.mean([(scores < scores[i]).mean() for i in listed])))  # share of inputs below
            print(f"{layer} {c}: listed inputs {mean:.4g}, median input {median:.4g}: {'pass' if mean > median else 'FAIL'}",
                  flush=True)
    print(json.dumps({"units": len(rows), "passed": int(sum(rows)), "share": round(sum(rows) / len(rows), 3),
                      "listed_inputs_above": round(float(np.mean(ranks)), 3)}))


if __name__ == "__main__":
    main()
