"""The build driver: which filters are wanted, which are cached, compute the rest.

Reads nothing but the weights file's bytes and the cache when nothing has
changed, so a no-op rebuild does not even start TensorFlow.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import interrupts, networks as models
from .cache import Cache, atomic_write, ensure_writable
from .circuits import attach_circuits, network_circuits
from .description import Network, open_network
from .examples import ExampleOptions, make_examples
from .names import model_name
from .precision import auto_precision
from .examples.measure import measure_pictures
from .records import (attach_examples, attach_measures, make_record, record_json, record_path,
                      record_pictures, unique_model_name)
from .live import LiveSite
from .imaging import filter_seed
from .accent import accent_seeds, seed_photos
from .errors import AtlasError
from .keys import picture_keys
from .settings import Settings
from .shards import assign_shards, work_units
from .specs import parse_filters, select_filters, select_layers
from .words import plural

DEFAULT_CACHE_DIR = Path(".atlas-cache")


def build(
    settings: Settings,
    cache_dir: Path,
    layers: str | None = None,
    filters: str | dict[str, list[int]] | None = None,
    progress: bool = True,
    write_record: bool = True,
    examples: ExampleOptions | None = None,
    shard: tuple[int, int] | None = None,
    live_site: Path | None = None,
    private_photos: bool = False,
) -> dict:
    """Make sure every selected filter is in the cache; returns the build record,
    which `render` reads back unless `write_record` is off. `filters` is a
    `--filters` spec for every layer, or the indices per layer name. With
    `live_site`, that site shows the build as it goes (generator/live.py) and
    is rendered at the end (with render's `private_photos`)."""
    for name in settings.methods:
        settings.method(name)  # unknown names and bad step counts fail before any work
    for name in settings.views:
        settings.view(name)
    cache = Cache(cache_dir)
    ensure_writable(cache.root)
    net = open_network(settings, cache)
    settings = replace(settings, **net.code)  # recorded, for `render` and rebuilds
    if models.is_model_file(settings.model) and not settings.preprocess:
        report(f"{Path(settings.model).name}: preprocessing {net.preprocess} ({net.preprocess_why})", progress)
    chosen, wanted = selection(net, layers, filters)
    explicit = settings.precision != "auto"
    if not explicit:
        settings = replace(settings, precision=auto_precision(net, cache, lambda m: report(m, progress)))
    found = seeds = None  # the photo pass, first where pictures start from its top photos (accent.py)
    if any(settings.view(v).seeded for v in settings.views):
        if not examples:
            raise AtlasError("the accent view starts from each filter's top photos: give --images DIR")
        found = make_examples(net, chosen, wanted, examples, cache, progress, lambda m: report(m, progress))
        seeds = accent_seeds(found[0], examples.images, wanted)
    keys = picture_keys(settings, net, wanted, seeds)
    precisions = use_equivalent_pictures(settings, net, cache, wanted, keys, explicit, seeds)
    if shard:
        return build_shard(settings, net, cache, keys, wanted, shard, progress, seeds)
    activations, todo = find_cached(cache, keys, progress)
    circuits = network_circuits(net, cache, wanted)  # from the weights; cached per layer; the live site shows them too
    live = None
    if live_site and write_record and todo:
        live = LiveSite(live_site, cache.root, unique_model_name(cache.root, net), settings, net, chosen, wanted,
                        keys, activations, precisions, todo, private_photos, circuits)
        live.start()
    started = time.perf_counter()
    if todo:
        try:
            activations.update(compute(settings, net, cache, keys, todo, progress, live, seeds))
        except BaseException:  # Ctrl-C, a crash: the site shows what was finished
            if live:
                live.stop()
            raise
    record = make_record(settings, net, chosen, wanted, keys, activations, precisions)
    record["model"] = claim_model_name(cache.root, net, progress)
    record["computed"] = {"filters": sum(map(len, todo.values())), "seconds": time.perf_counter() - started}
    attach_circuits(record, *circuits)
    if examples:
        attach_examples(record, *(found or make_examples(net, chosen, wanted, examples, cache, progress,
                                                         lambda m: report(m, progress))))
        attach_measures(record, measure_pictures(net, record_pictures(record), cache))
    if write_record:
        atomic_write(record_path(cache.root, record["model"]), record_json(record))
        if live_site:
            from .site import render

            render(cache.root, live_site, private_photos=private_photos)
    return record


def use_equivalent_pictures(settings: Settings, net: Network, cache: Cache, wanted: dict, keys: dict,
                            explicit_precision: bool, seeds: dict | None = None) -> dict:
    """Where a filter's pictures are missing but whole ones of the same filter
    made otherwise are cached, take those: `keys` is changed in place. Made
    otherwise: with the BatchNorms not folded (a cache from before folding),
    and, unless --precision was given, in the other precision (a cache merged
    from, or copied off, another kind of machine). Returns the precision of each
    filter's pictures taken in the other precision."""
    missing = {k: members for k, members in keys.items() if not all(map(cache.has, members))}
    if not missing:
        return {}
    other = replace(settings, precision="float32" if settings.precision == "bfloat16" else "bfloat16")
    nets = [net]
    if net.description.get("folds_batchnorm"):
        nets.append(replace(net, description={**net.description, "folds_batchnorm": False}))
    ways = [(settings, n) for n in nets[1:]] + ([] if explicit_precision else [(other, n) for n in nets])
    alternates = [(way.precision, picture_keys(way, n, wanted, seeds)) for way, n in ways]
    taken = {}
    for group in missing:
        for precision, keyed in alternates:
            if all(cache.get(key) is not None for key in keyed[group]):
                keys[group] = keyed[group]
                if precision != settings.precision:
                    taken[group] = precision
                break
    return taken


def build_shard(settings, net, cache, keys, wanted, shard, progress, seeds=None) -> dict:
    """Compute this shard's units only; the record is left to the build over the merged caches."""
    index, count = shard
    steps = {(m, v): settings.view(v).render_method(settings.method(m)).steps * settings.view(v).group
             for m in settings.methods for v in settings.views}
    units = work_units(steps, net.description["flops"], wanted)
    mine = assign_shards(units, count)[index]
    own = {(u.method, u.view, u.layer, i) for u in mine for i in u.filters}
    _, todo = find_cached(cache, {k: v for k, v in keys.items() if k in own}, progress)
    started = time.perf_counter()
    if todo:
        compute(settings, net, cache, keys, todo, progress, seeds=seeds)
    return {"model": unique_model_name(cache.root, net), "shard": [index, count], "filters": len(own),
            "cost": sum(u.cost for u in mine), "total_cost": sum(u.cost for u in units),
            "computed": {"filters": sum(map(len, todo.values())), "seconds": time.perf_counter() - started}}


def selection(net: Network, layers: str | None, filters) -> tuple[list, dict[str, list[int]]]:
    """The chosen layers, and per layer the wanted filter indices."""
    if isinstance(filters, dict):
        chosen = [layer for layer in net.layers if layer.name in filters]
        return chosen, {layer.name: sorted(filters[layer.name]) for layer in chosen}
    chosen = select_layers(net.layers, layers, net.description.get("all_layers", []))
    return chosen, select_filters(chosen, parse_filters(filters))


def examples_only(settings: Settings, cache_dir: Path, options: ExampleOptions, layers=None, filters=None,
                  progress: bool = True) -> tuple[dict, bool]:
    """`filter-atlas examples`: compute the examples; where the last build is of
    this network, add them to its record so that `render` shows them.
    Returns the summary and whether the record was updated."""
    cache = Cache(cache_dir)
    ensure_writable(cache.root)
    net = open_network(settings, cache)
    chosen, wanted = selection(net, layers, filters)
    found, summary = make_examples(net, chosen, wanted, options, cache, progress, lambda m: report(m, progress))
    path = record_path(cache.root, unique_model_name(cache.root, net))
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return summary, False
    if record.get("network_sha256") != net.sha256:
        return summary, False
    attach_examples(record, found, summary)
    attach_measures(record, measure_pictures(net, record_pictures(record), cache))
    atomic_write(path, record_json(record))
    return summary, True


def find_cached(cache: Cache, keys: dict, progress: bool) -> tuple[dict, dict]:
    """Activations of the pictures already cached, and per (method, view, layer)
    the filters whose pictures are not all there (a view's pictures are made
    together). Entries that exist but do not read back whole are reported and redone."""
    activations: dict = {}
    todo: dict[tuple[str, str, str], list[int]] = {}
    for (method, view, layer, index), members in keys.items():
        entries = [cache.get(key) for key in members]
        if all(entries):
            activations[(method, view, layer, index)] = [entry.activation for entry in entries]
            continue
        for key, entry in zip(members, entries):
            if entry is None and cache.has(key):
                report(f"cache entry for {layer} filter {index} ({method}, {view}) is corrupt; recomputing it",
                       progress)
                cache.remove(key)
        todo.setdefault((method, view, layer), []).append(index)
    return activations, todo


def compute(settings: Settings, net: Network, cache: Cache, keys: dict, todo: dict, progress: bool,
            live: LiveSite | None = None, seeds: dict | None = None) -> dict:
    """Run the engine on the missing filters, caching each batch as it finishes
    (and telling `live`, which keeps a site current). A seeded view's pictures
    start from `seeds`' photos (accent.py), and record them."""
    from .optvis.engine import LayerEngine

    activations = {}
    keras_model = net.load()
    total = sum(len(v) for v in todo.values())
    with tqdm(total=total, desc="atlas", unit="filter", disable=not progress, position=0) as overall:
        for (method, view, layer), indices in todo.items():
            started = time.perf_counter()
            shown = settings.view(view)
            engine = LayerEngine(keras_model, layer, settings.precision, shown.render_method(settings.method(method)),
                                 net.preprocess, shown.objective, fold=net.fold(layer), unit=net.unit(layer))
            with tqdm(
                total=len(indices), desc=layer, unit="filter", leave=False,
                disable=not progress, position=1,
            ) as bar:
                for batch in chunks(indices, max(1, engine.batch_size // shown.group)):
                    if shown.seeded:
                        photos = seed_photos(seeds, layer, batch, engine.input_shape)
                        pixels, images, finals = engine.run(engine.start_from(photos), batch, seed=settings.seed)
                        accents = engine.accent_measures(photos, images, list(np.repeat(batch, shown.group)))
                    else:
                        starts = [filter_seed(settings.seed, layer, i, member) for i in batch
                                  for member in range(shown.group)]
                        pixels, _, finals = engine.run(engine.start(starts), batch, seed=settings.seed)
                    for n, i in enumerate(batch):
                        group = range(n * shown.group, (n + 1) * shown.group)
                        for member, b in enumerate(group):
                            meta = {"layer": layer, "filter": i, "method": method, "activation": float(finals[b])}
                            if view != "channel":
                                meta.update(view=view, member=member)
                            if shown.seeded:  # the page shows it beside its photo, and how far it moved
                                seed = seeds[(layer, i)][member]
                                meta["accent"] = {"photo": seed["photo"], "photo_sha256": seed["sha256"],
                                                  "box": seed["box"], **accents[b]}
                            if engine.window is not None:  # the page says where the picture was optimized
                                meta["window"] = {"rows": [engine.window[0].start, engine.window[0].stop],
                                                  "cols": [engine.window[1].start, engine.window[1].stop]}
                            cache.put(keys[(method, view, layer, i)][member], pixels[b], meta)
                        activations[(method, view, layer, i)] = [float(finals[b]) for b in group]
                    bar.update(len(batch))
                    overall.update(len(batch))
                    if live:
                        live.batch(activations, (method, view, layer), overall, finished=batch[-1] == indices[-1])
                    interrupts.check()
            seconds = time.perf_counter() - started
            what = method if view == "channel" else f"{method}, {view}"
            report(f"{layer}: {plural(len(indices), 'filter')} in {seconds:.1f} s ({what}, {settings.precision})", progress)
    return activations


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def claim_model_name(cache_root: Path, net: Network, progress: bool) -> str:
    """`unique_model_name`, saying so when a taken name got a digest."""
    name = unique_model_name(cache_root, net)
    if name != model_name(net.name):
        report(f"{Path(net.name).name}: another model in {cache_root} is called {model_name(net.name)}; "
               f"this one (sha256 {net.sha256[:12]}) is {name}", progress)
    return name


def report(message: str, progress: bool) -> None:
    """A progress line, above the progress bars; nothing at all with --quiet (progress off)."""
    if progress:
        tqdm.write(message)
