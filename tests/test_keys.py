"""A cache key is a promise that the same key means the same pixels. Every
setting of every part a picture is made of (parameterization, transforms,
optimizer, objective, method) must change the key; a field added to a part
without being added to its key fails here."""

from __future__ import annotations

import dataclasses

import pytest

from generator.optvis.methods import FOURIER, METHODS, Method
from generator.optvis.objectives import Diversity, NearPhoto, Scaled, Sum, channel, neuron
from generator.optvis.optimizers import Adam, NormalizedAscent
from generator.optvis.param import FourierParam, PhotoSeeded, PixelParam
from generator.optvis.transforms import NoTransform, RandomAffine

# Fields that do not reach the pixels, or reach the key another way: said here, with why.
NOT_IN_OWN_KEY = {
    (Method, "summary"): "words shown to people",
    (Method, "preprocess"): "the network's preprocessing mode joins the key in keys.filter_params where it is on",
}


def other_value(value):
    """A value of the same kind as `value`, unlike it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, tuple):
        return tuple(other_value(v) for v in value)
    if value is None:
        return 64
    if dataclasses.is_dataclass(value):
        changeable = [f for f in dataclasses.fields(value) if f.init]
        if changeable:
            return dataclasses.replace(value, **{changeable[0].name: other_value(getattr(value, changeable[0].name))})
    return {PixelParam(): FourierParam(), NoTransform(): RandomAffine(), NormalizedAscent(): Adam(),
            channel(): neuron()}.get(value, channel())


# Each part in a setting where every field of it matters (coarse steps on, so
# their size matters; a local objective, so the receptive-field window does).
PARTS = [
    (FourierParam(), lambda part: part.key()),
    (PixelParam(), lambda part: part.key()),
    (Adam(), lambda part: part.key()),
    (NormalizedAscent(), lambda part: part.key()),
    (RandomAffine(pad=4.0), lambda part: part.key()),
    (NoTransform(), lambda part: part.key()),
    (Diversity(), lambda part: part.key()),
    (NearPhoto(), lambda part: part.key()),
    (PhotoSeeded(FourierParam(), "a photo's sha256"), lambda part: part.key()),
    (Scaled(0.5, channel()), lambda part: part.key()),
    (Sum(channel(), neuron()), lambda part: part.key()),
    (dataclasses.replace(FOURIER, coarse_steps=64, canvas=8), lambda part: part.key(neuron())),
]


@pytest.mark.parametrize("part, key", PARTS, ids=lambda p: type(p).__name__ if not callable(p) else "")
def test_every_field_of_a_part_is_in_its_key(part, key):
    cls = type(part)
    missing = []
    for f in dataclasses.fields(part):
        if (cls, f.name) in NOT_IN_OWN_KEY:
            continue
        changed = dataclasses.replace(part, **{f.name: other_value(getattr(part, f.name))})
        if key(changed) == key(part):
            missing.append(f.name)
    assert missing == [], (f"{cls.__name__}: {missing} change the pictures but not the key; put them in "
                           f"{cls.__name__}.key() (or, if they never reach the pixels, in NOT_IN_OWN_KEY with why)")


def test_every_part_class_in_use_is_checked():
    """A new kind of part (a parameterization, transform, optimizer) joins PARTS."""
    checked = {type(part) for part, _ in PARTS}
    in_use = {type(getattr(method, name)) for method in METHODS.values() for name in ("param", "optimizer", "transform")}
    assert in_use <= checked, in_use - checked


def test_a_field_missing_from_a_key_is_caught():
    """The check itself can fail: a part whose key leaves a field out."""

    @dataclasses.dataclass(frozen=True)
    class Leaky:
        lr: float = 0.1
        momentum: float = 0.9

        def key(self):
            return {"lr": self.lr}

    changed = dataclasses.replace(Leaky(), momentum=other_value(0.9))
    assert changed.key() == Leaky().key()
    with pytest.raises(AssertionError, match="momentum"):
        test_every_field_of_a_part_is_in_its_key(Leaky(), lambda part: part.key())
