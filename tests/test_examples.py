"""Dataset examples: the photos that drive each filter, found in one streaming
pass, cut at the receptive field, cached, resumable, and shown on the site."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from generator.examples import scan as collect_module
from generator.networks.receptive import receptive_fields
from generator.networks import load_model, network_input, truncated
from generator.photos import find_photos, load_photo
from generator.tf_quiet import import_keras
from tests.conftest import read_record, REPO
from tests.test_faults import tree
from tests.test_pipeline import broken_links

PHOTOS = REPO / "data" / "photos"


def build_with_examples(atlas, model, work: Path, *extra):
    code, out, err = atlas("build", "--model", model, "--cache-dir", work / "cache", "--quiet", "--iters", 2,
                           "--images", PHOTOS, "--examples", 3, *extra)
    assert code == 0, err
    return read_record(work / "cache"), out


def test_build_with_images_puts_top_and_bottom_examples_beside_each_picture(atlas, tiny_model, tmp_path):
    record, out = build_with_examples(atlas, tiny_model, tmp_path, "--bottom")
    assert "top 3 examples per filter from 5 photos in" in out
    for layer in record["layers"]:
        for entry in layer["entries"]:
            top, bottom = entry["examples"]["top"], entry["examples"]["bottom"]
            assert len(top) == len(bottom) == 3
            assert [e["activation"] for e in top] == sorted((e["activation"] for e in top), reverse=True)
            assert [e["activation"] for e in bottom] == sorted(e["activation"] for e in bottom)
            for example in top + bottom:
                assert (tmp_path / "cache" / example["crop"]).is_file()

    code, _, err = atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    assert code == 0, err
    site = tmp_path / "site"
    page = (site / "tiny" / "filters" / "block2_conv1" / "4.html").read_text()
    assert page.count('class="example"') == 6 and "Photos that drive it lowest" in page
    assert 'id="show"' in (site / "tiny" / "layers" / "block1_conv1.html").read_text()
    manifest = json.loads((site / "atlas.json").read_text())["models"][0]
    first = manifest["blocks"][0]["layers"][0]["filters"][0]
    assert len(first["examples"]["top"]) == 3 and (site / first["examples"]["top"][0]["crop"]).is_file()
    assert manifest["examples"]["photos"] == 5
    assert broken_links(site) == []


def test_the_site_publishes_no_local_path(atlas, tiny_model, tmp_path):
    """Not the photo folder, the cache or the model file: folders by their last
    component, files by name (and the network's digest)."""
    home = tmp_path / "home" / "someone"
    photos = home / "private" / "photos"
    shutil.copytree(PHOTOS, photos / "nested")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    model = home / "runs" / "net.keras"
    model.parent.mkdir(parents=True)
    shutil.copy(tiny_model, model)
    cache, site = home / "cache", tmp_path / "site"
    code, _, err = atlas("build", "--model", model, "--cache-dir", cache, "--quiet", "--iters", 2,
                         "--images", photos, "--layers", "block1_conv1", "--filters", "0-1")
    assert code == 0, err
    assert atlas("render", "--cache-dir", cache, "--site-dir", site)[0] == 0
    files = [p for p in site.rglob("*") if p.is_file()]
    for secret in (photos, cache, model, home, tmp_path):
        leaks = [p.relative_to(site).as_posix() for p in files if str(secret).encode() in p.read_bytes()]
        assert leaks == [], (secret, leaks)
    page = (site / "net" / "filters" / "block1_conv1" / "0.html").read_text()
    assert "from 5 photos in <code>photos</code>" in " ".join(page.split()) and "nested/" in page
    manifest = json.loads((site / "atlas.json").read_text())["models"][0]
    assert manifest["examples"]["folder"] == "photos" and manifest["examples"]["skipped"] == ["broken.jpg"]
    assert "net.keras" in (site / "index.html").read_text()
    assert f"sha256 <code>{manifest['network_sha256'][:12]}</code>" in page  # the model file's digest
    assert str(photos) in json.dumps(read_record(cache))  # the cache, on this machine, keeps the folder as given


def private_album(tmp_path: Path) -> tuple[Path, list[str]]:
    """data/photos under distinctive names, in subfolders, with an unreadable one;
    and every name a site might give away: folders, files, stems."""
    album = tmp_path / "home" / "someone" / "album_kq7_private"
    secrets = [album.name]
    for i, photo in enumerate(sorted(PHOTOS.glob("*.png"))):
        target = album / f"trip_subfolder_zx{i % 2}" / f"secret_snapshot_{i}_wq{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, target)
        secrets += [target.parent.name, target.name, target.stem]
    (album / "unreadable_scan_vv3.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return album, sorted(set(secrets + ["unreadable_scan_vv3.jpg", "unreadable_scan_vv3"]))


def leaks(site: Path, secrets: list[str]) -> dict[str, list[str]]:
    """Per secret, the site's files that hold it (as bytes, in any file)."""
    files = [p for p in site.rglob("*") if p.is_file()]
    found = {secret: [p.relative_to(site).as_posix() for p in files if secret.encode() in p.read_bytes()]
             for secret in secrets}
    return {secret: where for secret, where in found.items() if where}


def test_private_photos_publish_the_crops_alone(atlas, tiny_model, tmp_path):
    """render --private-photos: no photo's name or path, no folder name, no
    whole photo; the crops, their numbers and the photo count stay."""
    album, secrets = private_album(tmp_path)
    cache, site = tmp_path / "cache", tmp_path / "site"
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 2,
                         "--images", album, "--examples", 3, "--bottom", "--layers", "block1_conv1", "--filters", "0-1")
    assert code == 0, err

    # Without the flag the site names the photos and shows them whole: what the flag must take away.
    assert atlas("render", "--cache-dir", cache, "--site-dir", site)[0] == 0
    assert set(leaks(site, secrets)) >= {album.name, "unreadable_scan_vv3.jpg", "trip_subfolder_zx0"}
    assert any(stem in leaks(site, secrets) for stem in secrets if stem.startswith("secret_snapshot_"))
    assert list(site.glob("examples/views/*.jpg"))

    # With it, into the same site: what the earlier render published goes.
    code, out, err = atlas("render", "--cache-dir", cache, "--site-dir", site, "--private-photos")
    assert code == 0, err
    assert leaks(site, secrets) == {}
    assert not (site / "examples" / "views").exists()
    assert broken_links(site) == []
    crops = sorted(site.glob("examples/crops/*/*.webp"))
    page = (site / "tiny" / "filters" / "block1_conv1" / "0.html").read_text()
    assert page.count('class="example"') == 6 and len(crops) >= 3
    assert 'alt="top photo 1, around where block1_conv1 filter 0 responds"' in page
    assert 'alt="bottom photo 3, around where block1_conv1 filter 0 responds"' in page
    assert page.count('<div class="example">') == 6 and '<a class="example"' not in page  # no link to a whole photo
    assert "from 5 photos;" in " ".join(page.split())
    manifest = json.loads((site / "atlas.json").read_text())["models"][0]
    assert manifest["examples"]["photos"] == 5 and manifest["examples"]["skipped"] == 1
    assert "folder" not in manifest["examples"] and manifest["examples"]["private_photos"] is True
    first = manifest["blocks"][0]["layers"][0]["filters"][0]["examples"]
    assert set(first["top"][0]) == {"crop", "activation", "box"} and (site / first["top"][0]["crop"]).is_file()
    assert {entry["crop"] for f in manifest["blocks"][0]["layers"][0]["filters"]
            for kind in ("top", "bottom") for entry in f["examples"][kind]} == {
        p.relative_to(site).as_posix() for p in crops}
    assert "album_kq7_private" in json.dumps(read_record(cache))  # the cache keeps everything

    # And back: a render without the flag publishes the names and the photos again.
    assert atlas("render", "--cache-dir", cache, "--site-dir", site)[0] == 0
    assert leaks(site, secrets) and list(site.glob("examples/views/*.jpg")) and broken_links(site) == []


def test_a_live_site_can_keep_the_photos_private(atlas, tiny_model, tmp_path):
    album, secrets = private_album(tmp_path)
    site = tmp_path / "site"
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet",
                         "--iters", 2, "--images", album, "--examples", 2, "--layers", "block1_conv1",
                         "--live-site", site, "--private-photos")
    assert code == 0, err
    assert leaks(site, secrets) == {}
    assert not (site / "examples" / "views").exists() and list(site.glob("examples/crops/*/*.webp"))
    assert broken_links(site) == []


def test_the_pass_finds_what_brute_force_finds(atlas, tiny_model, tmp_path):
    record, _ = build_with_examples(atlas, tiny_model, tmp_path, "--layers", "block2_conv1")
    net = load_model(str(tiny_model), tiny_model)
    unit = truncated(net, "block2_conv1", pre_activation=True)
    photos = find_photos(PHOTOS)
    maps = unit(network_input(np.stack([load_photo(p, (16, 16)) for p in photos]), "tf")).numpy()
    for entry in record["layers"][0]["entries"]:
        peaks = maps[..., entry["index"]].reshape(len(photos), -1).max(axis=1)
        best = np.argsort(-peaks, kind="stable")[:3]
        assert [e["photo"] for e in entry["examples"]["top"]] == [photos[i].name for i in best]
        assert [e["activation"] for e in entry["examples"]["top"]] == pytest.approx(peaks[best].tolist(), rel=1e-4)


def test_receptive_field_boxes_are_where_the_gradient_reaches(tmp_path):
    """The box of a unit is exactly the input pixels its gradient touches,
    through same and valid padding, strides, pooling and explicit padding."""
    import tensorflow as tf

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((33, 31, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="a")(inputs)
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = keras.layers.Conv2D(4, 3, padding="valid", name="b")(x)
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="c")(x)
    model = keras.Model(inputs, x)
    fields = receptive_fields(model, ["a", "b", "c"])
    image = tf.constant(np.random.default_rng(0).normal(size=(1, 33, 31, 3)).astype(np.float32))
    for name, (y, x) in (("a", (0, 0)), ("a", (5, 7)), ("b", (3, 2)), ("b", (0, 14)), ("c", (3, 3)), ("c", (0, 0))):
        sub = keras.Model(model.input, model.get_layer(name).output)
        with tf.GradientTape() as tape:
            tape.watch(image)
            value = sub(image)[0, y, x, 0]
        reached = np.argwhere(np.abs(tape.gradient(value, image).numpy()[0]).sum(axis=-1) > 0)
        top, left = reached.min(axis=0)
        bottom, right = reached.max(axis=0) + 1
        assert fields[name].box(y, x, 33, 31) == (left, top, right, bottom), (name, y, x)


@pytest.fixture
def kernels_that_round_by_batch_size(monkeypatch):
    """Stand in for a CPU whose kernels round differently by batch size (oneDNN's
    AVX2 ones do): every value of the pass moves by a few ulps per photo in the batch."""
    real = collect_module.batch_extremes

    def batch_extremes(model):
        run = real(model)

        def rounded(images):
            wobble = 1 + 1e-7 * len(images)
            return [tuple(v * wobble if v.dtype.is_floating else v for v in layer) for layer in run(images)]

        return rounded

    monkeypatch.setattr(collect_module, "batch_extremes", batch_extremes)


def test_an_interrupted_pass_resumes_and_ends_the_same(atlas, tiny_model, tmp_path, monkeypatch,
                                                       kernels_that_round_by_batch_size):
    """The promise: stopped and resumed, a pass ends with the bits of the same pass
    run through, on any CPU. A resume starts on a chunk's first photo, and a chunk
    is whole batches, so both see the same batches. (Another batch size may round
    otherwise: see test_the_batch_size_changes_the_pass_only_by_rounding.)"""
    monkeypatch.setattr(collect_module, "CHUNK", 2)
    monkeypatch.setattr(collect_module, "BATCH", 2)
    reference, _ = build_with_examples(atlas, tiny_model, tmp_path / "reference")
    real_save = collect_module.save_state

    def save_then_stop(path, done, *args):
        real_save(path, done, *args)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(collect_module, "save_state", save_then_stop)
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "work" / "cache", "--quiet",
                         "--iters", 2, "--images", PHOTOS, "--examples", 3)
    assert code == 130 and "interrupted" in err
    monkeypatch.setattr(collect_module, "save_state", real_save)
    loaded = []
    real_load = collect_module.load_photo
    monkeypatch.setattr(collect_module, "load_photo", lambda *a: loaded.append(a[0]) or real_load(*a))
    resumed, _ = build_with_examples(atlas, tiny_model, tmp_path / "work")
    assert len(loaded) == 3  # the 2 photos done before the stop are not read again
    assert resumed["layers"] == reference["layers"]


def test_a_chunk_is_whole_batches():
    """What lets a resumed pass see the batches of an unbroken one."""
    assert collect_module.CHUNK % collect_module.BATCH == 0


def test_the_batch_size_changes_the_pass_only_by_rounding(atlas, tiny_model, tmp_path, monkeypatch,
                                                          kernels_that_round_by_batch_size):
    """Same photos, same order: one at a time or all at once, the same top photos
    and values within float32 rounding."""
    whole, _ = build_with_examples(atlas, tiny_model, tmp_path / "whole")
    monkeypatch.setattr(collect_module, "BATCH", 1)
    single, _ = build_with_examples(atlas, tiny_model, tmp_path / "single")

    def numbers(record):
        return [(layer["name"], entry["index"], path, value)
                for layer in record["layers"] for entry in layer["entries"]
                for path, value in flat_numbers(entry.get("examples", {}))]

    a, b = numbers(whole), numbers(single)
    assert [n[:3] for n in a] == [n[:3] for n in b] and len(a) > 0
    for (*where, x), (_, _, _, y) in zip(a, b):
        assert y == pytest.approx(x, rel=1e-5, abs=1e-6), where
    assert [(e["photo"], e["box"]) for entry in entries(whole) for e in entry["examples"]["top"]] == \
           [(e["photo"], e["box"]) for entry in entries(single) for e in entry["examples"]["top"]]


def entries(record):
    return [entry for layer in record["layers"] for entry in layer["entries"]]


def flat_numbers(tree, path=""):
    """(path, value) of every float in a record's nested dicts and lists."""
    if isinstance(tree, dict):
        for key, value in sorted(tree.items()):
            yield from flat_numbers(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from flat_numbers(value, f"{path}[{i}]")
    elif isinstance(tree, float):
        yield path, tree


def test_a_rebuild_with_the_same_photos_computes_nothing(atlas, tiny_model, tmp_path, monkeypatch):
    build_with_examples(atlas, tiny_model, tmp_path)
    before = tree(tmp_path / "cache" / "examples")

    def fail(*args, **kwargs):
        raise AssertionError("nothing may be computed")

    monkeypatch.setattr(collect_module, "layers_model", fail)
    monkeypatch.setattr("generator.examples.load_photo", fail)
    build_with_examples(atlas, tiny_model, tmp_path)
    assert tree(tmp_path / "cache" / "examples") == before


def test_unreadable_photos_are_reported_and_skipped(atlas, tiny_model, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(PHOTOS, folder / "nested")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.png").write_text("hello")
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache",  # not --quiet
                           "--iters", 2, "--images", folder, "--layers", "block1_conv1")
    assert code == 0, err
    assert "from 5 photos in" in out and "2 unreadable skipped" in out
    assert out.count("skipping ") == 2


def test_the_examples_command_adds_to_the_last_build(atlas, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    assert atlas("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 2)[0] == 0
    code, out, err = atlas("examples", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--images", PHOTOS)
    assert code == 0, err
    assert "added to the last build" in out
    record = read_record(cache)
    assert len(record["layers"][2]["entries"][5]["examples"]["top"]) == 5  # k=9, but only 5 photos


@pytest.mark.parametrize(
    "args, message",
    [
        (["--images", "no-such-folder"], "--images no-such-folder: no such folder"),
        (["--images", "generator"], "no photographs (JPEG, PNG, WebP, BMP) in generator"),
        (["--images", str(PHOTOS), "--examples", "0"], "--examples must be at least 1"),
    ],
)
def test_bad_example_options(atlas, tiny_model, tmp_path, args, message):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "c", "--quiet", "--iters", 1, *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
