"""`--precision auto`: the number format a network's pictures are computed in
on this machine.

bfloat16 is only worth it where the hardware computes it natively (AVX512-BF16
or AMX CPUs, Ampere or newer GPUs), and even there not for every network: on
an AMX Xeon VGG16's dense 3x3 convolutions ran 2.6-2.9 times faster in
bfloat16, GoogLeNet's 1.6 times, but MobileNet's depthwise and thin 1x1
convolutions 1.8 times *slower* (bound by memory and casts, not arithmetic).
So where bfloat16 is native, `auto` times both formats once, on the model
truncated at its costliest conv layer, and remembers the faster one in the
cache: later builds of the same network on the same kind of machine read it
back and so keep their cache keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

from .cache import Cache, atomic_write

# Below this many FLOPs in a forward pass to the costliest layer the choice
# saves less than timing it costs: such a network keeps the hardware's choice.
MEASURE_FROM_FLOPS = 50e6
BATCH = 4
ROUNDS = 3


def machine_id() -> str:
    """What a measured choice holds for: the processor, its core count, the GPUs
    and the TensorFlow version (whose kernels were timed)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = sorted(os.listdir("/proc/driver/nvidia/gpus")) if Path("/proc/driver/nvidia/gpus").is_dir() else []
    try:
        tf_version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        tf_version = "?"
    text = json.dumps([cpu, os.cpu_count(), gpus, tf_version])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def choice_path(cache: Cache, net) -> Path:
    shape = "x".join(map(str, net.description["input_shape"]))
    return cache.root / "precision" / f"{net.sha256[:24]}-{shape}-{machine_id()}.json"


def auto_precision(net, cache: Cache, report=lambda message: None) -> str:
    """float32 or bfloat16 for this network on this machine, timed once and
    remembered in the cache (see the module's text)."""
    path = choice_path(cache, net)
    try:
        return json.loads(path.read_text())["precision"]
    except (FileNotFoundError, ValueError, KeyError):
        pass
    chosen, timed = choose(net.load, net.description["flops"], tuple(net.description["input_shape"]), report)
    if timed:
        atomic_write(path, json.dumps({"precision": chosen, **timed,
                                       "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
    return chosen


def choose(load_model, flops: dict[str, float], input_shape: tuple, report=lambda message: None) -> tuple[str, dict]:
    """The hardware's choice, or where bfloat16 is native and the network big
    enough, the faster format as timed now; with what was timed (or {})."""
    from .optvis.engine import default_precision

    native = default_precision()
    if native == "float32" or max(flops.values(), default=0.0) < MEASURE_FROM_FLOPS:
        return native, {}
    layer = max(flops, key=flops.get)
    report(f"precision: timing float32 against bfloat16 on {layer} (once for this network and machine)")
    ms = step_milliseconds(load_model(), layer, input_shape)
    chosen = min(ms, key=ms.get)
    report(f"precision: {chosen} ({', '.join(f'{p} {t:.1f}' for p, t in ms.items())} ms per picture and step)")
    return chosen, {"layer": layer, "ms_per_picture_step": ms}


def step_milliseconds(keras_model, layer: str, input_shape: tuple) -> dict[str, float]:
    """Per format, the median time of one step's work (forward to the unit, gradient
    back to the input) per picture, the formats timed in turn in one process."""
    from .networks import unit_model
    from .tf_quiet import import_keras

    import_keras()
    import tensorflow as tf

    images = tf.random.stateless_uniform((BATCH, *input_shape), seed=(0, 0))
    steps = {p: gradient_step(unit_model(keras_model, layer, policy))
             for p, policy in (("float32", None), ("bfloat16", "mixed_bfloat16"))}
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
