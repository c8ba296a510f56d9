"""Several pictures per filter: the views a unit page shows, built, cached,
sharded and rendered as a user runs them, and the objectives behind them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.optvis.engine import LayerEngine
from generator.optvis.objectives import UnitBatch, channel, diversity, neuron
from generator.tf_quiet import import_keras
from tests.conftest import read_record

PHOTOS = Path(__file__).resolve().parent.parent / "data" / "photos"


def build(atlas, model, cache: Path, *extra):
    code, out, err = atlas("build", "--model", model, "--cache-dir", cache, "--quiet", "--iters", 6, *extra)
    assert code == 0, err
    return read_record(cache), out


def pictures(record, layer: str, index: int) -> list[dict]:
    (entry,) = [e for l in record["layers"] if l["name"] == layer for e in l["entries"] if e["index"] == index]
    return entry["images"]


def test_unit_views_are_built_cached_and_shown_on_the_unit_page(atlas, tiny_model, tmp_path):
    cache, site = tmp_path / "cache", tmp_path / "site"
    record, _ = build(atlas, tiny_model, cache, "--views", "unit", "--diversity", "3",
                      "--images", PHOTOS, "--examples", 3, "--bottom")
    images = pictures(record, "block2_conv1", 2)
    assert [(i["view"], i["member"]) for i in images] == [
        ("channel", 0), ("neuron", 0), ("negative", 0), ("diversity", 0), ("diversity", 1), ("diversity", 2),
        ("accent", 0), ("accent", 1), ("accent", 2)]  # with photos, unit includes the accentuated top photos
    assert len({i["key"] for i in images}) == 9
    for image in images:
        assert set(image["unit"]) == {"mean", "centre"}

    again, _ = build(atlas, tiny_model, cache, "--views", "unit", "--diversity", "3")
    assert again["computed"]["filters"] == 0

    assert atlas("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 6, "--views", "unit",
                 "--diversity", "3", "--images", PHOTOS, "--examples", 3, "--bottom")[0] == 0
    code, _, err = atlas("render", "--cache-dir", cache, "--site-dir", site)
    assert code == 0, err
    page = (site / "tiny" / "filters" / "block2_conv1" / "2.html").read_text()
    assert "What drives it up" in page and "What drives it down" in page
    assert page.count("for the diversity view") == 3 and page.count("for the neuron view") == 1
    # the neuron picture, made on its receptive field, is shown as that window alone, enlarged, and says so;
    # no other picture is
    assert page.count("px this position sees") == 1
    assert page.index("px this position sees") > page.index("for the neuron view") > page.index("for the channel view")
    neuron_figure = page[page.rindex("<figure", 0, page.index("for the neuron view")):]
    shown = re.search(r'<img src="([^"]+)"', neuron_figure)[1]
    whole = re.search(r'<a href="([^"]+)">the whole input</a>', neuron_figure)[1]
    here = site / "tiny" / "filters" / "block2_conv1"
    assert Image.open(here / shown).size == (10, 10)  # block2_conv1's receptive field, in whole cells
    assert Image.open(here / whole).size == (16, 16)  # the whole input, the window in grey
    down = page[page.index("What drives it down"):]
    assert "for the negative view" in down and "Photos that drive it lowest" in down
    assert "of the way from an average photo" in page or "above every photo" in page
    grid = (site / "tiny" / "layers" / "block2_conv1.html").read_text()
    for view in ("channel", "neuron", "negative", "diversity", "accent", "example"):
        assert f'value="{view}"' in grid and f"data-show-{view}=" in grid
    manifest = json.loads((site / "atlas.json").read_text())["models"][0]
    assert set(manifest["views"]) == {"channel", "neuron", "negative", "diversity", "accent"}
    shown = manifest["blocks"][1]["layers"][0]["filters"][2]["pictures"]
    assert [p["view"] for p in shown].count("diversity") == 3


def test_a_negative_picture_drives_its_unit_below_the_channel_picture(atlas, tiny_model, tmp_path):
    record, _ = build(atlas, tiny_model, tmp_path / "cache", "--views", "channel,negative", "--images", PHOTOS,
                      "--examples", 2)
    for layer in record["layers"]:
        for entry in layer["entries"]:
            by_view = {image["view"]: image["unit"]["mean"] for image in entry["images"]}
            assert by_view["negative"] < by_view["channel"], (layer["name"], entry["index"])


def test_the_plain_build_is_the_channel_view_alone_and_a_page_shows_no_other(atlas, tiny_model, tmp_path):
    record, _ = build(atlas, tiny_model, tmp_path / "cache")
    assert {image["view"] for l in record["layers"] for e in l["entries"] for image in e["images"]} == {"channel"}
    assert atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")[0] == 0
    page = (tmp_path / "site" / "tiny" / "filters" / "block1_conv1" / "0.html").read_text()
    assert "for the channel view" in page
    assert "neuron view" not in page and "Diversity" not in page and "What drives it down" not in page


def test_a_lost_picture_of_a_diverse_group_recomputes_that_filter_alone(atlas, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    record, _ = build(atlas, tiny_model, cache, "--views", "diversity", "--diversity", "2")
    lost = pictures(record, "block1_conv2", 1)[1]["key"]
    (cache / "filters" / lost[:2] / f"{lost}.png").unlink()
    again, _ = build(atlas, tiny_model, cache, "--views", "diversity", "--diversity", "2")
    assert again["computed"]["filters"] == 1
    assert pictures(again, "block1_conv2", 1)[1]["key"] == lost and (cache / "filters" / lost[:2] / f"{lost}.png").is_file()


def test_views_are_dealt_by_shards_and_merge_into_what_one_build_makes(atlas, tiny_model, tmp_path, monkeypatch):
    args = ["--model", tiny_model, "--quiet", "--iters", 3, "--views", "neuron,diversity", "--diversity", "2"]
    assert atlas("build", *args, "--cache-dir", tmp_path / "single")[0] == 0
    for k in range(2):
        code, _, err = atlas("build", *args, "--cache-dir", tmp_path / f"shard{k}", "--shard", f"{k}/2")
        assert code == 0, err
    assert atlas("merge", tmp_path / "shard0", tmp_path / "shard1", "--cache-dir", tmp_path / "merged")[0] == 0

    def no_compute(*a, **kw):
        raise AssertionError("the merged cache must hold every view's pictures")

    monkeypatch.setattr(LayerEngine, "run", no_compute)
    assert atlas("build", *args, "--cache-dir", tmp_path / "merged")[0] == 0
    single = sorted(p.name for p in (tmp_path / "single" / "filters").rglob("*.png"))
    assert sorted(p.name for p in (tmp_path / "merged" / "filters").rglob("*.png")) == single
    assert len(single) == 15 * 3


def test_a_record_of_the_first_schema_renders_as_before(atlas, tiny_model, tmp_path):
    cache = tmp_path / "cache"
    build(atlas, tiny_model, cache)
    (path,) = (cache / "builds").glob("*.json")
    old = json.loads(path.read_text())
    for key in ("schema", "views"):
        del old[key]
    for layer in old["layers"]:
        for entry in layer["entries"]:
            for image in entry["images"]:
                del image["view"], image["member"]
    path.write_text(json.dumps(old))
    assert atlas("render", "--cache-dir", cache, "--site-dir", tmp_path / "site")[0] == 0
    assert "for the channel view" in (tmp_path / "site" / "tiny" / "filters" / "block1_conv1" / "0.html").read_text()

    path.write_text(json.dumps({**old, "schema": 99}))
    code, _, err = atlas("render", "--cache-dir", cache, "--site-dir", tmp_path / "site")
    assert code == 1 and "newer filter-atlas" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--views", "channel,colour"], "unknown view 'colour'"),
    (["--views", "neuron,neuron"], "cannot parse --views"),
    (["--views", "diversity", "--diversity", "1"], "--diversity must be at least 2"),
])
def test_bad_views_get_one_line_errors(atlas, tiny_model, tmp_path, args, message):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet", *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "filters").exists()


def unit_batch(values, filters):
    import tensorflow as tf

    values = tf.constant(values, tf.float32)
    return UnitBatch(values, tf.nn.relu(values), tf.constant(filters, tf.int32))


def test_objectives_add_scale_and_negate():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 5, 5, 3)).astype(np.float32)
    batch = unit_batch(values, [2, 0])
    means = values[[0, 1], :, :, [2, 0]].mean(axis=(1, 2))
    centres = values[[0, 1], 2, 2, [2, 0]]
    assert np.allclose(channel()(batch), means, atol=1e-6)
    assert np.allclose(neuron()(batch), centres, atol=1e-6)
    assert np.allclose((-channel())(batch), -means, atol=1e-6)
    assert np.allclose((2 * channel() - neuron())(batch), 2 * means - centres, atol=1e-5)
    assert (-channel()).key() == {"times": -1.0, "of": "mean"}
    assert (channel() + 3 * diversity(2)).group == 2


def test_diversity_is_minus_the_gram_similarity_to_the_rest_of_the_group():
    rng = np.random.default_rng(1)
    one = rng.uniform(0, 1, (1, 4, 4, 3)).astype(np.float32)
    same = unit_batch(np.concatenate([one, one, one]), [0, 0, 0])
    assert np.allclose(diversity(3, relative=False)(same), [-2.0, -2.0, -2.0], atol=1e-5)  # cosine 1 with two others
    scale = np.abs(one[..., 0].mean())  # filter 0's mean output, the same for the three
    assert np.allclose(diversity(3)(same), [-2.0 * scale] * 3, atol=1e-5)
    apart = np.zeros((2, 4, 4, 3), np.float32)
    apart[0, ..., 0], apart[1, ..., 1] = 1.0, 1.0  # Grams with no entry in common
    assert np.allclose(diversity(2)(unit_batch(apart, [0, 0])), [0.0, 0.0], atol=1e-6)
    # two filters' groups in one batch do not see each other
    mixed = unit_batch(np.concatenate([apart, one, one]), [0, 0, 1, 1])
    assert np.allclose(diversity(2, relative=False)(mixed), [0.0, 0.0, -1.0, -1.0], atol=1e-5)


def test_the_neuron_sees_only_its_receptive_field():
    import tensorflow as tf

    keras = import_keras()
    inputs = keras.Input((15, 15, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="b")(x)
    model = keras.Model(inputs, x)
    engine = LayerEngine(model, "b", objective=neuron())
    image = tf.Variable(np.random.default_rng(2).uniform(-1, 1, (1, 15, 15, 3)).astype(np.float32))
    for objective in (neuron(), channel()):
        with tf.GradientTape() as tape:
            value = objective(engine.unit_batch(image, tf.constant([1])))
        reached = np.abs(tape.gradient(value, image).numpy()[0]).sum(axis=-1) > 0
        rows, cols = np.nonzero(reached)
        if objective == neuron():
            assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 9, 5, 9)  # 5x5 around the centre
        else:
            assert reached.all()


def test_a_neuron_picture_is_made_on_its_receptive_field_alone():
    import tensorflow as tf
    from dataclasses import replace

    from generator.networks import unit_model
    from generator.optvis.window import receptive_window
    from generator.optvis.methods import METHODS

    keras = import_keras()
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="b")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(x)
    model = keras.Model(inputs, x)
    rows, cols = receptive_window(model, "c")
    # the centre of c's 16x16 map sees 9x9 pixels; the window holds them in whole 2-pixel cells
    assert (rows.stop - rows.start, cols.stop - cols.start) == (10, 10)

    method = replace(METHODS["fourier"], steps=8, field_window=True)
    engine = LayerEngine(model, "c", "float32", method, "tf", neuron())
    assert engine.render_shape == (10, 10, 3)
    pixels, images, _ = engine.run(engine.start([1, 2]), [0, 3])
    outside = np.ones((32, 32), bool)
    outside[rows, cols] = False
    assert pixels.shape == (2, 32, 32, 3) and np.all(images[:, outside] == 0.5)  # grey beyond the window
    assert np.ptp(images[:, rows, cols]) > 0.01  # and a picture within it

    # the picture drives the full network's centre unit as it drove the window's
    full = unit_model(model, "c")(tf.constant(images * 2 - 1))[0].numpy()[:, 8, 8, [0, 3]].diagonal()
    windowed = engine.network(tf.constant(images[:, rows, cols] * 2 - 1))[0].numpy()  # a 5x5 map
    windowed = windowed[:, 2, 2, [0, 3]].diagonal()
    assert np.allclose(full, windowed, rtol=1e-4, atol=1e-5)

    # a layer that sees (almost) all of its input gets no window
    assert receptive_window(model, "b") is not None
    small = keras.Model(inputs, keras.layers.Conv2D(2, 31, padding="same", name="wide")(inputs))
    assert receptive_window(small, "wide") is None


def test_the_diverse_pictures_take_half_the_methods_steps_and_their_key_says_so():
    from generator.optvis.methods import METHODS
    from generator.optvis.views import make_view

    fourier = METHODS["fourier"]
    diverse = make_view("diversity").render_method(fourier)
    assert diverse.steps == fourier.steps // 2 and diverse.key()["iters"] == fourier.steps // 2
    assert make_view("diversity").render_method(fourier.with_steps(7)).steps == 4  # --iters 7
    for name in ("channel", "neuron", "negative"):
        assert make_view(name).render_method(fourier) == fourier


def test_the_diversity_terms_hand_written_gradient_is_tensorflows_own():
    """Gram cosine similarity within each group of 3, and its gradient, as
    l2_normalize and TensorFlow's own differentiation compute them."""
    import tensorflow as tf

    from generator.optvis.objectives import group_gram_similarity

    rng = np.random.default_rng(3)
    flat = tf.constant(rng.random((6, 10, 7), dtype=np.float32))  # 2 filters, 3 pictures each
    flat = tf.concat([flat[:5], tf.zeros_like(flat[5:])], 0)  # a silent picture, as ReLUs give
    weights = tf.constant(rng.standard_normal(6).astype(np.float32))

    def plain(features):
        grams = tf.math.l2_normalize(tf.reshape(tf.matmul(features, features, transpose_a=True), [2, 3, -1]),
                                     axis=-1, epsilon=1e-10)
        cosines = tf.matmul(grams, grams, transpose_b=True)
        return tf.reshape(tf.reduce_sum(cosines, -1) - tf.linalg.diag_part(cosines), [6])

    results = []
    for similarity in (lambda f: group_gram_similarity(f, 3), plain):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            values = similarity(flat)
            loss = tf.reduce_sum(values * weights)
        results.append((values.numpy(), tape.gradient(loss, flat).numpy()))
    (ours, our_grad), (theirs, their_grad) = results
    assert np.allclose(ours, theirs, atol=1e-5) and theirs[0] > 0.5
    assert np.abs(their_grad).max() > 0
    assert np.allclose(our_grad, their_grad, rtol=1e-4, atol=1e-5 * np.abs(their_grad).max())
