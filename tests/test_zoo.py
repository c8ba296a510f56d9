"""Several models in one atlas, and builds spread over machines: shards that
merge into the same site a single build makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.networks import forward_flops
from generator.optvis.engine import LayerEngine
from generator.optvis.methods import DEFAULT_METHOD, METHODS
from generator.shards import assign_shards, work_units
from generator.tf_quiet import import_keras
from tests.conftest import make_tiny_model, read_record
from tests.test_faults import tree
from tests.test_pipeline import broken_links


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("other") / "other.keras", seed=1)


def render(atlas, cache: Path, site: Path):
    code, _, err = atlas("render", "--cache-dir", cache, "--site-dir", site)
    assert code == 0, err


def test_two_models_in_one_command_and_one_site(atlas, tiny_model, other_model, tmp_path):
    code, out, err = atlas("build", "--model", tiny_model, "--model", other_model, "--cache-dir", tmp_path / "cache",
                           "--quiet", "--iters", 2)
    assert code == 0, err
    assert "tiny: 15 filters of 3 layers" in out and "other: 15 filters of 3 layers" in out
    render(atlas, tmp_path / "cache", tmp_path / "site")
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert 'href="other/index.html"' in index and 'href="tiny/index.html"' in index
    assert (site / "other" / "filters" / "block2_conv1" / "5.html").is_file()
    assert (site / "tiny" / "filters" / "block2_conv1" / "5.html").is_file()
    manifest = json.loads((site / "atlas.json").read_text())
    assert [m["model"] for m in manifest["models"]] == ["other", "tiny"]
    jump = (site / "atlas-index.js").read_text()
    assert '"path": "other/index.html"' in jump and '"path": "tiny/index.html"' in jump
    assert broken_links(site) == []


def test_two_different_models_with_one_file_name_both_get_their_pages(atlas, tiny_model, other_model, tmp_path):
    """runs/a/net.keras and runs/b/net.keras: the second gets the name plus its
    digest, said in one line; each keeps its name when rebuilt."""
    import hashlib
    import shutil

    a, b = tmp_path / "runs" / "a" / "net.keras", tmp_path / "runs" / "b" / "net.keras"
    for source, target in ((tiny_model, a), (other_model, b)):
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    second = f"net-{hashlib.sha256(b.read_bytes()).hexdigest()[:8]}"
    cache, site = tmp_path / "cache", tmp_path / "site"
    build = lambda model, *extra: atlas("build", "--model", model, "--cache-dir", cache, "--iters", 2, *extra)
    assert build(a, "--quiet")[1].splitlines() == [f"net: 15 filters of 3 layers ready in {cache}"]
    code, out, err = build(b)
    assert code == 0, err
    notes = [line for line in out.splitlines() if "another model" in line]
    assert notes == [f"net.keras: another model in {cache} is called net; this one "
                     f"(sha256 {hashlib.sha256(b.read_bytes()).hexdigest()[:12]}) is {second}"]
    assert out.splitlines()[-1] == f"{second}: 15 filters of 3 layers ready in {cache}"
    for model, name in ((b, second), (a, "net"), (b, second)):  # rebuilt, each keeps its name
        assert build(model, "--quiet")[1].startswith(f"{name}: 15 filters")
    assert sorted(p.name for p in (cache / "builds").iterdir()) == [f"{second}.json", "net.json"]
    render(atlas, cache, site)
    for name in ("net", second):
        assert len(list((site / name / "filters").rglob("*.html"))) == 15
        assert len(list((site / name / "layers").glob("*.html"))) == 3
    index = (site / "index.html").read_text()
    assert 'href="net/index.html"' in index and f'href="{second}/index.html"' in index
    manifest = json.loads((site / "atlas.json").read_text())
    assert {m["model"]: m["network_sha256"] for m in manifest["models"]} == {
        "net": hashlib.sha256(a.read_bytes()).hexdigest(), second: hashlib.sha256(b.read_bytes()).hexdigest()}
    assert broken_links(site) == []


def test_rebuilding_one_model_leaves_the_others_pages_alone(atlas, tiny_model, other_model, tmp_path):
    cache, site = tmp_path / "cache", tmp_path / "site"
    for model in (tiny_model, other_model):
        assert atlas("build", "--model", model, "--cache-dir", cache, "--quiet", "--iters", 2)[0] == 0
    render(atlas, cache, site)
    stamps = lambda folder: {p: p.stat().st_mtime_ns for p in (site / folder).rglob("*") if p.is_file()}
    other_before, tiny_before = stamps("other"), stamps("tiny")
    assert atlas("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 2, "--seed", 7)[0] == 0
    render(atlas, cache, site)
    assert stamps("other") == other_before
    assert stamps("tiny") != tiny_before


def test_shards_built_apart_merge_into_the_single_build_site(atlas, tiny_model, tmp_path, monkeypatch):
    """Two shards, as two machines build them (how the work is dealt out over
    more shards is tested on its own: test_shards_of_vgg16s_full_atlas_are_balanced_by_flops)."""
    args = ["--model", tiny_model, "--quiet", "--iters", 3, "--method", "fourier,seed"]
    assert atlas("build", *args, "--cache-dir", tmp_path / "single")[0] == 0
    render(atlas, tmp_path / "single", tmp_path / "single-site")

    outputs = []
    for k in range(2):
        code, out, err = atlas("build", *args, "--cache-dir", tmp_path / f"shard{k}", "--shard", f"{k}/2")
        assert code == 0, err
        outputs.append(out)
    assert all("of the estimated work" in out for out in outputs)
    parts = [tmp_path / f"shard{k}" for k in range(2)]
    code, out, err = atlas("merge", *parts, "--cache-dir", tmp_path / "merged")
    assert code == 0 and "merged 2 caches" in out, err

    def no_compute(*a, **kw):
        raise AssertionError("the merged cache must hold every picture")

    monkeypatch.setattr(LayerEngine, "run", no_compute)
    assert atlas("build", *args, "--cache-dir", tmp_path / "merged")[0] == 0
    render(atlas, tmp_path / "merged", tmp_path / "merged-site")
    assert tree(tmp_path / "merged-site") == tree(tmp_path / "single-site")
    assert tree(tmp_path / "merged" / "filters") == tree(tmp_path / "single" / "filters")


def test_shards_of_vgg16s_full_atlas_are_balanced_by_flops():
    keras = import_keras()
    vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(96, 96, 3))
    flops = forward_flops(vgg16)
    wanted = {name: list(range(vgg16.get_layer(name).filters)) for name in flops}
    units = work_units({(DEFAULT_METHOD, "channel"): METHODS[DEFAULT_METHOD].steps}, flops, wanted)
    assert sum(len(u.filters) for u in units) == 4224
    for count in (2, 4, 8, 16):
        loads = [sum(u.cost for u in shard) for shard in assign_shards(units, count)]
        assert max(loads) <= 1.15 * (sum(loads) / count), (count, loads)
    assert assign_shards(units, 4) == assign_shards(list(reversed(units)), 4)  # the same plan everywhere


@pytest.mark.parametrize("shard, message", [
    ("3", "cannot parse --shard '3': expected K/N"),
    ("4/4", "--shard 4/4: K must be 0 to N-1"),
    ("-1/4", "--shard -1/4: K must be 0 to N-1"),
])
def test_bad_shards(atlas, tiny_model, tmp_path, shard, message):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "c", f"--shard={shard}")
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_merging_something_that_is_no_cache(atlas, tmp_path):
    (tmp_path / "nothing").mkdir()
    code, _, err = atlas("merge", tmp_path / "nothing", "--cache-dir", tmp_path / "c")
    assert code == 1 and "is not an atlas cache" in err


@pytest.mark.parametrize("made, machine", [("float32", "bfloat16"), ("bfloat16", "float32")])
def test_a_cache_made_on_another_kind_of_cpu_is_used_as_it_is(atlas, tiny_model, tmp_path, monkeypatch, made, machine):
    """Shards made on one kind of machine, merged and built on the other, compute nothing."""
    import generator.optvis.engine as engine

    args = ["--model", tiny_model, "--quiet", "--iters", 3, "--views", "channel,diversity", "--diversity", "2",
            "--layers", "block2_conv1"]
    assert atlas("build", *args, "--precision", made, "--cache-dir", tmp_path / "part")[0] == 0
    assert atlas("merge", tmp_path / "part", "--cache-dir", tmp_path / "merged")[0] == 0
    monkeypatch.setattr(engine, "default_precision", lambda: machine)

    def no_compute(*a, **kw):
        raise AssertionError(f"pictures made in {made} must be found by a default build on a {machine} machine")

    with monkeypatch.context() as m:
        m.setattr(LayerEngine, "run", no_compute)
        assert atlas("build", *args, "--cache-dir", tmp_path / "merged")[0] == 0
    record = read_record(tmp_path / "merged")
    assert record["settings"]["precision"] == machine
    assert {i["precision"] for l in record["layers"] for e in l["entries"] for i in e["images"]} == {made}
    render(atlas, tmp_path / "merged", tmp_path / "site")
    page = (tmp_path / "site" / "tiny" / "filters" / "block2_conv1" / "0.html").read_text()
    assert f"made in {made}" in page
    manifest = json.loads((tmp_path / "site" / "atlas.json").read_text())
    assert manifest["models"][0]["blocks"][0]["layers"][0]["filters"][0]["pictures"][0]["precision"] == made

    # Asked for by name, the machine's own precision is computed.
    assert atlas("build", *args, "--precision", machine, "--cache-dir", tmp_path / "merged")[0] == 0
    assert read_record(tmp_path / "merged")["computed"]["filters"] == 6 * 2
