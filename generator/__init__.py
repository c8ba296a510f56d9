"""Filter Atlas: a static website of what every filter of a CNN responds to."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) drowns a user's
# output; keep only fatal ones, unless the user asked otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from importlib import metadata

try:
    __version__ = metadata.version("filter-atlas")  # the installed package's own
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
