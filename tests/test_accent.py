"""The accent view (feature accentuation, Hamblin, Fel et al. 2024): each of a
filter's top photos changed to drive it harder while held near itself. On tiny
models: the unit rises above the photo's value; at the regularizer's full
weight the picture is the photo; the photo's bytes are in the key; it shards
and merges; the unit page shows it beside the photo."""

from __future__ import annotations

import io
import re
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from generator.arguments import accent_views
from generator.imaging import decode_png
from generator.optvis.engine import LayerEngine
from generator.optvis.methods import FOURIER
from generator.optvis.objectives import accentuation
from generator.optvis.views import make_view, parse_views
from generator.photos import find_photos, load_photo
from generator.tf_quiet import import_keras
from tests.conftest import read_record

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"
LAYER = "block2_conv1"


@pytest.fixture(scope="module")
def tiny_net():
    """A tiny network whose second layer the accentuation regularizes (the first conv layer's features)."""
    keras = import_keras()
    keras.utils.set_random_seed(3)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="block1_conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name=LAYER)(x)
    return keras.Model(inputs, x)


def accentuate(model, weight: float, steps: int = 12):
    """Each of 3 photos accentuated for filters 0-3 of LAYER at `weight`: pixels, measures, the photos."""
    view = make_view("accent")
    method = view.render_method(FOURIER).with_steps(steps)
    objective = accentuation(weight)
    engine = LayerEngine(model, LAYER, "float32", method, "tf", objective)
    assert engine.near_layer == "block1_conv1"
    filters = [0, 1, 2, 3]
    photos = [load_photo(p, (24, 24)) for p in find_photos(PHOTOS)[:3]] * len(filters)
    pixels, images, _ = engine.run(engine.start_from(photos), filters, seed=0)
    return pixels, engine.accent_measures(photos, images, list(np.repeat(filters, 3))), photos


def test_accentuation_raises_the_unit_and_its_weight_holds_it_at_the_photo(tiny_net):
    pixels, measures, photos = accentuate(tiny_net, 0.5)
    assert all(m["unit"] > m["unit_on_photo"] for m in measures), [(m["unit_on_photo"], m["unit"]) for m in measures]
    assert all(m["moved_levels"] > 0.5 and m["moved_features"] > 0 for m in measures)

    # The regularizer alone: nothing pulls the picture off its photo, which it is (to rounding)
    held, at_full, _ = accentuate(tiny_net, 1.0)
    for shown, photo in zip(held, photos):
        assert np.abs(shown.astype(int) - np.round(photo * 255)).max() <= 1
    assert all(m["moved_levels"] < 0.5 and m["moved_features"] < 0.01 for m in at_full)



def build(atlas, model, cache: Path, photos: Path, *extra, layers="block1_conv2,block2_conv1"):
    code, out, err = atlas("build", "--model", model, "--cache-dir", cache, "--quiet", "--iters", 3,
                           "--layers", layers, "--filters", "0-2", "--views", "accent",
                           "--images", photos, "--examples", 3, *extra)
    assert code == 0, err
    return out


def accent_keys(cache: Path) -> dict:
    """Per (layer, filter, member): the picture's key and the photo it started from."""
    record = read_record(cache)
    found = {}
    for layer in record["layers"]:
        for entry in layer["entries"]:
            for image, example in zip(entry["images"], entry["examples"]["top"]):
                found[(layer["name"], entry["index"], image["member"])] = (image["key"], example["photo"])
    return found


def test_an_accent_picture_is_keyed_by_its_photos_bytes(atlas, tiny_model, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(PHOTOS, photos)
    cache = tmp_path / "cache"
    build(atlas, tiny_model, cache, photos, layers=LAYER)
    before = accent_keys(cache)
    assert len({key for key, _ in before.values()}) == len(before) == 3 * 3

    # The same pixels in other bytes (a text chunk added): the same photos on top, other keys for its pictures
    changed = before[(LAYER, 0, 0)][1]
    with Image.open(photos / changed) as img:
        info = PngImagePlugin.PngInfo()
        info.add_text("note", "the same pixels")
        out = io.BytesIO()
        img.save(out, format="PNG", pnginfo=info)
    (photos / changed).write_bytes(out.getvalue())
    build(atlas, tiny_model, cache, photos, layers=LAYER)
    after = accent_keys(cache)
    assert {k: p for k, (_, p) in after.items()} == {k: p for k, (_, p) in before.items()}
    for where, (key, photo) in after.items():
        assert (key != before[where][0]) == (photo == changed), where
    assert any(photo == changed for _, photo in after.values())


def test_accent_needs_photos_and_unit_leaves_it_out_without_them(atlas, tiny_model, tmp_path):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "c", "--views", "accent")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--images" in err
    assert not (tmp_path / "c").exists()
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "c", "--views", "accent",
                         "--images", PHOTOS, "--examples", 2)
    assert code == 1 and "--examples" in err
    unit = Namespace(views="unit", images=None, examples=9)
    assert accent_views(parse_views("unit"), unit) == ("channel", "neuron", "negative", "diversity")
    assert accent_views(parse_views("unit"), Namespace(views="unit", images=PHOTOS, examples=9))[-1] == "accent"


def test_accent_shards_merge_and_show_beside_the_photos(atlas, tiny_model, tmp_path, monkeypatch):
    for k in range(2):
        build(atlas, tiny_model, tmp_path / f"shard{k}", PHOTOS, "--shard", f"{k}/2")
    assert atlas("merge", tmp_path / "shard0", tmp_path / "shard1", "--cache-dir", tmp_path / "merged")[0] == 0

    def no_compute(*a, **kw):
        raise AssertionError("the merged cache must hold every accentuation")

    with monkeypatch.context() as patched:  # the build a single machine would run finds every picture
        patched.setattr(LayerEngine, "run", no_compute)
        build(atlas, tiny_model, tmp_path / "merged", PHOTOS)
    single = tmp_path / "merged"
    shards = [sorted(p.name for p in (tmp_path / f"shard{k}" / "filters").rglob("*.png")) for k in range(2)]
    assert all(shards) and not set(shards[0]) & set(shards[1]) and len(shards[0] + shards[1]) == 18
    assert {key for layer in read_record(single)["layers"] for entry in layer["entries"]
            for key in (image["key"] + ".png" for image in entry["images"])} == set(shards[0] + shards[1])

    # Each picture says which photo it started from, where, and how far it moved from it
    for layer in read_record(single)["layers"]:
        for entry in layer["entries"]:
            for image, example in zip(entry["images"], entry["examples"]["top"]):
                accent = decode_png((single / "filters" / image["key"][:2] / f"{image['key']}.png").read_bytes())[1]["accent"]
                assert (accent["photo"], accent["box"]) == (example["photo"], example["box"])
                assert accent["features_layer"] == "block1_conv1" and accent["moved_levels"] > 0

    site = tmp_path / "site"
    assert atlas("render", "--cache-dir", single, "--site-dir", site)[0] == 0
    page = (site / "tiny" / "filters" / LAYER / "1.html").read_text()
    assert page.count("accentuated; moved") == 3 and "in block1_conv1's features" in page
    first = page[page.index("Accentuated photos"):]
    photo_crop = re.search(r'<img src="\.\./\.\./\.\./(examples/crops/[^"]+)"', first)[1]
    accent_crop = re.search(r'<img src="\.\./\.\./\.\./(img/[^"]+)"[^>]*\s+alt="Top photo 1 accentuated', first)[1]
    with Image.open(site / accent_crop) as shown:
        top = read_record(single)["layers"][1]["entries"][1]["examples"]["top"][0]
        left, upper, right, lower = top["box"]
        assert shown.size == (right - left, lower - upper)  # the accentuation cut where the photo's crop is
    assert (site / photo_crop).is_file()
    layer_page = (site / "tiny" / "layers" / f"{LAYER}.html").read_text()
    assert 'data-show-accent="' in layer_page

    private = tmp_path / "private"
    assert atlas("render", "--cache-dir", single, "--site-dir", private, "--private-photos")[0] == 0
    page = (private / "tiny" / "filters" / LAYER / "1.html").read_text()
    assert page.count("accentuated; moved") == 3 and ".png" in page
    for png in (private / "img").glob("*.png"):  # no whole photo, changed or not
        with Image.open(png) as shown:
            assert shown.size != (16, 16), png
