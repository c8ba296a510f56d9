"""Views: what a filter's unit page shows, each an objective of the unit.

Distill's Feature Visualization appendix and OpenAI Microscope show a unit
by several pictures: the channel (what excites the whole feature map), the
neuron (one position: one receptive field), several diverse pictures (the
unit's other faces), and the negative (what it most dislikes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import AtlasError
from .methods import Method
from .objectives import Objective, accentuation, channel, diversity, neuron
from .param import PhotoSeeded

DEFAULT_VIEWS = ("channel",)
VIEW_NAMES = ("channel", "neuron", "negative", "diversity")  # the views made from noise
# Views that start from the filter's top photos (--images): `unit` includes them
# only where photos are given (cli.py).
SEEDED_VIEWS = ("accent",)
UNIT_VIEWS = VIEW_NAMES + SEEDED_VIEWS
DEFAULT_DIVERSITY = 4
# How hard the diverse pictures push apart, against the channel they each still
# maximize, in units of the channel's own size (objectives.Diversity). Measured
# on the real MobileNet's conv_pw_8 (3 filters, 4 pictures): 0.1 left them
# almost as alike as independent seeds (Gram similarity 0.90-0.99 against
# 0.99); 0.3 brought it to 0.52-0.67 at 85-95% of their channel score; 1.0 to
# 0.33-0.45 but at half the score for some.
DIVERSITY_WEIGHT = 0.3
# The diverse pictures survey the unit's other faces in a row of small pictures;
# at half the method's steps each still drives the unit past the best photo
# (make quality), and the unit page costs under 5 times the channel view.
DIVERSITY_STEPS_SHARE = 0.5
# Feature accentuation (Hamblin, Fel et al. 2024): each of the filter's top
# ACCENT_PHOTOS photos, optimized from itself to raise the channel, held near
# itself by objectives.NearPhoto at ACCENT_WEIGHT (0: the channel alone, 1: the
# photo unchanged), in features ACCENT_DEPTH of the way through the network's
# conv layers and, ACCENT_PIXELS times as much, in pixels. Measured on the
# real MobileNet (6 units, 18 photos; docs/accentuation.md): at 0.8 and 0.9
# every unit rose, but 11 and 8 of the 18 accentuations were no longer
# nearest their own photo to an observer network; at 0.95 one did not rise;
# at 0.93 every one rose (median x1.4) and 15 of 18 stayed nearest their
# photo, moved by 5 levels (median).
ACCENT_PHOTOS = 3
ACCENT_WEIGHT = 0.93
ACCENT_DEPTH = 0.15
ACCENT_PIXELS = 1.0
ACCENT_STEPS_SHARE = 1.0


@dataclass(frozen=True)
class View:
    name: str
    objective: Objective
    steps_share: float = 1.0  # of the method's steps
    seeded: bool = False  # each picture starts from a photo (param.PhotoSeeded), not from noise

    @property
    def group(self) -> int:
        """Pictures per filter, optimized together."""
        return self.objective.group

    def render_method(self, method: Method, photo_sha256: str = "") -> Method:
        """The method as this view renders with it: its steps are in the picture's
        key; a seeded view's parameterization starts from the photo `photo_sha256`
        (without the redirected gradient, for a photo is not a silent start)."""
        if self.seeded:
            method = replace(method, param=PhotoSeeded(method.param, photo_sha256), redirect_steps=0)
        if self.steps_share == 1.0:
            return method
        return method.with_steps(max(1, round(method.steps * self.steps_share)))


def make_view(name: str, group: int = DEFAULT_DIVERSITY) -> View:
    if name == "channel":
        return View(name, channel())
    if name == "neuron":
        return View(name, neuron())
    if name == "negative":
        return View(name, -channel())
    if name == "diversity":
        return View(name, channel() + DIVERSITY_WEIGHT * diversity(group), DIVERSITY_STEPS_SHARE)
    if name == "accent":
        return View(name, accentuation(ACCENT_WEIGHT, ACCENT_PHOTOS, ACCENT_DEPTH, ACCENT_PIXELS),
                    ACCENT_STEPS_SHARE, seeded=True)
    raise AtlasError(f"unknown view {name!r}; choose from: {', '.join(UNIT_VIEWS)}, or unit for all")


def parse_views(spec: str) -> tuple[str, ...]:
    """'channel,neuron' -> ('channel', 'neuron'); 'unit' means every view."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["unit"]:
        return UNIT_VIEWS
    if not names or len(set(names)) != len(names):
        raise AtlasError(f"cannot parse --views {spec!r}: expected names like channel,neuron or unit")
    for name in names:
        make_view(name)  # unknown names fail here
    return tuple(names)


def check_diversity(group: int) -> int:
    if group < 2:
        raise AtlasError(f"--diversity must be at least 2 (pictures pushed apart), got {group}")
    return group
