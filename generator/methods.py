"""Feature-visualization methods as named presets of small parts:
a parameterization, transforms, whether the image goes through the
network's input preprocessing, an optimizer and a number of steps. A method's `key` goes into every cache key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import AtlasError
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

    def with_steps(self, steps: int | None) -> "Method":
        return self if steps is None else replace(self, steps=steps)

    def key(self) -> dict:
        key = {"name": self.name, "iters": self.steps}
        key.update(self.optimizer.key(), **self.param.key(), **self.transform.key())
        if self.pre_activation:
            key["objective"] = "mean before activation"
        return key


METHODS = {
    "seed": Method(
        name="seed",
        summary="the original loop: raw pixels, normalized gradient steps of 10, no preprocessing",
        param=PixelParam(),
        optimizer=NormalizedAscent(step=10.0),
        steps=50,
    ),
    "fourier": Method(
        name="fourier",
        summary="Lucid-style: decorrelated Fourier image through a sigmoid, random "
        "jitter/scale/rotation each step, the network's preprocessing, Adam",
        param=FourierParam(sd=0.01, decay_power=1.0),
        optimizer=Adam(lr=0.05),
        steps=64,
        transform=RandomAffine(jitter=8.0, scale=(0.9, 1.1), degrees=10.0),
        preprocess=True,
        pre_activation=True,
    ),
}


def get_method(name: str, steps: int | None = None) -> Method:
    try:
        method = METHODS[name]
    except KeyError:
        raise AtlasError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}") from None
    if steps is not None and steps < 1:
        raise AtlasError(f"--iters must be at least 1, got {steps}")
    return method.with_steps(steps)
