"""Import TensorFlow without its C++ start-up chatter.

TensorFlow's native libraries log oneDNN and CUDA probing to stderr before
TF_CPP_MIN_LOG_LEVEL is consulted. We hold stderr aside during the import
and replay it only if the import fails, so real problems stay visible.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_keras():
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401  (keras needs it loaded first)
            import keras
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    tensorflow.get_logger().setLevel("ERROR")  # e.g. retracing notes, one per layer
    return keras
