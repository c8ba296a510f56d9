"""A build's arguments, checked before any work (issue 33).

Everything `filter-atlas build` (and `examples`) is told by name is checked
here, in a fraction of a second and without TensorFlow: the photo folder,
the custom-objects file, the syntax of the layer and filter selections, the
views, methods, shard and live-site folder. A mistyped `--images` fails at
once, not after every picture has been computed. What only the network can
tell (whether it has the named layers and filters) is checked as soon as it
is opened: by `build` itself for one model, by `check_networks` for all of
several models before the first is built. The late checks where each thing
is used stay, a second line of defence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import AtlasError


@dataclass(frozen=True)
class BuildPlan:
    """The build's arguments, parsed."""

    methods: tuple[str, ...]
    views: tuple[str, ...]
    diversity: int
    shard: tuple[int, int] | None


def check_build_arguments(args) -> BuildPlan:
    """Check every argument of `filter-atlas build` that needs no network; raise
    AtlasError (one line) at the first wrong one."""
    from .networks import check_mode, parse_input_size
    from .optvis.methods import get_method
    from .optvis.views import SEEDED_VIEWS, check_diversity, parse_views
    from .shards import parse_shard

    models = args.model or [None]
    if len(models) > 1 and args.weights:
        raise AtlasError("--weights names one model's file; build several models one --model at a time to use it")
    shard = parse_shard(args.shard)
    if shard and args.live_site:
        raise AtlasError("--live-site renders the build; a --shard computes part of it and renders nothing")
    if args.private_photos and not args.live_site:
        raise AtlasError("--private-photos is for the site --live-site renders; without one, give it to "
                         "`filter-atlas render`")
    methods = tuple(parse_methods(args.method))
    for name in methods:
        get_method(name, args.iters)  # unknown names, and --iters below 1
    views = accent_views(parse_views(args.views), args)
    diversity = check_diversity(args.diversity)
    check_selection(args.layers, args.filters)
    check_mode(args.preprocess)
    parse_input_size(args.input_size)
    check_custom_objects(args.custom_objects)
    check_examples(args.examples)
    # a shard leaves the photos to the build over the merged caches, unless its pictures start from them
    if args.images and (not shard or set(views) & set(SEEDED_VIEWS)):
        check_image_folder(args.images)
    if args.live_site:
        check_site_folder(args.live_site, args.cache_dir, "--live-site")
    return BuildPlan(methods, views, diversity, shard)


def accent_views(views: tuple[str, ...], args) -> tuple[str, ...]:
    """The views a build makes: `unit` includes the views that start from the
    filters' top photos only where --images gives photos; named alone, such a
    view needs them (one line)."""
    from .optvis.views import ACCENT_PHOTOS, SEEDED_VIEWS

    seeded = [view for view in views if view in SEEDED_VIEWS]
    if not seeded:
        return views
    if not args.images:
        if args.views.strip() == "unit":
            return tuple(view for view in views if view not in SEEDED_VIEWS)
        raise AtlasError(f"--views {seeded[0]} starts from each filter's top {ACCENT_PHOTOS} photos: "
                         "give a photo folder with --images DIR")
    if args.examples < ACCENT_PHOTOS:
        raise AtlasError(f"--views {seeded[0]} starts from each filter's top {ACCENT_PHOTOS} photos: "
                         f"--examples must be at least {ACCENT_PHOTOS}, got {args.examples}")
    return views


def check_examples_arguments(args) -> None:
    """The same for `filter-atlas examples`."""
    from .networks import check_mode, parse_input_size

    check_selection(args.layers, args.filters)
    check_mode(args.preprocess)
    parse_input_size(args.input_size)
    check_custom_objects(args.custom_objects)
    check_examples(args.examples)
    check_image_folder(args.images)


def parse_methods(spec: str) -> list[str]:
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names or len(set(names)) != len(names):
        raise AtlasError(f"cannot parse --method {spec!r}: expected names like seed,fourier")
    return names


def check_selection(layers: str | None, filters: str | None) -> None:
    """The syntax of --layers and --filters; the names and indices themselves need the network."""
    from .specs import parse_filters

    parse_filters(filters)
    if layers is not None and not [name for name in layers.split(",") if name.strip()]:
        raise AtlasError(f"cannot parse --layers {layers!r}: expected names like block1_conv1,block3")


def check_image_folder(folder: Path) -> None:
    """--images: a folder holding at least one photo (searched as generator/photos.py searches)."""
    from .photos import has_photos

    folder = Path(folder)
    if not folder.exists():
        raise AtlasError(f"--images {folder}: no such folder")
    if not folder.is_dir():
        raise AtlasError(f"--images {folder}: not a folder")
    if not has_photos(folder):
        raise AtlasError(f"no photographs (JPEG, PNG, WebP, BMP) in {folder} or its subfolders")


def check_examples(k: int) -> None:
    if k < 1:
        raise AtlasError(f"--examples must be at least 1, got {k}")


def check_custom_objects(path: str | None) -> None:
    """--custom-objects: an existing .py file (importing it is left to loading, which needs Keras)."""
    from .networks.custom import custom_objects_file

    if path is not None:
        custom_objects_file(path)


def check_site_folder(site: Path, cache_dir: Path, option: str) -> None:
    """A site folder that can be written, and is not the cache: render's own
    folders there (thumbs, examples) share names with the cache's, and a render
    removes what it did not write in them. Creates nothing."""
    site = Path(site)
    if site.exists() and not site.is_dir():
        raise AtlasError(f"{option} {site}: not a folder")
    if site.resolve() == Path(cache_dir).resolve():
        raise AtlasError(f"{option} {site} is the cache folder; the site needs a folder of its own")
    existing = next(folder for folder in (site, *site.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise AtlasError(f"cannot write to {site}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AtlasError(f"cannot write to {site}: permission denied")


def check_networks(all_settings: list, cache_dir: Path, layers: str | None, filters: str | None) -> None:
    """Several models: each one's file, then the layers and filters chosen in each
    (opening each network, describing it into the cache the first time), before
    the first is built. One model's build checks these itself before its first picture."""
    from . import build, networks
    from .cache import Cache, ensure_writable
    from .description import open_network

    for settings in all_settings:
        networks.model_source(settings.model, settings.weights)
    cache = Cache(cache_dir)
    ensure_writable(cache.root)
    for settings in all_settings:
        build.selection(open_network(settings, cache), layers, filters)
