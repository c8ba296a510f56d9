"""Feature-visualization methods as named presets of small parts:
a parameterization, transforms, whether the image goes through the
network's input preprocessing, an optimizer and a number of steps. A method's `key` goes into every cache key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import AtlasError
from .objectives import Objective, channel
from .optimizers import Adam, NormalizedAscent
from .param import FourierParam, PixelParam
from .transforms import NoTransform, RandomAffine

DEFAULT_METHOD = "fourier"


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    param: object
    optimizer: object
    steps: int
    transform: object = field(default_factory=NoTransform)
    # Feed the image (RGB in [0, 1]) through the network's own preprocessing;
    # off for the seed, whose raw image goes to the network as it is.
    preprocess: bool = False
    # Maximize the filter's output before its ReLU: its gradient never dies,
    # even where the filter is silent at the start (Lucid's "pre_relu" layers).
    pre_activation: bool = False
    # Optimize a picture of at most this many pixels a side, warped up to the
    # network's input each step (Lucent's 128 px upsampled to 224); None: the input's size.
    canvas: int | None = None
    # For this many first steps, ReLUs whose gradient is zero for an image let it
    # through towards their active range (Lucid's redirected ReLU gradient), so a
    # unit whose input is silent on the random start still gets a gradient.
    redirect_steps: int = 0
    # Coarse to fine (as DeepDream's octaves): the first `coarse_steps` show the
    # network the picture at `coarse_size` of its input's height and width (or,
    # with `coarse_crop`, a random part of it that size, at full resolution),
    # where the network's work is about coarse_size squared; the later steps
    # the whole input. Measured on the real MobileNet, neither gives the same
    # score for less time than fewer steps do (see the README): sweep variants only.
    coarse_size: float = 1.0
    coarse_steps: int = 0
    coarse_crop: bool = False
    # Optimize a local objective (the neuron's) on the smallest crop of the input
    # that holds its receptive field, set in grey: the same unit, less work.
    field_window: bool = False

    def coarse_shape(self, input_shape: tuple[int, int, int]) -> tuple[int, int]:
        """The network's input height and width during the coarse steps."""
        height, width, _ = input_shape
        return max(1, round(height * self.coarse_size)), max(1, round(width * self.coarse_size))

    def canvas_shape(self, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        height, width, channels = input_shape
        if self.canvas is None or self.canvas >= max(height, width):
            return input_shape
        factor = self.canvas / max(height, width)
        return (max(1, round(height * factor)), max(1, round(width * factor)), channels)

    def with_steps(self, steps: int | None) -> "Method":
        return self if steps is None else replace(self, steps=steps)

    def key(self, objective: Objective | None = None) -> dict:
        """The method's parts' keys, with the objective's (the channel's by default)."""
        key = {"name": self.name, "iters": self.steps}
        key.update(self.optimizer.key(), **self.param.key(), **self.transform.key())
        key.update(objective_key(objective or channel(), self.pre_activation))
        if self.canvas is not None:
            key["canvas"] = self.canvas
        if self.redirect_steps:
            key["redirected_relu_steps"] = self.redirect_steps
        if self.field_window and objective is not None and objective.local:
            key["window"] = "receptive field"
        if self.coarse_steps:
            key["coarse"] = {"size": self.coarse_size, "steps": self.coarse_steps,
                             "at": "a random part" if self.coarse_crop else "the whole picture, scaled down"}
        return key


def objective_key(objective: Objective, pre_activation: bool) -> dict:
    what = objective.key()
    if what == "mean":  # the channel: keyed as before objectives were parts, so old caches stay valid
        return {"objective": "mean before activation"} if pre_activation else {}
    return {"objective": what, "unit": "before activation" if pre_activation else "after activation"}


# One random jitter (+-8 px), scale (0.9-1.1) and rotation (+-10 degrees) per step.
SINGLE_WARP = RandomAffine(jitter=8.0, scale=(0.9, 1.1), degrees=10.0)
# Lucid's standard_transforms (pad 12, jitter 8, scale 0.9-1.1, rotate +-10 degrees,
# jitter 4) as one warp: the view reaches 12 px past the canvas, moves up to 12 px.
LUCID_TRANSFORMS = RandomAffine(jitter=12.0, scale=(0.9, 1.1), degrees=10.0, pad=12.0)

# The default, measured on the real ImageNet MobileNet (make quality, make
# quality-sweep; see the README): 128 steps is the knee of score against
# seconds. In 128 steps at 0.05 the mean colour could move only a quarter as
# far as in Lucid's 512, too little to saturate a colour unit: it gets 4 times
# the gain. A spectrum falling as 1/f^1.25 scored as well as 1/f with half the
# high-frequency power. Redirected ReLU gradients for the first 16 steps (as
# Lucid does) free depthwise filters whose one input channel starts silent.
FOURIER = Method(
    name="fourier",
    summary="Lucid-style: decorrelated Fourier image through a sigmoid, random "
    "jitter/scale/rotation each step, the network's preprocessing, Adam",
    param=FourierParam(sd=0.01, decay_power=1.25, dc_gain=4.0),
    optimizer=Adam(lr=0.05),
    steps=128,
    transform=SINGLE_WARP,
    preprocess=True,
    pre_activation=True,
    redirect_steps=16,
    field_window=True,
)

METHODS = {
    "seed": Method(
        name="seed",
        summary="the original loop: raw pixels, normalized gradient steps of 10, no preprocessing",
        param=PixelParam(),
        optimizer=NormalizedAscent(step=10.0),
        steps=50,
    ),
    "fourier": FOURIER,
    "draft": replace(FOURIER, name="draft", steps=64,
                     summary="the default's parts in half the steps: a quick look, at about 60% of its cost"),
    "best": replace(FOURIER, name="best", steps=512,
                    summary="the default's parts in four times the steps: the highest measured score"),
}


def get_method(name: str, steps: int | None = None) -> Method:
    try:
        method = METHODS[name]
    except KeyError:
        raise AtlasError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}") from None
    if steps is not None and steps < 1:
        raise AtlasError(f"--iters must be at least 1, got {steps}")
    return method.with_steps(steps)
