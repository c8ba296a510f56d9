"""`make quality-sweep`: picture quality against seconds per filter, for the
settings that matter, on any network.

Around the default method (see methods.py), one setting is changed at a
time: steps, the redirected ReLU gradient, the mean colour's gain, the
spectrum's decay, canvas (128 px warped up to the input, as Lucent does),
coarse to fine (the first 64 steps at half the input's size, or on a random
half-size part of it),
Lucid's full transform stack, learning rate and schedule, and the objective
after the nonlinearity. Each variant is scored as `make quality` scores
(see scores.py) on a sample of layers, and the table of score against
seconds per filter is printed and written to sweep.json. Time it on an
otherwise idle machine: its seconds are what the table compares.
"""

from __future__ import annotations

import json
import statistics
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .optvis.methods import LUCID_TRANSFORMS, METHODS
from .optvis.optimizers import Adam
from .quality import parser as quality_parser, quality_settings, score


def variants() -> dict:
    """Name -> method: the default, and the default with one setting changed."""
    base = replace(METHODS["fourier"], name="base")
    param = base.param
    return {
        "steps64": replace(base, steps=64),
        "steps96": replace(base, steps=96),
        "base": base,  # the default: 128 steps
        "steps256": replace(base, steps=256),
        "steps512": replace(base, steps=512),
        "no-redirect": replace(base, redirect_steps=0),
        "dc-gain1": replace(base, param=replace(param, dc_gain=1.0)),
        "dc-gain8": replace(base, param=replace(param, dc_gain=8.0)),
        "decay1.0": replace(base, param=replace(param, decay_power=1.0)),
        "decay1.5": replace(base, param=replace(param, decay_power=1.5)),
        "canvas128": replace(base, canvas=128),
        "coarse-half-64": replace(base, coarse_size=0.5, coarse_steps=64),
        "crop-half-64": replace(base, coarse_size=0.5, coarse_steps=64, coarse_crop=True),
        "lucid-stack": replace(base, transform=LUCID_TRANSFORMS),
        "lr0.02": replace(base, optimizer=Adam(lr=0.02)),
        "lr0.1": replace(base, optimizer=Adam(lr=0.1)),
        "cosine0.1": replace(base, optimizer=Adam(lr=0.1, schedule="cosine")),
        "post-activation": replace(base, pre_activation=False),
    }


def as_methods(configs: dict) -> dict:
    """The variants as methods named `sweep-NAME`."""
    return {f"sweep-{name}": replace(method, name=f"sweep-{name}", summary=f"sweep variant {name}")
            for name, method in configs.items()}


@contextmanager
def registered(methods: dict):
    """The methods buildable by name while the sweep runs, and gone after it,
    so that nobody else in the process sees them."""
    clashes = set(methods) & set(METHODS)
    if clashes:
        raise ValueError(f"methods already defined: {', '.join(sorted(clashes))}")
    METHODS.update(methods)
    try:
        yield list(methods)
    finally:
        for name in methods:
            METHODS.pop(name, None)


def chosen_variants(names: str | None) -> dict:
    """The variants named in `names` (comma-separated), or all of them."""
    every = variants()
    if not names:
        return every
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in every]
    if unknown:
        raise SystemExit(f"sweep: unknown variant {unknown[0]!r}; choose from: {', '.join(every)}")
    return {n: every[n] for n in wanted}


def table(report: dict, deep_from: int) -> list[dict]:
    """One row per method: median score over all sampled pictures and over
    the deeper layers, high-frequency fraction, seconds per filter."""
    layers = list(report["layers"].values())
    deep = layers[deep_from:] or layers
    rows = []
    for m, summary in report["summary"].items():
        rows.append({
            "method": m,
            "median_score": statistics.median(s for row in layers for s in row[m]["score"]),
            "median_score_deep": statistics.median(s for row in deep for s in row[m]["score"]),
            "min_layer_median": min(row[m]["median_score"] for row in layers),
            "median_high_freq": summary["median_high_freq"],
            "seconds_per_filter": summary["seconds_per_filter"],
        })
    return rows


def steady_seconds(args, names: list[str], layer: str, filters: int = 8) -> dict[str, float]:
    """Seconds per filter of each method once compiled, on one layer and a batch
    of `filters` (a full atlas amortizes compilation; a 4-filter sample does not)."""
    import time

    from .description import open_network
    from .cache import Cache
    from .optvis.engine import LayerEngine
    from .imaging import filter_seed
    from .precision import auto_precision

    cache = Cache(Path(args.cache_dir))
    net = open_network(quality_settings(args), cache)
    keras_model, precision = net.load(), auto_precision(net, cache)  # as the scored builds chose it
    seconds = {}
    for name in names:
        engine = LayerEngine(keras_model, layer, precision, METHODS[name], net.preprocess,
                             fold=net.fold(layer), unit=net.unit(layer))
        indices = list(range(min(filters, engine.num_filters)))
        starts = engine.start([filter_seed(args.seed, layer, i) for i in indices])
        engine.run(starts, indices, 1, args.seed)  # trace and compile outside the timing
        began = time.perf_counter()
        engine.run(starts, indices, None, args.seed)
        seconds[name] = (time.perf_counter() - began) / len(indices)
    return seconds


def main(argv=None) -> int:
    p = quality_parser()
    p.prog = "python -m generator.sweep"
    p.description = __doc__.splitlines()[0]
    p.add_argument("--deep-from", type=int, default=3, help="sampled layers from this index on count as deep")
    p.add_argument("--time-layer", default=None, help="the layer steady-state seconds are timed on "
                   "(default: the middle sampled layer)")
    p.add_argument("--variants", default=None, help="the variants to run, comma-separated (default: all)")
    # the sweep compares methods' channel pictures; the views are make quality's
    p.set_defaults(out="sweep.json", sheet="sweep-sheet.png", per_layer=4, views="none",
                   layers="conv_pw_1,conv_pw_3,conv_pw_5,conv_pw_7,conv_pw_9,conv_pw_11,conv_pw_13")
    args = p.parse_args(argv)
    with registered(as_methods(chosen_variants(args.variants))) as names:
        args.methods = ",".join(["fourier", *names])
        report = score(args)
        rows = table(report, args.deep_from)
        layers = list(report["layers"])
        time_layer = args.time_layer or layers[len(layers) // 2]
        steady = steady_seconds(args, [row["method"] for row in rows], time_layer)
    for row in rows:
        row["steady_seconds_per_filter"] = steady[row["method"]]
    report["steady_timing_layer"] = time_layer
    report["table"] = rows
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"\n{'method':24s} {'score':>7s} {'deep':>7s} {'worst layer':>11s} {'high-freq':>9s} {'s/filter':>9s}"
          f" {'steady s/filter':>15s}")
    for r in rows:
        per = f"{r['seconds_per_filter']:9.2f}" if r["seconds_per_filter"] else "   cached"
        print(f"{r['method']:24s} {r['median_score']:7.2f} {r['median_score_deep']:7.2f} "
              f"{r['min_layer_median']:11.2f} {r['median_high_freq']:9.3f} {per} "
              f"{r['steady_seconds_per_filter']:15.3f}")
    print(f"(steady: compiled, 8 filters at once, on {time_layer})")
    print(f"({report['model']}, {report['weights']}; wrote {args.out} and {args.sheet})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
