"""Where one layer's build spends its time, from oneDNN's own timing of each primitive.

Usage: ONEDNN_VERBOSE=profile_exec python scripts/profile_layer.py WEIGHTS LAYER [PRECISION] [ITERS] > log
       python scripts/profile_layer.py --summarize log WALL_SECONDS
"""

import collections
import sys
import time


def run(weights, layer, precision="bfloat16", iters=10):
    from generator.optvis.engine import LayerEngine
    from generator.imaging import filter_seed
    from generator.networks import load_model

    net = load_model("vgg16", weights)
    engine = LayerEngine(net, layer, precision)
    filters = list(range(engine.batch_size))
    starts = engine.start([filter_seed(0, layer, f) for f in filters])
    engine.run(starts, filters, 1)  # compile
    print("=== timed run ===", flush=True)  # oneDNN logs to stdout too
    start = time.perf_counter()
    engine.run(starts, filters, int(iters))
    print(f"wall {time.perf_counter() - start:.3f} s for {len(filters)} filters x {iters} steps", flush=True)


def summarize(log, wall):
    totals = collections.Counter()
    timed = False
    for line in open(log):
        if line.startswith("=== timed run"):
            timed = True
        if not timed or not line.startswith("onednn_verbose") or ",exec," not in line:
            continue
        fields = line.strip().split(",")
        kind, impl, prop = fields[5], fields[6], fields[7]
        totals[f"{kind} {prop} ({impl})"] += float(fields[-1])
    total = sum(totals.values()) / 1000
    for name, ms in totals.most_common(12):
        print(f"{ms / 1000:8.3f} s  {100 * ms / 1000 / wall:5.1f}%  {name}")
    print(f"{total:8.3f} s  {100 * total / wall:5.1f}%  all oneDNN primitives")
    print(f"{wall - total:8.3f} s  {100 * (wall - total) / wall:5.1f}%  everything else (TensorFlow ops, Python)")


if __name__ == "__main__":
    if sys.argv[1] == "--summarize":
        summarize(sys.argv[2], float(sys.argv[3]))
    else:
        run(*sys.argv[1:])
