"""Keeping a site current while a build runs (`build --live-site DIR`, `make atlas`).

Data flows one way, as without it: the build writes a partial build record
(atomically, where the finished one goes) holding the layers whose every
picture is cached, the others listed as "pending", and a "progress" field;
then `site.render` renders the cache's records as always. The finished
build's record replaces the partial one and is rendered like any other, so
the site ends file for file as a render after the build makes it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from .cache import atomic_write
from .circuits import attach_circuits
from .records import make_record, record_json, record_path

# Within a layer that takes long, the progress shown is refreshed this often.
REFRESH_S = 60
# A render waits until the build has run this many times the last render's
# duration since it: rendering takes at most about 1 / (1 + RENDER_GAP) of the
# build (2%), however fast layers finish; a finished layer left unrendered is
# rendered at the next chance. The last state is always rendered.
RENDER_GAP = 49


class LiveSite:
    """The partial record and the site, brought up to date as filters finish."""

    def __init__(self, site_dir: Path, cache_root: Path, model: str, settings, net, chosen, wanted, keys,
                 activations: dict, precisions: dict, todo: dict, private_photos: bool = False,
                 circuits: tuple | None = None):
        self.site_dir, self.cache_root, self.model = Path(site_dir), cache_root, model
        self.private_photos = private_photos  # render's --private-photos
        self.settings, self.net, self.chosen, self.wanted, self.keys = settings, net, chosen, wanted, keys
        self.precisions = precisions
        self.circuits = circuits  # each filter's inputs and outputs, and their summary (generator/circuits)
        self.activations = dict(activations)  # every finished (method, view, layer, index): cached or computed
        self.groups = list(todo)  # (method, view, layer) in the order the engine computes them
        self.computing: str | None = self.groups[0][2]  # the layer the engine is on
        self.started = time.perf_counter()
        self.computed_at_start = len(self.activations)
        self.last_end = 0.0  # when the last render ended
        self.last_cost = 0.0  # how long it took
        self.behind = False  # a layer finished since the last render
        self.bar = None  # the build's overall progress bar, for its estimate of the time left

    def start(self) -> None:
        """Before computing: the site as the cache already has it."""
        self.refresh()

    def batch(self, activations: dict, group: tuple[str, str, str], bar, finished: bool) -> None:
        """After each batch of the (method, view, layer) `group`; `finished`: it ended the group."""
        self.activations.update(activations)
        self.bar = bar
        if finished:
            after = self.groups[self.groups.index(group) + 1:]
            self.computing = after[0][2] if after else None
        self.behind = self.behind or finished
        since = time.perf_counter() - self.last_end
        if since >= RENDER_GAP * self.last_cost and (self.behind or since >= REFRESH_S):
            self.refresh()

    def stop(self) -> None:
        """Interrupted or failed: the site shows what was finished, and says the build stopped."""
        self.computing = None
        try:
            self.refresh(state="stopped")
        except Exception as exc:  # the error that stopped the build is the one to report
            print(f"filter-atlas: the site in {self.site_dir} shows the build before this: {exc}", file=sys.stderr)

    def refresh(self, state: str = "building") -> None:
        from .site import render

        atomic_write(record_path(self.cache_root, self.model), record_json(self.record(state)))
        started = time.perf_counter()
        render(self.cache_root, self.site_dir, private_photos=self.private_photos)
        self.last_end = time.perf_counter()
        self.last_cost, self.behind = self.last_end - started, False

    def record(self, state: str) -> dict:
        groups = [(m, v) for m in self.settings.methods for v in self.settings.views]
        done_in = {layer.name: [i for i in self.wanted[layer.name]
                                if all((m, v, layer.name, i) in self.activations for m, v in groups)]
                   for layer in self.chosen}
        finished = [layer for layer in self.chosen if len(done_in[layer.name]) == len(self.wanted[layer.name])]
        record = make_record(self.settings, self.net, finished, self.wanted, self.keys, self.activations,
                             self.precisions)
        record["model"] = self.model
        if self.circuits:
            attach_circuits(record, *self.circuits)
        record["pending"] = [
            {**asdict(layer), "indices": self.wanted[layer.name], "done": len(done_in[layer.name]),
             "computing": layer.name == self.computing}
            for layer in self.chosen if layer not in finished
        ]
        record["progress"] = {
            "state": state,
            "done": sum(map(len, done_in.values())),
            "total": sum(map(len, self.wanted.values())),
            "eta_s": self.time_left() if state == "building" else None,
            "updated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "order": [layer.name for layer in self.chosen],
        }
        return record

    def time_left(self) -> float | None:
        """The time left as the overall progress bar estimates it (its smoothed
        rate, else its mean one); with the bar off (--quiet), by the mean rate."""
        if self.bar is not None and not self.bar.disable:
            d = self.bar.format_dict
            rate = d["rate"] or ((d["n"] - d["initial"]) / d["elapsed"] if d["elapsed"] else None)
            return (d["total"] - d["n"]) / rate if rate and d["total"] else None
        done = len(self.activations) - self.computed_at_start
        elapsed = time.perf_counter() - self.started
        left = len(self.keys) - len(self.activations)
        return left / (done / elapsed) if done and elapsed else None
