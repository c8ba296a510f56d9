"""The unit page's views, timed for `make bench`: each view of the default method
(channel, neuron, negative, diversity) on the sampled layers, one build batch at
once: seconds per picture, the FLOPs its steps perform (a windowed view's steps
count the share of the input they run on, coarse steps the share of the size they
run at), their fraction of the conv peak, and the full atlas's seconds for the
default views and for `--views unit`. Also the step FLOPs and the few helpers
bench.py shares with it (bench.py imports this module, never the reverse).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .description import describe
from .optvis.methods import DEFAULT_METHOD, METHODS
from .optvis.views import DEFAULT_VIEWS, SEEDED_VIEWS, VIEW_NAMES, make_view, parse_views
from .imaging import filter_seed
from .errors import AtlasError
from .networks import ConvLayer, folds_batchnorm


def conv_flops_per_step(submodel) -> float:
    """FLOPs of one ascent step: the forward pass plus the gradient with respect
    to the input, which costs a convolution of the same size per layer. Each
    kernel weight is one multiply-add per output position (depthwise and
    separable kernels included)."""
    from .networks.units import conv_kind

    forward = 0.0
    for layer in submodel.layers:
        if conv_kind(layer):
            _, h, w, _ = layer.output.shape
            kernels = sum(int(np.prod(v.shape)) for v in layer.weights if len(v.shape) == 4)
            forward += 2.0 * h * w * kernels
    return 2.0 * forward


def described_layers(net) -> list[ConvLayer]:
    return [ConvLayer(**layer) for layer in describe(net)["layers"]]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def preprocess_mode(net, model: str) -> str:
    """The network's preprocessing: a built-in network's own, else guessed from the model file."""
    from .networks import builtin_spec, guess_preprocess, is_model_file, is_onnx_file

    if is_onnx_file(model):
        return "torch"
    return guess_preprocess(net)[0] if is_model_file(model) else builtin_spec(model).preprocess


def time_views(net, layers, precision, args) -> list[dict]:
    """Each view of the default method on the sampled layers, `--filters` filters at once."""
    from .optvis.engine import LayerEngine

    if not args.views:
        return []
    method = METHODS[DEFAULT_METHOD].with_steps(args.view_steps)
    preprocess = preprocess_mode(net, args.model)
    rows = []
    for layer in layers:
        for name in args.views:
            shown = make_view(name)
            engine = LayerEngine(net, layer.name, precision, shown.render_method(method), preprocess, shown.objective,
                                 fold=folds_batchnorm(net))
            # at most one build batch (a group's pictures count against it, as in build)
            filters = list(range(min(args.filters, layer.filters, max(1, engine.batch_size // engine.group))))
            rows.append(time_view(engine, layer, name, filters, args.seed))
            print(f"{layer.name} {name}: {rows[-1]['s_per_picture']:.3f} s/picture", flush=True)
    return rows


def time_view(engine, layer, view: str, filters, seed) -> dict:
    """One view's pictures for `filters`, compiled first: seconds, FLOPs and their rate."""
    starts = engine.start([filter_seed(seed, layer.name, f, member) for f in filters for member in range(engine.group)])
    engine.run(starts, filters, 1, seed)  # trace and compile outside the timing
    s_per_filter = timed(lambda: engine.run(starts, filters, seed=seed)) / len(filters)
    share = area_share(engine.window, engine.input_shape[:2])
    steps = render_steps(engine)
    gflop = conv_flops_per_step(engine.submodel) * share * steps / 1e9
    return {
        "view": view, "layer": layer.name, "block": layer.block, "filters": len(filters),
        "group": engine.group, "steps": engine.method.steps, "render_steps": steps, "area_share": share,
        "s_per_filter": s_per_filter, "s_per_picture": s_per_filter / engine.group,
        "gflop_per_picture": gflop, "gflops": gflop * engine.group / s_per_filter,
    }


def area_share(window, input_size) -> float:
    """The share of the input's area a view's steps run on: its window's (the
    neuron's receptive field), else all of it. A conv net's FLOPs scale with
    its input's area (every feature map does), so a step on a part of the
    input costs that part's share of a step on the whole."""
    if window is None:
        return 1.0
    rows, cols = window
    return (rows.stop - rows.start) * (cols.stop - cols.start) / (input_size[0] * input_size[1])


def render_steps(engine) -> float:
    """The engine's steps counted at the size it renders at: a step of a stage
    at a smaller size (coarse steps) counts as its share of that area."""
    height, width = engine.render_shape[:2]
    steps, total, start = engine.method.steps, 0.0, 0
    for end, _, (h, w) in engine.stages():
        stop = steps if end is None else min(end, steps)
        total += max(0, stop - start) * h * w / (height * width)
        start = max(start, stop)
    return total


def summarize_views(rows, net, peak: float) -> dict:
    """The views' rows with their fraction of the conv peak, each view over the
    whole sample, and the full atlas's seconds for the default and for `--views unit`."""
    for row in rows:
        row["fraction_of_peak"] = row["gflops"] / peak
    names = list(dict.fromkeys(row["view"] for row in rows))
    per_view_s = estimate_views_atlas(net, rows)
    estimates = {}
    for label, views in (("default", DEFAULT_VIEWS), ("unit", VIEW_NAMES)):
        if all(view in per_view_s for view in views):  # only views that were measured
            seconds = sum(per_view_s[view] for view in views)
            estimates[label] = {"views": list(views), "seconds": seconds, "hours": seconds / 3600}
    return {
        "method": DEFAULT_METHOD,
        "steps": rows[0]["steps"],
        "peak_conv_gflops": peak,
        "per_view": {name: sample_totals([r for r in rows if r["view"] == name], peak) for name in names},
        "layers": rows,
        "full_atlas_estimate_s_per_view": per_view_s,
        "full_atlas_estimate": estimates,
    }


def sample_totals(rows, peak: float) -> dict:
    """One view over all its sampled filters."""
    seconds = sum(r["s_per_filter"] * r["filters"] for r in rows)
    filters = sum(r["filters"] for r in rows)
    pictures = sum(r["filters"] * r["group"] for r in rows)
    gflop = sum(r["gflop_per_picture"] * r["filters"] * r["group"] for r in rows)
    return {"s_per_picture": seconds / pictures, "s_per_filter": seconds / filters, "gflop_per_picture": gflop / pictures,
            "gflops": gflop / seconds, "fraction_of_peak": gflop / seconds / peak}


def estimate_views_atlas(net, rows) -> dict[str, float]:
    """Seconds per view for every filter of every conv layer, as `estimate_full_atlas`
    does: each layer's FLOPs at the rate the view achieved on the sampled layer of
    its block. A windowed view's window is the layer's own."""
    from .networks import truncated
    from .optvis.window import receptive_window

    sampled = {(r["view"], r["block"]): r for r in rows}
    views = list(dict.fromkeys(r["view"] for r in rows))
    windowed = [v for v in views if METHODS[DEFAULT_METHOD].field_window and make_view(v).objective.local]
    seconds = dict.fromkeys(views, 0.0)
    for layer in described_layers(net):
        submodel = truncated(net, layer.name)
        step_flops = conv_flops_per_step(submodel)
        window = receptive_window(net, layer.name) if windowed else None  # one gradient
        for view in views:
            row = sampled[(view, layer.block)]
            share = area_share(window if view in windowed else None, submodel.input_shape[1:3])
            gflop_per_filter = step_flops * share * row["render_steps"] * row["group"] / 1e9
            seconds[view] += layer.filters * gflop_per_filter / row["gflops"]
    return seconds


def print_views(views: dict) -> None:
    print(f"\nviews of the default method ({views['method']}, {views['steps']} steps), "
          f"against the {views['peak_conv_gflops']:.0f} GFLOP/s conv peak:")
    print(f"{'layer':24s} {'view':10s} {'s/picture':>10s} {'s/filter':>10s} {'GFLOP/picture':>14s} {'of peak':>8s}")
    totals = [dict(sample, layer="(all sampled)", view=name) for name, sample in views["per_view"].items()]
    for r in views["layers"] + totals:
        print(f"{r['layer']:24s} {r['view']:10s} {r['s_per_picture']:10.4g} {r['s_per_filter']:10.4g} "
              f"{r['gflop_per_picture']:14.4g} {r['fraction_of_peak']:8.2%}")
    for label, estimate in views["full_atlas_estimate"].items():
        print(f"full atlas, {label} ({', '.join(estimate['views'])}): "
              f"{estimate['seconds']:.5g} s = {estimate['hours']:.3g} h")


def selected_views(spec: str) -> tuple[str, ...]:
    """--views: unit (every view made from noise), names like channel,neuron, or
    none. Bench takes no photos, so not the views seeded by them (accent: its
    cost is in docs/accentuation.md, from generator.accent_quality)."""
    if spec == "none":
        return ()
    try:
        views = parse_views(spec)
    except AtlasError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    seeded = [view for view in views if view in SEEDED_VIEWS]
    if seeded and spec.strip() != "unit":
        raise argparse.ArgumentTypeError(f"make bench takes no photos, so not the {seeded[0]} view "
                                         "(python -m generator.accent_quality measures its cost)")
    return tuple(view for view in views if view not in SEEDED_VIEWS)
