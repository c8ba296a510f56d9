"""python scripts/time_views.py [--layers L1,L2] [--methods M1,M2] [--views unit] [--rounds N]
                                [--compare sweep-steps64,...] [--precision auto|bfloat16,float32]
                                [--batchnorm folded|kept|folded,kept]

Steady seconds per filter of each (method, view) on each layer (compiled; 8
filters in one batch), side by side in one process, the order turned each
round; wall-clock and the process's CPU seconds. --compare adds the channel
view of other methods, `make quality-sweep`'s variants included. The real MobileNet in
../shared/models, in the precision a build's `auto` would take on this
machine (timed here, not read from a cache), or in each of a list of them; its BatchNorms
folded as a build runs them, or kept (as builds ran them before), or both. Prints, per method, each
view's seconds per filter summed over the layers, and --views unit against
the channel view."""

import argparse
import resource
import statistics
import time
from pathlib import Path

from generator.imaging import filter_seed
from generator.networks import folds_batchnorm, load_model
from generator.optvis.engine import LayerEngine
from generator.optvis.methods import METHODS
from generator.optvis.views import make_view, parse_views
from generator.precision import model_precision
from generator.sweep import as_methods, variants

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
    p.add_argument("--precision", default="auto", help="auto, or formats to time side by side: bfloat16,float32")
    p.add_argument("--batchnorm", default="folded", help="folded (as a build), kept, or both: folded,kept")
    args = p.parse_args()
    if set(args.batchnorm.split(",")) - {"folded", "kept"}:
        p.error(f"--batchnorm takes folded, kept or both, not {args.batchnorm!r}")
    methods = {**METHODS, **as_methods(variants())}  # the sweep's variants by name too
    model = load_model(MODEL, Path(MODEL))
    precisions = args.precision.split(",")
    if precisions == ["auto"]:
        precisions = [model_precision(model)]
    # a run's "precision" is its format, and "+kept" where its BatchNorms are not folded
    formats = [p + ("" if b == "folded" else "+kept") for p in precisions for b in args.batchnorm.split(",")]
    foldable = folds_batchnorm(model)
    plan = [(m, v, p) for p in formats for m in args.methods.split(",") for v in parse_views(args.views)]
    plan += [(m, "channel", p) for p in formats for m in args.compare.split(",") if m]
    indices = list(range(args.filters))
    runs = {}  # (method, view, precision, layer) -> (engine, starts)
    for method, view, precision in plan:
        for layer in args.layers.split(","):
            shown = make_view(view)
            engine = LayerEngine(model, layer, precision.split("+")[0], shown.render_method(methods[method]), "tf",
                                 shown.objective, fold=foldable and not precision.endswith("+kept"))
            starts = engine.start([filter_seed(0, layer, i, m) for i in indices for m in range(engine.group)])
            engine.run(starts, indices, 1)  # trace and compile outside the timing
            runs[method, view, precision, layer] = engine, starts
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
            print(rnd, *key, f"wall {wall[key][-1]:.3f} cpu {cpu[key][-1]:.3f} s/filter", flush=True)
    print(f"\nmedians over {args.rounds} round(s), {args.filters} filters at once:")
    layers = args.layers.split(",")
    for method, precision in dict.fromkeys((m, p) for m, _, p in plan):
        totals = {}
        for view in [v for m, v, p in plan if (m, p) == (method, precision)]:
            key = method, view, precision
            w = sum(statistics.median(wall[(*key, layer)]) for layer in layers)
            c = sum(statistics.median(cpu[(*key, layer)]) for layer in layers)
            totals[view] = w
            per_layer = " ".join(f"{layer} {statistics.median(wall[(*key, layer)]):.2f}" for layer in layers)
            print(f"{method:12s} {precision:13s} {view:10s} wall {w:7.2f} s/filter summed over the layers "
                  f"({per_layer}); cpu {c:7.2f}")
        if "channel" in totals and len(totals) > 1:
            unit = sum(totals.values())
            print(f"{method:12s} {precision:13s} the views together: {unit:.2f} s/filter, "
                  f"{unit / totals['channel']:.2f}x the channel")


if __name__ == "__main__":
    main()
