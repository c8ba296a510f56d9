"""Ctrl-C and SIGTERM stop a build, even where a library swallows the exception.

The handler raises KeyboardInterrupt where Python happens to be, and that can
be inside TensorFlow's C++ calling back into Python (a tf.nest attribute
probe, a finalizer), which may clear or wrap it. So the request is also
remembered, and long loops call `check()` between batches: the interrupt then
lands at the next batch at the latest, after that batch is cached.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

_requested = False


@contextmanager
def stop_on_signals():
    """Stop on SIGINT and SIGTERM, even where the parent left SIGINT ignored
    (as shells do for background jobs): `kill -INT` is asked for explicitly.
    The handlers before are back afterwards, and the request forgotten."""
    global _requested
    _requested = False
    before = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        _requested = False


def request_stop(signum, frame):
    global _requested
    _requested = True
    raise KeyboardInterrupt


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise the user's interrupt here if one came and was lost on its way."""
    if _requested:
        raise KeyboardInterrupt
