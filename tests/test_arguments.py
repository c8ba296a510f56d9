"""A build's arguments are checked before any work (issue 33): a typo in
`--images` or any other argument fails in a second with one line, not after
hours of computing pictures."""

from __future__ import annotations

from pathlib import Path

import pytest

import generator.build
import generator.description
import generator.networks
from generator.optvis.engine import LayerEngine
from tests.conftest import REPO, copy_atlas
from tests.test_faults import tree

PHOTOS = REPO / "data" / "photos"


def computes_nothing(monkeypatch, network_too: bool = True) -> None:
    """Any picture computed fails the test; with `network_too`, so does opening or loading the network."""

    def refuse(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} before the arguments were checked")

        return fail

    monkeypatch.setattr(LayerEngine, "run", refuse("a picture was computed"))
    if network_too:
        monkeypatch.setattr(generator.networks, "load_model", refuse("the network was loaded"))
        for module in (generator.description, generator.build):  # where it is, and where the build calls it
            monkeypatch.setattr(module, "open_network", refuse("the network was opened"))


def one_error_line(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("filter-atlas: error: "), err
    return lines[0]


def no_pictures(cache: Path) -> bool:
    return not list(cache.glob("filters/**/*.png"))


# name: (arguments after `build --model TINY --cache-dir CACHE --quiet --iters 5`, what the line says).
# In the arguments, TMP is the test's folder; FILE a text file, EMPTY a folder without photos in it.
WITHOUT_THE_NETWORK = {
    "images missing": (["--images", "TMP/no/such/folder"], "--images TMP/no/such/folder: no such folder"),
    "images a file": (["--images", "FILE"], "--images FILE: not a folder"),
    "images without photos": (["--images", "EMPTY"], "no photographs (JPEG, PNG, WebP, BMP) in EMPTY"),
    "examples 0": (["--images", str(PHOTOS), "--examples", "0"], "--examples must be at least 1, got 0"),
    "examples without images": (["--examples", "-3"], "--examples must be at least 1, got -3"),
    "custom objects missing": (["--custom-objects", "TMP/no-such.py"], "--custom-objects TMP/no-such.py: no such file"),
    "custom objects a folder": (["--custom-objects", "EMPTY"], "--custom-objects EMPTY: not a file"),
    "custom objects not python": (["--custom-objects", "FILE"], "expected a Python file (.py)"),
    "filters unparsable": (["--filters", "3-1"], "cannot parse --filters '3-1'"),
    "filters negative": (["--filters", "-2"], "filter index -2 is negative"),
    "layers empty": (["--layers", " , "], "cannot parse --layers ' , '"),
    "views unknown": (["--views", "channel,bogus"], "unknown view 'bogus'"),
    "views repeated": (["--views", "channel,channel"], "cannot parse --views"),
    "diversity 1": (["--views", "diversity", "--diversity", "1"], "--diversity must be at least 2 (pictures pushed apart), got 1"),
    "method unknown": (["--method", "fourier,bogus"], "unknown method 'bogus'"),
    "method repeated": (["--method", "seed,seed"], "cannot parse --method"),
    "iters 0": (["--iters", "0"], "--iters must be at least 1, got 0"),
    "shard unparsable": (["--shard", "half"], "cannot parse --shard 'half'"),
    "shard out of range": (["--shard", "2/2"], "--shard 2/2: K must be 0 to N-1"),
    "shard with live site": (["--shard", "0/2", "--live-site", "TMP/site"], "--live-site renders the build"),
    "live site a file": (["--live-site", "FILE/site"], "cannot write to FILE/site"),
    "live site is a file": (["--live-site", "FILE"], "--live-site FILE: not a folder"),
    "live site in the cache": (["--live-site", "CACHE"], "--live-site CACHE is the cache folder"),
    "private photos without a site": (["--private-photos"], "--private-photos is for the site --live-site renders"),
    "preprocess unknown": (["--preprocess", "bogus"], "bogus"),
    "input size unparsable": (["--input-size", "big"], "cannot parse --input-size 'big'"),
}

# These need the network's layers, or name a second network: checked once the
# network is described (loaded, the first time), still before any picture.
WITH_THE_NETWORK = {
    "layers unknown": (["--layers", "block9_conv9"], "block9_conv9"),
    "filters out of range": (["--filters", "0,99"], "filter 99 is out of range"),
    "second model missing": (["--model", "TMP/no-such.keras"], "model file not found: TMP/no-such.keras"),
    "layers unknown to the second model": (["--model", "OTHER", "--layers", "block2_conv1"], "block2_conv1"),
}


def bad_build(name: str, tiny_model: Path, tmp_path: Path) -> tuple[list[str], str]:
    """The build command line of case `name`, and the message it must fail with."""
    (tmp_path / "a-file.txt").write_text("not a folder, not a photo, not Python")
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    (tmp_path / "empty" / "notes" / "readme.txt").write_text("no photos here")
    if name == "layers unknown to the second model":
        from generator.tf_quiet import import_keras

        keras = import_keras()
        inputs = keras.Input((16, 16, 3))
        keras.Model(inputs, keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs)).save(tmp_path / "other.keras")
    extra, message = {**WITHOUT_THE_NETWORK, **WITH_THE_NETWORK}[name]
    places = {"TMP": str(tmp_path), "FILE": str(tmp_path / "a-file.txt"), "EMPTY": str(tmp_path / "empty"),
              "CACHE": str(tmp_path / "cache"), "OTHER": str(tmp_path / "other.keras")}

    def place(text: str) -> str:
        for word, path in places.items():
            text = text.replace(word, path)
        return text

    args = ["build", "--model", str(tiny_model), "--cache-dir", str(tmp_path / "cache"), "--quiet", "--iters", "5"]
    return args + [place(a) for a in extra], place(message)


@pytest.mark.parametrize("name", WITHOUT_THE_NETWORK)
def test_a_bad_argument_fails_before_the_network_is_opened(atlas, tiny_model, tmp_path, monkeypatch, name):
    args, message = bad_build(name, tiny_model, tmp_path)
    computes_nothing(monkeypatch)
    line = one_error_line(*atlas(*args)[::2])
    assert message in line
    assert not (tmp_path / "cache").exists()  # nothing computed, nothing written


@pytest.mark.parametrize("name", WITH_THE_NETWORK)
def test_a_bad_selection_or_second_model_fails_before_any_picture(atlas, tiny_model, tmp_path, monkeypatch, name):
    args, message = bad_build(name, tiny_model, tmp_path)
    computes_nothing(monkeypatch, network_too=False)
    line = one_error_line(*atlas(*args)[::2])
    assert message in line
    assert no_pictures(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("builds/*.json"))  # no model of several built meanwhile


def test_a_mistyped_image_folder_fails_before_the_network_is_loaded(atlas, tiny_model, tmp_path, monkeypatch):
    """The issue as reported: `build --images /typo` computed every picture, then
    failed. Now it fails before the network is even opened (how long that takes
    is measured, not tested: docs/development.md)."""
    computes_nothing(monkeypatch)
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet",
                         "--images", "/no/such/folder")
    line = one_error_line(code, err)
    assert "--images /no/such/folder: no such folder" in line
    assert no_pictures(tmp_path / "cache")


def test_the_examples_command_checks_its_folder_first(atlas, tiny_model, tmp_path, monkeypatch):
    computes_nothing(monkeypatch)
    code, _, err = atlas("examples", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet",
                         "--images", tmp_path / "typo")
    assert f"--images {tmp_path / 'typo'}: no such folder" in one_error_line(code, err)
    assert not (tmp_path / "cache").exists()


def test_good_arguments_still_build(atlas, tiny_model, tmp_path):
    """The checks refuse only what is wrong: photos in nested folders, a live site beside the cache."""
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet",
                           "--iters", 2, "--images", PHOTOS.parent, "--examples", 1, "--layers", "block1",
                           "--filters", "0-1", "--live-site", tmp_path / "site")
    assert code == 0, err
    assert "from 5 photos in" in out and (tmp_path / "site" / "index.html").is_file()


def test_render_into_the_cache_folder_is_refused(atlas, tiny_atlas, tmp_path):
    """The site's managed folders (thumbs, examples) share names with the cache's: rendering
    into the cache would delete the cache's own."""
    copy_atlas(tiny_atlas, tmp_path)
    before = tree(tmp_path / "cache")
    code, _, err = atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "cache" / ".." / "cache")
    assert "is the cache folder" in one_error_line(code, err)
    assert tree(tmp_path / "cache") == before
