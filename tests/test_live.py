"""`build --live-site` (what `make atlas` runs): the site kept current while a build runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generator import live
from generator.cli import main
from generator.optvis.engine import LayerEngine
from tests.test_faults import tree

LAYER1 = [f"tiny/filters/block1_conv1/{i}.html" for i in range(4)]


def build_args(model, work: Path, *extra):
    return ["build", "--model", model, "--cache-dir", work / "cache", "--quiet", "--iters", 5, *extra]


@pytest.fixture
def reference(tiny_atlas) -> dict[str, bytes]:
    """The site as a render after a finished build gives it, without --live-site."""
    return tree(tiny_atlas / "site")


def interrupt_engine(monkeypatch, on_call: int, before=lambda: None):
    """LayerEngine.run raises KeyboardInterrupt on its `on_call`-th call (the tiny
    model's layers are one batch each), after calling `before`."""
    calls, real_run = [], LayerEngine.run

    def run(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == on_call:
            before()
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(LayerEngine, "run", run)
    return real_run


def without_circuits(page: bytes) -> bytes:
    """A unit page without its circuits (templates/circuits.html), which link other layers' units."""
    return re.sub(rb'<section class="side circuits".*?</section>', b"", page, flags=re.S)


def text(site: Path, page: str) -> str:
    return " ".join((site / page).read_text().split())


def test_live_site_ends_file_for_file_as_a_render_after_the_build(atlas, tiny_model, tmp_path, reference,
                                                                    monkeypatch):
    site = tmp_path / "site"
    seen, inodes = [], []
    real_run = LayerEngine.run
    # (Not a filter page: its circuits link the next layer's units, which change as that layer finishes.)
    first = site / "tiny/layers/block1_conv1.html"

    def watch(self, *args, **kwargs):  # the site as each layer starts computing
        seen.append(tree(site))
        inodes.append(first.stat().st_ino if first.exists() else None)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(LayerEngine, "run", watch)
    monkeypatch.setattr(live, "RENDER_GAP", 0)  # every finished layer rendered, however cheap the build
    code, out, err = atlas(*build_args(tiny_model, tmp_path, "--live-site", site))
    assert code == 0, err
    assert f"site in {site}" in out
    assert tree(site) == reference
    # Before the first layer, after the first, after the second: the finished layers' filters only.
    assert [sorted(p for p in pages if "/filters/" in p) for pages in seen] == [
        [], sorted(LAYER1), sorted(p for p in reference if "/filters/block1_" in p)]
    mid = json.loads(seen[1]["atlas.json"])["models"][0]
    assert mid["progress"]["state"] == "building" and (mid["progress"]["done"], mid["progress"]["total"]) == (4, 15)
    index = " ".join(seen[1]["index.html"].decode().split())
    assert "Building: 4 of 15 filters done" in index
    block1 = " ".join(seen[1]["tiny/blocks/block1.html"].decode().split())
    assert "block1_conv2</a> <small class=\"pending\">being computed: 0 of 5 filters done" in block1
    # A page that did not change is not written again (each write is a rename: a new inode).
    assert inodes[1] is not None and inodes[1:] == [inodes[1]] * 2 and first.stat().st_ino == inodes[1]
    # A render after the build changes nothing.
    assert atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", site)[0] == 0
    assert tree(site) == reference


def test_interrupted_live_build_shows_exactly_the_finished_layers_and_resumes(atlas, tiny_model, tmp_path, reference,
                                                                              monkeypatch):
    site = tmp_path / "site"
    real_run = interrupt_engine(monkeypatch, on_call=2)  # in the second layer
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--live-site", site))
    assert code == 130
    assert "interrupted" in err and len(err.strip().splitlines()) == 1

    stopped = tree(site)
    assert sorted(p for p in stopped if "/filters/" in p) == sorted(LAYER1)
    for page in LAYER1[:3] + ["tiny/layers/block1_conv1.html"]:  # the last filter's "next" is not there yet
        assert without_circuits(stopped[page]) == without_circuits(reference[page])
    # The circuits name the same units; those of the unfinished layer have no page or picture yet.
    outputs = text(site, LAYER1[0]).split("<h2>Outputs")[1]
    assert "block1_conv2 <strong>" in outputs and "no picture" in outputs and "block1_conv2/" not in outputs
    assert {p for p in stopped if p.startswith(("img/", "thumbs/"))} < {p for p in reference if p.startswith(("img/", "thumbs/"))}
    assert "The build stopped at 4 of 15 filters" in text(site, "index.html")
    assert "The build stopped at 4 of 15 filters" in text(site, "tiny/index.html")
    assert "not finished yet: 0 of 5 filters done" in text(site, "tiny/layers/block1_conv2.html")
    assert 'id="grid"' not in text(site, "tiny/layers/block1_conv2.html")
    assert "not finished yet: 0 of 6 filters done" in text(site, "tiny/blocks/block2.html")
    manifest = json.loads(stopped["atlas.json"])["models"][0]
    assert manifest["progress"]["state"] == "stopped"
    layers = {layer["name"]: layer for block in manifest["blocks"] for layer in block["layers"]}
    assert [len(layers[name]["filters"]) for name in layers] == [4, 0, 0]
    assert layers["block2_conv1"]["pending"] == {"indices": list(range(6)), "done": 0, "computing": False}
    # `filter-atlas render` from another terminal shows the same.
    assert atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "other")[0] == 0
    assert tree(tmp_path / "other") == stopped

    monkeypatch.setattr(LayerEngine, "run", real_run)
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--live-site", site))
    assert code == 0, err
    assert tree(site) == reference


def test_live_site_mistakes_get_one_line(atlas, tiny_model, tmp_path):
    (tmp_path / "file").write_text("")
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--live-site", tmp_path / "file" / "site"))
    assert code == 1 and err.startswith("filter-atlas: error:") and len(err.strip().splitlines()) == 1
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--live-site", tmp_path / "site", "--shard", "0/2"))
    assert code == 1 and "--live-site" in err and len(err.strip().splitlines()) == 1
