"""The build's settings: everything, besides the network, that determines the pictures."""

from __future__ import annotations

from dataclasses import dataclass

from . import networks as models
from .optvis.methods import DEFAULT_METHOD, Method, get_method
from .optvis.views import DEFAULT_DIVERSITY, DEFAULT_VIEWS, View, check_diversity, make_view


@dataclass(frozen=True)
class Settings:
    """Everything, besides the network, that determines the pictures."""

    model: str = models.DEFAULT_MODEL
    weights: str | None = None
    methods: tuple[str, ...] = (DEFAULT_METHOD,)  # the first one is shown in the grids
    iters: int | None = None  # None: each method's own number of steps
    seed: int = 0
    precision: str = "auto"  # resolved to float32 or bfloat16 for the network and machine (precision.py)
    preprocess: str | None = None  # None: the built-in model's own, or guessed from the model file
    input_size: tuple[int, int] | None = None  # None: the built-in model's default, or the file's own
    views: tuple[str, ...] = DEFAULT_VIEWS  # what each filter shows: channel, neuron, negative, diversity
    diversity: int = DEFAULT_DIVERSITY  # pictures in the diversity view
    custom_objects: str | None = None  # a .py file defining the model file's own layers and functions
    unsafe_deserialization: bool = False  # let Keras load a Lambda layer's stored Python code

    def method(self, name: str) -> Method:
        return get_method(name, self.iters)

    def view(self, name: str) -> View:
        return make_view(name, check_diversity(self.diversity))
