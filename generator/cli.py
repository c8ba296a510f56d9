"""The `filter-atlas` command line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__, interrupts
from .build import DEFAULT_CACHE_DIR as DEFAULT_CACHE
from .errors import AtlasError
from .optvis.methods import METHODS
from .settings import Settings
from .words import plural
from .networks import BUILTIN_MODELS, DEFAULT_MODEL, PREPROCESS_MODES

DEFAULT_SITE = Path("site")
PRIVATE_PHOTOS_HELP = (
    "publish only the crops of the --images photos: no photo's file name or path, no folder name, no whole "
    "photos (the cache keeps them all; a render without it publishes them)"
)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # SIGTERM (CI cancelling, `kill`) stops a build like Ctrl-C does, and a
    # build it stops keeps its work.
    with interrupts.stop_on_signals():
        return run_command(args)


def run_command(args) -> int:
    try:
        code = args.run(args) or 0
        interrupts.check()  # one that a library swallowed near the end
        return code
    except AtlasError as exc:
        print(f"filter-atlas: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only folder: the system's words suffice
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"filter-atlas: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupted()
    except Exception as exc:
        # Ctrl-C while TensorFlow traces a graph comes back wrapped (a
        # StagingError from a SystemError): it is still the user's interrupt.
        if not (interrupts.requested() or caused_by_interrupt(exc)):
            raise
        return interrupted()


def interrupted() -> int:
    print(
        "filter-atlas: interrupted; every filter finished so far is cached, "
        "run the same command again to resume",
        file=sys.stderr,
    )
    return 130


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies anywhere in what led to `exc`."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="filter-atlas",
        description="Visualize every filter of a CNN and publish them as a static website.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    vis = sub.add_parser("visualize", help="the seed's visualize_filter: one filter, one PNG")
    vis.add_argument("layer", help="conv layer name, e.g. block3_conv1")
    vis.add_argument("--filter", type=int, default=None, help="filter index (default: random)")
    vis.add_argument("--iters", type=int, default=None, help="steps (default: the method's; seed: 50)")
    vis.add_argument("--method", default="seed", help="seed (the original loop, default) or fourier")
    vis.add_argument("--seed", type=int, default=0, help="seed of the random start image")
    vis.add_argument("--out", type=Path, default=None, help="PNG to write (default: LAYER_N.png)")
    add_model_options(vis)
    vis.set_defaults(run=run_visualize)

    bld = sub.add_parser("build", help="visualize filters into the cache")
    bld.add_argument("--layers", help="comma-separated layer or block names (default: all)")
    bld.add_argument("--filters", help="filter indices and ranges, e.g. 0-7,12 (default: all)")
    bld.add_argument(
        "--method", default=",".join(Settings.methods),
        help=f"methods, comma-separated; the first is shown in grids: {', '.join(METHODS)} "
        "(default: %(default)s)",
    )
    bld.add_argument(
        "--views", default=",".join(Settings.views),
        help="what each filter shows, comma-separated: channel (the whole feature map), neuron (its "
        "centre position), negative (what it most dislikes), diversity (several pictures pushed apart), "
        "accent (the top 3 --images photos, each accentuated: changed to drive it harder); "
        "unit for all (accent only with --images) (default: %(default)s)",
    )
    bld.add_argument("--diversity", type=int, default=Settings.diversity, metavar="K",
                     help="pictures in the diversity view (default: %(default)s)")
    bld.add_argument("--iters", type=int, default=None, help="steps per filter (default: the method's)")
    bld.add_argument("--seed", type=int, default=Settings.seed, help="base seed (default: 0)")
    bld.add_argument(
        "--precision", choices=("auto", "float32", "bfloat16"), default=Settings.precision,
        help="arithmetic of the network; auto picks bfloat16 where the hardware has it "
        "(default: %(default)s)",
    )
    add_model_options(bld, several=True)
    add_dir_options(bld)
    add_example_options(bld, required=False)
    bld.add_argument("--shard", metavar="K/N", help="compute only the K-th of N equal parts (K from 0), "
                     "e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; merge the caches, then build again")
    bld.add_argument("--live-site", type=Path, metavar="DIR",
                     help="keep the site in DIR current while building: rendered after each finished layer "
                     "and, within a long one, every minute (rendering kept under 2%% of the build), showing the "
                     "progress and the time left; and at the end")
    bld.add_argument("--private-photos", action="store_true",
                     help=f"with --live-site: {PRIVATE_PHOTOS_HELP}; give it to `render` too")
    bld.add_argument("--quiet", action="store_true", help="no progress bars")
    bld.set_defaults(run=run_build)

    mrg = sub.add_parser("merge", help="copy other caches' pictures into this cache (after sharded builds)")
    mrg.add_argument("sources", nargs="+", type=Path, metavar="CACHE", help="caches to take pictures from")
    mrg.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="the cache to merge into (default: %(default)s)")
    mrg.set_defaults(run=run_merge)

    exa = sub.add_parser("examples", help="find the photos that drive each filter hardest")
    exa.add_argument("--layers", help="comma-separated layer or block names (default: all)")
    exa.add_argument("--filters", help="filter indices and ranges, e.g. 0-7,12 (default: all)")
    add_example_options(exa, required=True)
    add_model_options(exa)
    add_dir_options(exa)
    exa.add_argument("--quiet", action="store_true", help="no progress bars")
    exa.set_defaults(run=run_examples)

    ren = sub.add_parser("render", help="render the last build as a static site")
    add_model_options(ren)  # accepted for symmetry; render reads the build record
    add_dir_options(ren)
    ren.add_argument("--private-photos", action="store_true", help=PRIVATE_PHOTOS_HELP)
    ren.set_defaults(run=run_render)

    wts = sub.add_parser(
        "seeded-weights", help="write random weights in Keras's file layout (for offline tests)"
    )
    wts.add_argument("out", type=Path, help="the .h5 file to write")
    wts.add_argument("--seed", type=int, default=0)
    wts.add_argument("--model", default=DEFAULT_MODEL, help=f"one of: {', '.join(BUILTIN_MODELS)}")
    wts.set_defaults(run=run_seeded_weights)
    return top


def add_model_options(p: argparse.ArgumentParser, several: bool = False) -> None:
    p.add_argument(
        "--model", default=None if several else DEFAULT_MODEL, action="append" if several else "store",
        help=f"a built-in model ({', '.join(BUILTIN_MODELS)}; default: {DEFAULT_MODEL}) "
        "or a path to a .keras model file" + ("; repeat it to build several into one atlas" if several else ""),
    )
    p.add_argument(
        "--weights", default=None,
        help="weights .h5 file (default: $FILTER_ATLAS_WEIGHTS, the Keras cache, then download)",
    )
    p.add_argument(
        "--preprocess", default=None, metavar="|".join(PREPROCESS_MODES),
        help="the network's input preprocessing (default: the built-in model's own; for a model "
        "file, none if it starts with Rescaling/Normalization, a keras.applications family's own "
        "by the model's name, else tf)",
    )
    p.add_argument(
        "--input-size", default=None, metavar="H[xW]",
        help="input size (default: the built-in model's, 96 for vgg16; a model file's own)",
    )
    p.add_argument(
        "--custom-objects", default=None, metavar="FILE.py",
        help="a Python file defining the model file's custom layers and functions: it is imported and "
        "its classes and functions are handed to Keras's loader",
    )
    p.add_argument(
        "--unsafe-deserialization", action="store_true",
        help="let Keras run the Python code a Lambda layer stored in the model file (only for files you trust)",
    )


def add_example_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--images", type=Path, required=required, metavar="DIR",
                   help="photographs (JPEG/PNG, searched recursively) to find each filter's top examples in")
    p.add_argument("--examples", type=int, default=9, metavar="K", help="examples per filter (default: 9)")
    p.add_argument("--bottom", action="store_true", help="also the K photos that drive each filter lowest")


def example_options(args):
    from .examples import ExampleOptions

    return ExampleOptions(args.images, args.examples, args.bottom) if args.images else None


def add_dir_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="default: %(default)s")
    p.add_argument("--site-dir", type=Path, default=DEFAULT_SITE, help="default: %(default)s")


def run_visualize(args) -> None:
    from .description import choose_preprocess
    from .cache import atomic_write
    from .imaging import encode_png
    from .optvis.methods import get_method
    from .networks import guess_preprocess, load_model, model_source
    from .optvis.engine import visualize_with_engine
    from .optvis.seed_loop import visualize_filter
    from .names import safe_name

    method = get_method(args.method, args.iters)
    settings = model_settings(args)
    net = load_model(args.model, model_source(args.model, args.weights), settings.input_size,
                     settings.custom_objects, settings.unsafe_deserialization)
    if method.name == "seed":
        image, index, activation = visualize_filter(net, args.layer, args.filter, method.steps, args.seed)
    else:
        preprocess, _ = choose_preprocess(settings, guess_preprocess(net))
        image, index, activation = visualize_with_engine(
            net, args.layer, args.filter, method, args.seed, preprocess=preprocess
        )
    out = args.out or Path(f"{safe_name(args.layer)}_{index}.png")
    meta = {"layer": args.layer, "filter": index, "method": method.name, "activation": activation}
    atomic_write(out, encode_png(method.param.to_pixels(image), meta))
    print(f"{args.layer}, {index}: final activation {activation:.4f}; wrote {out}")


def run_build(args) -> None:
    from .arguments import check_build_arguments, check_networks
    from .build import build
    from .optvis.views import SEEDED_VIEWS

    plan = check_build_arguments(args)  # everything the arguments name, before any work
    shard = plan.shard
    seeded = bool(set(plan.views) & set(SEEDED_VIEWS))  # pictures that start from the top photos
    if shard and args.images and not seeded and not args.quiet:
        print("--images: a shard computes pictures only; the build over the merged caches finds the examples")
    every = [
        replace(model_settings(args, model), methods=plan.methods, views=plan.views, diversity=plan.diversity,
                iters=args.iters, seed=args.seed, precision=args.precision)
        for model in args.model or [DEFAULT_MODEL]
    ]
    if len(every) > 1:  # each model's file, layers and filters, before the first model's pictures
        check_networks(every, args.cache_dir, args.layers, args.filters)
    for settings in every:
        if shard:
            part = build(settings, args.cache_dir, args.layers, args.filters, progress=not args.quiet, shard=shard,
                         examples=example_options(args) if seeded else None)
            print(f"{part['model']}: shard {shard[0]}/{shard[1]}, {plural(part['filters'], 'filter')} "
                  f"({part['cost'] / part['total_cost']:.1%} of the estimated work) ready in {args.cache_dir}")
            continue
        record = build(settings, args.cache_dir, args.layers, args.filters, progress=not args.quiet,
                       examples=example_options(args), live_site=args.live_site,
                       private_photos=args.private_photos)
        count = sum(len(layer["entries"]) for layer in record["layers"])
        examples = f"; {examples_line(record['examples'])}" if "examples" in record else ""
        print(f"{record['model']}: {plural(count, 'filter')} of {plural(len(record['layers']), 'layer')} "
              f"ready in {args.cache_dir}{examples}{live_line(args.live_site)}")


def run_merge(args) -> None:
    from .shards import merge_caches

    counts = merge_caches(args.sources, args.cache_dir)
    corrupt = f", {counts['corrupt']} corrupt skipped" if counts["corrupt"] else ""
    print(f"merged {plural(len(args.sources), 'cache')} into {args.cache_dir}: "
          f"{plural(counts['copied'], 'file')} copied, "
          f"{counts['present']} already there{corrupt}; `filter-atlas build` now renders from it")


def run_examples(args) -> None:
    from .arguments import check_examples_arguments
    from .build import examples_only

    check_examples_arguments(args)
    summary, attached = examples_only(model_settings(args), args.cache_dir, example_options(args),
                                      args.layers, args.filters, progress=not args.quiet)
    if attached:
        print(f"{examples_line(summary)}; added to the last build; `filter-atlas render` shows them")
    else:
        print(f"{examples_line(summary)}; no build of this network in {args.cache_dir} to add them to: "
              "`filter-atlas build --images DIR` builds and shows them")


def live_line(site: Path | None) -> str:
    return f"; site in {site}, open {site / 'index.html'}" if site else ""


def examples_line(summary: dict) -> str:
    skipped = f", {len(summary['skipped'])} unreadable skipped" if summary["skipped"] else ""
    return (f"top {plural(summary['k'], 'example')} per filter from {plural(summary['photos'], 'photo')} "
            f"in {summary['folder']}{skipped}")


def model_settings(args, model: str | None = None) -> Settings:
    """The network part of the settings: model, weights, preprocessing, input size."""
    from .networks import check_mode, parse_input_size

    custom = str(Path(args.custom_objects).expanduser().resolve()) if args.custom_objects else None
    return Settings(model=model or args.model, weights=args.weights, preprocess=check_mode(args.preprocess),
                    input_size=parse_input_size(args.input_size), custom_objects=custom,
                    unsafe_deserialization=args.unsafe_deserialization)


def run_render(args) -> None:
    from .arguments import check_site_folder
    from .site import render

    check_site_folder(args.site_dir, args.cache_dir, "--site-dir")
    pages = render(args.cache_dir, args.site_dir, private_photos=args.private_photos)
    print(f"site with {plural(pages, 'page')} in {args.site_dir}; open {args.site_dir / 'index.html'}")


def run_seeded_weights(args) -> None:
    from .networks import save_seeded_weights

    save_seeded_weights(args.out, args.seed, args.model)
    print(f"wrote seeded random {args.model} weights to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
