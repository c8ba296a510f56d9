"""What a unit page shows of its circuits: each listed input and output linked
to its own page, with its channel picture and its kernel as a small red and
blue heat map (red excites, blue inhibits), as in the Circuits figures.

The heat maps of one section share one colour scale, so that a strong link
looks stronger than a weak one. They are drawn as inline SVG, made here as
text: a page of 18 links takes a few hundred cells, and a 4,224-filter
atlas renders them in seconds.
"""

from __future__ import annotations

from markupsafe import Markup

SIDE = 48  # pixels on a heat map's longer side, whatever the kernel's size


def colour(value: float, scale: float) -> str:
    """White at zero, red for positive, blue for negative, full at `scale`."""
    t = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    fade = round(255 * (1 - t))
    return f"#ff{fade:02x}{fade:02x}" if value > 0 else f"#{fade:02x}{fade:02x}ff"


def heat_map(kernel: list[list[float]], scale: float, label: str) -> Markup:
    """A kernel as an inline SVG, one square per position."""
    rows, cols = len(kernel), len(kernel[0])
    side, size = max(rows, cols), SIDE
    cells = "".join(f'<rect x="{x}" y="{y}" width="1" height="1" fill="{colour(v, scale)}"/>'
                    for y, row in enumerate(kernel) for x, v in enumerate(row) if v)
    return Markup(f'<svg class="heat" viewBox="0 0 {cols} {rows}" width="{round(size * cols / side)}" '
                  f'height="{round(size * rows / side)}" shape-rendering="crispEdges" role="img" '
                  f'aria-label="{Markup.escape(label)}"><rect width="{cols}" height="{rows}" fill="#fff"/>'
                  f'{cells}</svg>')


def shown_links(entries: list[dict], pages: dict, what: str) -> list[dict]:
    """Each link as the page shows it: its unit's page and channel thumbnail where
    this atlas has them (else None), and its heat map."""
    scale = max((abs(v) for e in entries for row in e["kernel"] for v in row), default=0.0)
    shown = []
    for entry in entries:
        page = pages.get((entry["layer"], entry["filter"]))
        channel = [p for p in page.pictures if p.view == "channel"] if page else []
        shown.append({**{k: entry[k] for k in ("layer", "filter", "sign", "weight")},
                      "page": page.path if page else None,
                      "thumb": (channel or page.pictures)[0].thumb if page else None,
                      "heat": heat_map(entry["kernel"], scale,
                                       f"{what} {entry['layer']} filter {entry['filter']}: {entry['sign']}, "
                                       f"kernel sum {entry['weight']:.3g}")})
    return shown


def circuits_view(layer: str, entry: dict, record: dict, pages: dict) -> dict:
    """A unit page's circuits: its inputs and outputs shown (None where left out,
    with the reason), or nothing at all for a record built before circuits."""
    summary = record.get("circuits")
    if not summary:
        return {}
    missing = summary.get("missing", {}).get(layer, {})
    view = {"set_aside": summary["set_aside"], "why": missing}
    for key in ("inputs", "outputs"):
        found = entry.get(key)
        view[key] = None if found is None else {
            sign: shown_links([e for e in found if e["sign"] == sign], pages, "input" if key == "inputs" else "output")
            for sign in ("excitatory", "inhibitory")}
    return view


def circuit_fields(entry: dict) -> dict:
    """A filter's `inputs` and `outputs` for atlas.json, as the record keeps them."""
    return {key: entry[key] for key in ("inputs", "outputs") if key in entry}
