"""`--precision auto`: where bfloat16 is native, a network gets the format that
runs it faster on this machine, timed once and remembered in the cache."""

from __future__ import annotations

import json

import pytest

import generator.optvis.engine as engine
import generator.precision as precision
from generator.networks import load_model
from generator.optvis.engine import LayerEngine
from tests.conftest import read_record

BUILD = ("--iters", "2", "--layers", "block1_conv2,block2_conv1")


def on_a_bfloat16_machine(monkeypatch, ms) -> list:
    """Pretend the CPU computes bfloat16 natively and the tiny model is worth
    timing; the timing reports `ms`, or raises it (None: timing fails the
    test). Returns the layers timed."""
    timed = []

    def fake_timing(keras_model, layer, input_shape):
        assert ms is not None, "nothing should have been timed"
        timed.append(layer)
        if isinstance(ms, Exception):
            raise ms
        return dict(ms)

    monkeypatch.setattr(engine, "default_precision", lambda: "bfloat16")
    monkeypatch.setattr(precision, "MEASURE_FROM_FLOPS", 0)
    monkeypatch.setattr(precision, "step_milliseconds", fake_timing)
    return timed


def picture_precisions(record: dict) -> set:
    return {image["precision"] for layer in record["layers"] for entry in layer["entries"] for image in entry["images"]}


@pytest.mark.parametrize("ms, chosen", [({"float32": 1.0, "bfloat16": 2.5}, "float32"),
                                        ({"float32": 2.5, "bfloat16": 1.0}, "bfloat16")])
def test_auto_takes_the_faster_format_timed_once_for_the_network(atlas, tiny_model, tmp_path, monkeypatch, ms, chosen):
    timed = on_a_bfloat16_machine(monkeypatch, ms)
    code, out, _ = atlas("build", "--model", tiny_model, *BUILD, "--cache-dir", tmp_path / "c")
    assert code == 0
    assert timed == ["block2_conv1"]  # the last conv layer: the whole network up to it
    assert f"precision: {chosen} (float32 {ms['float32']:.1f}, bfloat16 {ms['bfloat16']:.1f} ms" in out
    record = read_record(tmp_path / "c")
    assert record["settings"]["precision"] == chosen and picture_precisions(record) == {chosen}

    # The next build reads the choice back: no timing, same keys, nothing computed.
    code, out, _ = atlas("build", "--model", tiny_model, *BUILD, "--cache-dir", tmp_path / "c")
    assert code == 0 and timed == ["block2_conv1"] and "precision:" not in out
    assert read_record(tmp_path / "c")["computed"]["filters"] == 0


# What precision.machine() says on the CPU kinds CI meets: the suite must pass on each.
CPU_KINDS = {
    "avx2-only": {"cpu": "AMD EPYC 7B13", "bfloat16_flags": []},
    "avx512-bf16": {"cpu": "AMD EPYC 9B14", "bfloat16_flags": ["avx512_bf16"]},
    "amx": {"cpu": "Intel(R) Xeon(R) Platinum 8481C", "bfloat16_flags": ["amx_bf16", "avx512_bf16"]},
}


def another_machine(this: dict) -> dict:
    """A machine unlike `this` in every field a choice holds for, whatever `this` is."""
    return {**this, "cpu": f"not {this['cpu']}", "bfloat16_flags": [] if this["bfloat16_flags"] else ["amx_bf16"],
            "cores": this["cores"] + 1}


@pytest.mark.parametrize("kind", sorted(CPU_KINDS))
def test_a_broken_choice_or_another_machine_is_timed_again(atlas, tiny_model, tmp_path, monkeypatch, kind):
    this_machine = {**precision.machine(), **CPU_KINDS[kind]}
    monkeypatch.setattr(precision, "machine", lambda: this_machine)
    timed = on_a_bfloat16_machine(monkeypatch, {"float32": 1.0, "bfloat16": 2.0})
    build = ("build", "--model", tiny_model, *BUILD, "--quiet", "--cache-dir", tmp_path / "c")
    assert atlas(*build)[0] == 0 and len(timed) == 1
    (choice,) = (tmp_path / "c" / "precision").glob("*.json")
    choice.write_text('{"precision": "float16"}')
    assert atlas(*build)[0] == 0 and len(timed) == 2
    assert json.loads(choice.read_text())["precision"] == "float32"

    monkeypatch.setattr(precision, "machine", lambda: another_machine(this_machine))
    assert atlas(*build)[0] == 0 and len(timed) == 3
    assert len(list((tmp_path / "c" / "precision").glob("*.json"))) == 2


def test_a_failed_timing_keeps_the_hardwares_choice_and_stores_nothing(atlas, tiny_model, tmp_path, monkeypatch):
    on_a_bfloat16_machine(monkeypatch, RuntimeError("no bfloat16 kernel for MyLayer\nmore detail"))
    code, out, _ = atlas("build", "--model", tiny_model, *BUILD, "--cache-dir", tmp_path / "c")
    assert code == 0
    assert "precision: bfloat16, the hardware's choice (timing failed: no bfloat16 kernel for MyLayer)" in out
    assert read_record(tmp_path / "c")["settings"]["precision"] == "bfloat16"
    assert not list((tmp_path / "c" / "precision").glob("*.json"))


def test_a_cache_made_before_in_bfloat16_is_used_when_float32_turns_out_faster(atlas, tiny_model, tmp_path, monkeypatch):
    """A user's cache from before the choice was timed (auto was bfloat16 on
    this machine) stays valid: its pictures are taken, not recomputed."""
    assert atlas("build", "--model", tiny_model, *BUILD, "--quiet", "--precision", "bfloat16",
                 "--cache-dir", tmp_path / "c")[0] == 0
    on_a_bfloat16_machine(monkeypatch, {"float32": 1.0, "bfloat16": 2.0})

    def no_compute(*args, **kwargs):
        raise AssertionError("the bfloat16 pictures in the cache must be used")

    monkeypatch.setattr(LayerEngine, "run", no_compute)
    assert atlas("build", "--model", tiny_model, *BUILD, "--quiet", "--cache-dir", tmp_path / "c")[0] == 0
    record = read_record(tmp_path / "c")
    assert record["settings"]["precision"] == "float32" and picture_precisions(record) == {"bfloat16"}


def test_without_native_bfloat16_auto_is_float32_untimed(atlas, tiny_model, tmp_path, monkeypatch):
    on_a_bfloat16_machine(monkeypatch, None)
    monkeypatch.setattr(engine, "default_precision", lambda: "float32")
    assert atlas("build", "--model", tiny_model, *BUILD, "--quiet", "--cache-dir", tmp_path / "c")[0] == 0
    assert read_record(tmp_path / "c")["settings"]["precision"] == "float32"


def test_a_network_too_small_to_be_worth_timing_keeps_the_hardwares_choice(atlas, tiny_model, tmp_path, monkeypatch):
    on_a_bfloat16_machine(monkeypatch, None)
    monkeypatch.setattr(precision, "MEASURE_FROM_FLOPS", 50e6)  # the tiny model has about 0.1 MFLOP
    assert atlas("build", "--model", tiny_model, *BUILD, "--quiet", "--cache-dir", tmp_path / "c")[0] == 0
    assert read_record(tmp_path / "c")["settings"]["precision"] == "bfloat16"


def test_the_timing_runs_both_formats_on_the_network(tiny_model):
    model = load_model(str(tiny_model), tiny_model)
    ms = precision.step_milliseconds(model, "block2_conv1", (16, 16, 3))
    assert set(ms) == {"float32", "bfloat16"} and all(t > 0 for t in ms.values())
