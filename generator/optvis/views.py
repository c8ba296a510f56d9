"""Views: what a filter's unit page shows, each an objective of the unit.

Distill's Feature Visualization appendix and OpenAI Microscope show a unit
by several pictures: the channel (what excites the whole feature map), the
neuron (one position: one receptive field), several diverse pictures (the
unit's other faces), and the negative (what it most dislikes).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AtlasError
from .methods import Method
from .objectives import Objective, channel, diversity, neuron

DEFAULT_VIEWS = ("channel",)
VIEW_NAMES = ("channel", "neuron", "negative", "diversity")
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


@dataclass(frozen=True)
class View:
    name: str
    objective: Objective
    steps_share: float = 1.0  # of the method's steps

    @property
    def group(self) -> int:
        """Pictures per filter, optimized together."""
        return self.objective.group

    def render_method(self, method: Method) -> Method:
        """The method as this view renders with it: its steps are in the picture's key."""
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
    raise AtlasError(f"unknown view {name!r}; choose from: {', '.join(VIEW_NAMES)}, or unit for all")


def parse_views(spec: str) -> tuple[str, ...]:
    """'channel,neuron' -> ('channel', 'neuron'); 'unit' means every view."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["unit"]:
        return VIEW_NAMES
    if not names or len(set(names)) != len(names):
        raise AtlasError(f"cannot parse --views {spec!r}: expected names like channel,neuron or unit")
    for name in names:
        make_view(name)  # unknown names fail here
    return tuple(names)


def check_diversity(group: int) -> int:
    if group < 2:
        raise AtlasError(f"--diversity must be at least 2 (pictures pushed apart), got {group}")
    return group
