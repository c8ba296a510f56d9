"""Does the atlas's network compute what onnxruntime computes from the same file?

    .venv/bin/python scripts/onnx_check.py MODEL.onnx [PHOTOS_FOLDER] [--max-images N]

Converts the file as a build does (timed), runs both on the photos (resized,
centre-cropped, torchvision's normalization) and prints the largest
difference of the outputs, relative to their largest value, and how often
the top class agrees. Needs onnxruntime (in the test extra).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("photos", type=Path, nargs="?", default=Path("../shared/imagenet-samples"))
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    import onnxruntime

    from generator.networks import network_input
    from generator.networks.from_onnx import convert
    from generator.photos import find_photos, load_photo

    start = time.perf_counter()
    keras_model = convert(args.model)
    seconds = time.perf_counter() - start
    session = onnxruntime.InferenceSession(str(args.model))
    input_name = session.get_inputs()[0].name
    size = tuple(keras_model.input_shape[1:3])
    photos = find_photos(args.photos)[: args.max_images or None]
    largest, scale, agree = 0.0, 0.0, 0
    for i in range(0, len(photos), args.batch):
        x = np.asarray(network_input(np.stack([load_photo(p, size) for p in photos[i:i + args.batch]]), "torch"))
        ours = np.asarray(keras_model(x))
        theirs = session.run(None, {input_name: x.transpose(0, 3, 1, 2)})[0]
        largest = max(largest, float(np.abs(ours - theirs).max()))
        scale = max(scale, float(np.abs(theirs).max()))
        agree += int((ours.reshape(len(x), -1).argmax(1) == theirs.reshape(len(x), -1).argmax(1)).sum())
    print(f"{args.model.name}: converted in {seconds:.1f} s; on {len(photos)} photos the largest |difference| "
          f"is {largest:.2e} of outputs up to {scale:.1f} ({largest / scale:.1e} relative); "
          f"top-1 the same on {agree}/{len(photos)}")


if __name__ == "__main__":
    main()
