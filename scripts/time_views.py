"""python scripts/time_views.py [--layers L1,L2] [--methods M1,M2] [--views unit] [--rounds N]
                                [--compare sweep-steps64,...]

Steady seconds per filter of each (method, view) on each layer (compiled; 8
filters in one batch), side by side in one process, the order turned each
round; wall-clock and the process's CPU seconds. --compare adds the channel
view of other methods, `make quality-sweep`'s variants included. The real MobileNet in
../shared/models, the machine's auto precision. Prints, per method, each
view's seconds per filter summed over the layers, and --views unit against
the channel view."""

import argparse
import resource
import statistics
import time
from pathlib import Path

from generator.imaging import filter_seed
from generator.networks import load_model
from generator.optvis.engine import LayerEngine, default_precision
from generator.optvis.methods import METHODS
from generator.optvis.views import make_view, parse_views
from generator.sweep import register, variants

REPO = Path(__file__).resolve().parent.parent
MODEL = str(REPO.parent / "shared" / "models" / "mobilenet_v1_0.75_224_imagenet.keras")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", default="conv_pw_4,conv_pw_8,conv_pw_12")
    p.add_argument("--methods", default="fourier")
    p.add_argument("--views", default="unit")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--filters", type=int, default=8)
    p.add_argument("--compare", default="", help="methods whose channel view is timed too")
    args = p.parse_args()
    register(variants())
    plan = [(m, v) for m in args.methods.split(",") for v in parse_views(args.views)]
    plan += [(m, "channel") for m in args.compare.split(",") if m]
    model = load_model(MODEL, Path(MODEL))
    precision = default_precision()
    indices = list(range(args.filters))
    runs = {}  # (method, view, layer) -> (engine, starts)
    for method, view in plan:
        for layer in args.layers.split(","):
            shown = make_view(view)
            engine = LayerEngine(model, layer, precision, shown.render_method(METHODS[method]), "tf",
                                 shown.objective)
            starts = engine.start([filter_seed(0, layer, i, m) for i in indices for m in range(engine.group)])
            engine.run(starts, indices, 1)  # trace and compile outside the timing
            runs[method, view, layer] = engine, starts
    wall, cpu = {}, {}
    order = list(runs)
    for rnd in range(args.rounds):
        shift = rnd * len(order) // max(args.rounds, 1)
        for key in order[shift:] + order[:shift]:
            engine, starts = runs[key]
            began, began_cpu = time.perf_counter(), cpu_seconds()
            engine.run(starts, indices)
            wall.setdefault(key, []).append((time.perf_counter() - began) / len(indices))
            cpu.setdefault(key, []).append((cpu_seconds() - began_cpu) / len(indices))
            print(rnd, *key, f"wall {wall[key][-1]:.3f} cpu {cpu[key][-1]:.3f} s/filter", precision, flush=True)
    print(f"\nmedians over {args.rounds} round(s), {precision}, {args.filters} filters at once:")
    for method in dict.fromkeys(m for m, _ in plan):
        totals = {}
        for view in [v for m, v in plan if m == method]:
            w = sum(statistics.median(wall[method, view, layer]) for layer in args.layers.split(","))
            c = sum(statistics.median(cpu[method, view, layer]) for layer in args.layers.split(","))
            totals[view] = w
            per_layer = " ".join(f"{layer} {statistics.median(wall[method, view, layer]):.2f}"
                                 for layer in args.layers.split(","))
            print(f"{method:12s} {view:10s} wall {w:7.2f} s/filter summed over the layers ({per_layer}); cpu {c:7.2f}")
        if "channel" in totals and len(totals) > 1:
            unit = sum(totals.values())
            print(f"{method:12s} the views together: {unit:.2f} s/filter, {unit / totals['channel']:.2f}x the channel")


if __name__ == "__main__":
    main()
