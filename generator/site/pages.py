"""The site's pages as data: a model, its blocks, layers and filters, and
each filter's pictures with their numbers set against the photos'."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..names import safe_name

PREVIEW_COUNT = 8
LARGE_SIZE = 384  # the filter page shows the picture this large on its longer side

VIEW_SUMMARIES = {
    "channel": "maximizes the filter's mean over the whole feature map",
    "neuron": "maximizes the filter at the centre position only: one receptive field",
    "negative": "minimizes the filter's mean: what it most dislikes",
    "diversity": "several pictures optimized together, each maximizing the channel while a penalty on the "
                 "similarity of their Gram matrices at the layer pushes them apart (Lucid's diversity)",
    "accent": "each of the top 3 photos, changed to drive the filter harder while held near itself in pixels and "
              "in an early layer's features (feature accentuation, Hamblin, Fel et al. 2024)",
}

VIEW_TITLES = {"channel": "channel", "neuron": "neuron (centre position)", "negative": "negative",
               "diversity": "diversity", "accent": "accentuated photo"}

# What each view's number is compared with among the photos: the quantity, and which end.
VIEW_MEASURES = {"channel": ("mean", "max"), "diversity": ("mean", "max"), "neuron": ("centre", "max"),
                 "negative": ("mean", "min"), "accent": ("mean", "max")}


@dataclass
class Picture:
    method: str
    image: str  # path of the PNG under the site root
    thumb: str  # path of its small WebP thumbnail
    activation: float  # its filter's mean output after the nonlinearity
    view: str = "channel"
    member: int = 0
    unit: dict | None = None  # its unit output before the nonlinearity, measured as the photos' ("mean", "centre")
    precision: str = ""  # the arithmetic that made it
    width: int = LARGE_SIZE  # as shown on the filter page (the window alone, where there is one):
    height: int = LARGE_SIZE  # its own aspect ratio
    window: dict | None = None  # {"rows": [start, stop], "cols": ...}: the part of the input it was optimized on
    crop: str | None = None  # path of that part alone, which the page shows enlarged
    accent: dict | None = None  # an accentuation: its photo, box, crop there and numbers (site/accent.py)

    @property
    def title(self) -> str:
        return VIEW_TITLES.get(self.view, self.view)

    @property
    def window_note(self) -> str:
        """Where a picture made on its receptive field lies, in words; empty for whole-input pictures."""
        if not self.window:
            return ""
        (top, bottom), (left, right) = self.window["rows"], self.window["cols"]
        return (f"optimized on the {right - left} × {bottom - top} px this position sees "
                f"(its receptive field), shown enlarged; the rest of the input, grey, cannot affect it")

    def shown(self, size: int) -> tuple[int, int]:
        """Width and height at `size` pixels on the longer side (the large size is LARGE_SIZE)."""
        return round(self.width * size / LARGE_SIZE), round(self.height * size / LARGE_SIZE)


@dataclass
class FilterPage:
    layer: "LayerPage"
    index: int
    pictures: list[Picture]  # one per method; the first is the one grids show
    examples: dict = field(default_factory=dict)  # "top" (and "bottom"): photos that drive it, crops in the site
    circuits: dict = field(default_factory=dict)  # its inputs and outputs as shown (generator/circuits/page.py)
    circuit_fields: dict = field(default_factory=dict)  # and as atlas.json lists them
    prev: "FilterPage | None" = None
    next: "FilterPage | None" = None

    @property
    def image(self) -> str:
        return self.pictures[0].image

    @property
    def thumb(self) -> str:
        return self.pictures[0].thumb

    @property
    def activation(self) -> float:
        return self.pictures[0].activation

    @property
    def top_crop(self) -> str | None:
        top = self.examples.get("top")
        return top[0]["crop"] if top else None

    @property
    def views(self) -> list[str]:
        """The views built for this filter, in the build's order."""
        return list(dict.fromkeys(p.view for p in self.pictures))

    def of_view(self, view: str) -> list[Picture]:
        return [p for p in self.pictures if p.view == view]

    @property
    def view_thumbs(self) -> dict[str, str]:
        """Per view, the thumbnail the layer grid shows for it."""
        return {view: self.of_view(view)[0].thumb for view in self.views}

    @property
    def dead(self) -> bool:
        """Silent on every photo (its highest output anywhere on any photo is at most 0)
        and on every picture: known only where photos were given."""
        top = self.examples.get("top")
        return bool(top) and top[0]["activation"] <= 0 and all(p.activation <= 0 for p in self.pictures)

    def standing(self, picture: Picture) -> str:
        """The picture's number set against the photos' own, in words."""
        natural = self.examples.get("natural")
        if not natural or not picture.unit:
            return f"mean activation {picture.activation:.3g}"
        quantity, end = VIEW_MEASURES.get(picture.view, ("mean", "max"))
        value, stats = picture.unit[quantity], natural[quantity]
        where = "mean over the feature map" if quantity == "mean" else "output at the centre"
        return f"{where} {value:.3g}, {compare(value, stats, end)}"

    @property
    def path(self) -> str:
        return f"{self.layer.model}/filters/{self.layer.slug}/{self.index}.html"


@dataclass
class LayerPage:
    model: str  # the model's folder
    name: str
    block: str
    total_filters: int
    kind: str = "conv"
    filters: list[FilterPage] = field(default_factory=list)
    # While a live build runs (generator/live.py), a layer not finished yet:
    # "indices" wanted, how many are "done", whether it is "computing" now.
    pending: dict | None = None

    @property
    def slug(self) -> str:
        return safe_name(self.name)

    @property
    def indices(self) -> list[int]:
        """The filters the layer shows, or will show once finished."""
        return self.pending["indices"] if self.pending else [f.index for f in self.filters]

    @property
    def path(self) -> str:
        return f"{self.model}/layers/{self.slug}.html"

    @property
    def preview(self) -> list[FilterPage]:
        return self.filters[:PREVIEW_COUNT]

    @property
    def alias(self) -> str:
        """block4_conv2 -> b4c2, conv_pw_13 -> cp13: each part's first letter and its digits."""
        return "".join(re.sub(r"\d", "", part)[:1] + re.sub(r"\D", "", part) for part in self.name.split("_")).lower()


@dataclass
class BlockPage:
    model: str
    name: str
    layers: list[LayerPage] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.model}/blocks/{safe_name(self.name)}.html"

    @property
    def filter_count(self) -> int:
        return sum(len(layer.filters) for layer in self.layers)


@dataclass
class ModelPage:
    name: str
    record: dict
    blocks: list[BlockPage] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return safe_name(self.name)

    @property
    def path(self) -> str:
        return f"{self.slug}/index.html"

    @property
    def layers(self) -> list[LayerPage]:
        return [layer for block in self.blocks for layer in block.layers]

    @property
    def filter_count(self) -> int:
        return sum(block.filter_count for block in self.blocks)

    @property
    def progress(self) -> dict | None:
        """How far a live build is, while it runs or after it stopped; None once finished."""
        return self.record.get("progress")

    @property
    def preview(self) -> list[FilterPage]:
        """A strip for the models' index: from the model's middle layer."""
        layers = [layer for layer in self.layers if layer.filters]
        return layers[len(layers) // 2].preview if layers else []


def compare(value: float, stats: dict, end: str) -> str:
    """`value` against the photos' max, average and min of the same quantity."""
    high, low, average = stats["max"], stats["min"], stats["average"]
    if end == "min":
        if value < low:
            return f"below every photo (lowest {low:.3g})"
        return f"between the lowest photo ({low:.3g}) and an average one ({average:.3g})" if value < average \
            else f"not below an average photo ({average:.3g})"
    if value >= high:
        return f"above every photo (best {high:.3g})"
    if value >= average:
        return f"{(value - average) / max(high - average, 1e-9):.0%} of the way from an average photo " \
               f"({average:.3g}) to the best ({high:.3g})"
    return f"below an average photo ({average:.3g}; best {high:.3g})"
