"""What a unit page shows of its circuits: each listed input and output linked
to its own page, with its channel picture and its kernel as a small red and
blue heat map (red excites, blue inhibits), as in the Circuits figures.

The heat maps of one section share one colour scale, so that a strong link
looks stronger than a weak one. They are drawn as inline SVG, made here as
text: a page of 18 links takes a few hundred cells, and a 4,224-filter
atlas renders them in seconds.
"""

from __future__ import annotations

from markupsafe import Markup, escape

SIDE = 48  # pixels on a heat map's longer side, whatever the kernel's size


# Colours by strength, 0 to 255: white to full red (positive) or blue (negative).
RED = [f"#ff{255 - t:02x}{255 - t:02x}" for t in range(256)]
BLUE = [f"#{255 - t:02x}{255 - t:02x}ff" for t in range(256)]
CELLS = [[f'<rect x="{x}" y="{y}" width="1" height="1" fill="' for x in range(64)] for y in range(64)]


def colour(value: float, scale: float) -> str:
    """White at zero, red for positive, blue for negative, full at `scale`."""
    t = min(round(255 * abs(value) / scale), 255) if scale > 0 else 0
    return RED[t] if value > 0 else BLUE[t]


def heat_map(kernel: list[list[float]], scale: float, label: str) -> str:
    """A kernel as an inline SVG, one square per nonzero position (`label` escaped
    already). Made as text, cell strings and colours from tables: an atlas's
    70,000 heat maps of 9 to 36 cells each take about a second."""
    rows, cols = len(kernel), len(kernel[0])
    side = max(rows, cols)
    gain = 255 / scale if scale > 0 else 0.0
    if rows <= 64 and cols <= 64:
        cells = "".join([CELLS[y][x] + (RED[min(t, 255)] if v > 0 else BLUE[min(t, 255)]) + '"/>'
                         for y, row in enumerate(kernel) for x, v in enumerate(row)
                         if (t := int(abs(v) * gain + 0.5))])  # white cells are the background's
    else:
        cells = "".join([f'<rect x="{x}" y="{y}" width="1" height="1" fill="{colour(v, scale)}"/>'
                         for y, row in enumerate(kernel) for x, v in enumerate(row) if v])
    return (f'<svg class="heat" viewBox="0 0 {cols} {rows}" width="{round(SIDE * cols / side)}" '
            f'height="{round(SIDE * rows / side)}" shape-rendering="crispEdges" role="img" '
            f'aria-label="{label}"><rect width="{cols}" height="{rows}" fill="#fff"/>{cells}</svg>')


class CircuitPages:
    """The unit pages' circuits over one atlas: each linked unit's markup is made
    once (its page, thumbnail and name), then reused on every page linking it.
    Made here as text, not by the template: an atlas's 76,000 links took 7 s
    more through Jinja, and escaping each one's names as many again."""

    def __init__(self, pages: dict):
        self.pages = pages  # (layer, filter) -> the FilterPage, where the atlas has it
        self.made: dict = {}

    def unit(self, layer: str, index: int, root: str) -> tuple[str, str]:
        """A linked unit's escaped name and its picture and name, linked to its page where there is one."""
        key = (layer, index, root)
        if key not in self.made:
            page = self.pages.get((layer, index))
            name = str(escape(f"{layer} filter {index}"))
            label = f'<span class="circuit-name">{escape(layer)} <strong>{index}</strong></span>'
            if page:
                channel = [p for p in page.pictures if p.view == "channel"] or page.pictures
                picture = (f'<img src="{root}{escape(channel[0].thumb)}" width="64" height="64" loading="lazy" '
                           f'decoding="async" alt="{name}">')
                shown = f'<a href="{root}{escape(page.path)}" title="{name}">{picture}{label}</a>'
            else:
                shown = f'<span class="no-picture" title="not in this atlas">no picture</span>{label}'
            self.made[key] = name, shown
        return self.made[key]

    def links(self, entries: list[dict], what: str, root: str) -> Markup:
        """The list items of one group of links (`root`: the way from the page to
        the site's root): each its unit's channel thumbnail and page where this
        atlas has them, its layer and filter, its heat map and kernel sum. The
        group's heat maps share one colour scale."""
        scale = max((max(map(abs, row)) for e in entries for row in e["kernel"]), default=0.0)
        items = []
        for entry in entries:
            name, shown = self.unit(entry["layer"], entry["filter"], root)
            heat = heat_map(entry["kernel"], scale, f"{what} {name}: {entry['sign']}, kernel sum {entry['weight']:.3g}")
            items.append(f'<li class="circuit-link {entry["sign"]}">{shown}{heat}'
                         f'<span class="circuit-weight">{entry["weight"]:+.3g}</span></li>')
        return Markup("\n".join(items))

    def view(self, layer: str, entry: dict, record: dict, root: str) -> dict:
        """A unit page's circuits: its inputs and outputs shown (None where left out,
        with the reason), or nothing at all for a record built before circuits."""
        summary = record.get("circuits")
        if not summary:
            return {}
        view = {"set_aside": summary["set_aside"], "why": summary.get("missing", {}).get(layer, {})}
        for key in ("inputs", "outputs"):
            found = entry.get(key)
            view[key] = None if found is None else {
                sign: self.links([e for e in found if e["sign"] == sign], "input" if key == "inputs" else "output", root)
                for sign in ("excitatory", "inhibitory")}
        return view


def circuit_fields(entry: dict) -> dict:
    """A filter's `inputs` and `outputs` for atlas.json, as the record keeps them."""
    return {key: entry[key] for key in ("inputs", "outputs") if key in entry}
