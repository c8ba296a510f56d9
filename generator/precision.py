"""`--precision auto`: the number format a network's pictures are computed in
on this machine.

bfloat16 is only worth it where the hardware computes it natively (AVX512-BF16
or AMX CPUs, Ampere or newer GPUs), and even there not for every network. On
an AMX Xeon one step (forward to the unit, gradient back to the input, 8
pictures) ran 2.6-2.9 times faster in bfloat16 on VGG16's dense 3x3
convolutions and 1.6 times on GoogLeNet's, but 1.8 times *slower* on
MobileNet's depthwise and thin 1x1 convolutions, which are bound by memory
and casts, not arithmetic (a whole picture's step, with its Fourier image,
warp and Adam in float32 either way, 16-26% slower). So where bfloat16 is
native, `auto` times both formats once, on the network up to its last conv
layer, and remembers the faster in the cache: later builds of the same
network on the same kind of machine read it back, so their keys stay put.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

from .cache import Cache, atomic_write
from .optvis import engine

# Below this many FLOPs in a forward pass the choice saves less than timing it
# costs: such a network keeps the hardware's choice.
MEASURE_FROM_FLOPS = 50e6
BATCH = 4  # pictures per timed step; builds batch more, which favours neither format here
ROUNDS = 3


def machine() -> dict:
    """What a timed choice holds for: the processor and its bfloat16 support, the
    cores this process may use, the GPUs it sees, the TensorFlow that was timed."""
    cpu, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu is None:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    gpus = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        model = [line for line in info.read_text(errors="replace").splitlines() if line.startswith("Model:")]
        gpus.append(model[0].split(":", 1)[1].strip() if model else info.parent.name)
    return {
        "cpu": cpu or platform.processor(),
        "bfloat16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpus": gpus,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "tensorflow": tensorflow_version(),
    }


def tensorflow_version() -> str:
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def choice_path(cache: Cache, net, this_machine: dict) -> Path:
    shape = "x".join(map(str, net.description["input_shape"]))
    digest = hashlib.sha256(json.dumps(this_machine, sort_keys=True).encode()).hexdigest()[:12]
    return cache.root / "precision" / f"{net.sha256[:24]}-{shape}-{digest}.json"


def auto_precision(net, cache: Cache, report=lambda message: None) -> str:
    """float32 or bfloat16 for this network on this machine, timed once and
    remembered in the cache (see the module's text)."""
    flops = net.description["flops"]
    untimed = untimed_choice(flops)
    if untimed:
        return untimed  # nothing to time, nothing written
    this_machine = machine()
    path = choice_path(cache, net, this_machine)
    stored = read_choice(path)
    if stored:
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # builds sharing the cache time it once, not under each other's load
        stored = read_choice(path)
        if stored:
            return stored
        chosen, timed = faster_format(net.load(), flops, tuple(net.description["input_shape"]), report)
        if timed:
            atomic_write(path, json.dumps({"precision": chosen, **timed, "machine": this_machine,
                                           "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
    return chosen


def model_precision(keras_model, report=print) -> str:
    """What a build's `auto` would take for this model, timed now and not stored
    (for `make bench` and the timing scripts)."""
    from .networks import forward_flops, input_shape

    flops = forward_flops(keras_model)
    return untimed_choice(flops) or faster_format(keras_model, flops, tuple(input_shape(keras_model)), report)[0]


def read_choice(path: Path) -> str | None:
    """The stored choice; None when there is none or the file is not one (it is timed again)."""
    try:
        chosen = json.loads(path.read_text()).get("precision")
    except (OSError, ValueError, AttributeError):
        return None
    return chosen if chosen in engine.PRECISIONS else None


def untimed_choice(flops: dict[str, float]) -> str | None:
    """The hardware's choice where there is nothing to time (bfloat16 not native,
    or the network too small); None where the formats must be timed."""
    native = engine.default_precision()
    if native == "float32" or max(flops.values(), default=0.0) < MEASURE_FROM_FLOPS:
        return native
    return None


def faster_format(keras_model, flops: dict[str, float], input_shape: tuple,
                  report=lambda message: None) -> tuple[str, dict]:
    """The faster format as timed now on the network up to its last conv layer,
    with what was timed; bfloat16 (native here) and {} when the timing failed."""
    last = list(flops)[-1]
    report(f"precision: timing float32 against bfloat16 up to {last} (once for this network and machine)")
    try:
        ms = step_milliseconds(keras_model, last, input_shape)
    except Exception as error:  # a format this network cannot run in, memory: keep the hardware's choice
        report(f"precision: bfloat16, the hardware's choice (timing failed: {str(error).splitlines()[0][:200]})")
        return "bfloat16", {}
    chosen = min(ms, key=ms.get)
    report(f"precision: {chosen} ({', '.join(f'{p} {t:.1f}' for p, t in ms.items())} ms per picture and step)")
    return chosen, {"layer": last, "ms_per_picture_step": ms}


def step_milliseconds(keras_model, layer: str, input_shape: tuple) -> dict[str, float]:
    """Per format, the median time of one step's work (forward to the unit, gradient
    back to the input) per picture, the formats timed in turn in one process."""
    from .networks import fold_batchnorm, folds_batchnorm, unit_model
    from .tf_quiet import import_keras

    import_keras()
    import tensorflow as tf

    images = tf.random.stateless_uniform((BATCH, *input_shape), seed=(0, 0))
    fold = folds_batchnorm(keras_model)  # as a build runs the network

    def as_built(policy):
        unit = unit_model(keras_model, layer, policy)
        return fold_batchnorm(unit) if fold else unit

    steps = {p: gradient_step(as_built(policy)) for p, policy in (("float32", None), ("bfloat16", "mixed_bfloat16"))}
    for step in steps.values():
        step(images)  # trace and compile outside the timing
    times = {p: [] for p in steps}
    for _ in range(ROUNDS):
        for p, step in steps.items():
            began = time.perf_counter()
            step(images).numpy()
            times[p].append((time.perf_counter() - began) * 1000 / BATCH)
    return {p: statistics.median(t) for p, t in times.items()}


def gradient_step(submodel):
    import tensorflow as tf

    @tf.function
    def step(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            pre = tf.cast(submodel(images)[0], tf.float32)
            loss = tf.reduce_sum(tf.reduce_mean(pre, axis=[1, 2]))
        return tape.gradient(loss, images)

    return step
