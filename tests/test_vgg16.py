"""The real VGG16 architecture, loaded through --weights, on a few filters and steps."""

from __future__ import annotations


import numpy as np
import pytest

from tests.conftest import read_record

from generator.imaging import decode_png, to_uint8
from generator.networks import load_model
from generator.optvis.seed_loop import visualize_filter

SAMPLE_LAYERS = ["block1_conv1", "block3_conv1"]
SAMPLE_FILTERS = [0, 1, 5]


@pytest.fixture(scope="session")
def vgg16(vgg16_weights):
    return load_model("vgg16", vgg16_weights)


def test_build_matches_the_seed_loop_run_eagerly(atlas, vgg16, vgg16_weights, tmp_path):
    cache = tmp_path / "cache"
    code, _, err = atlas(
        "build", "--weights", vgg16_weights, "--cache-dir", cache, "--quiet",
        "--layers", ",".join(SAMPLE_LAYERS), "--filters", "0,1,5", "--iters", 4, "--precision", "float32", "--method", "seed",
    )
    assert code == 0, err
    record = read_record(cache)
    built = {(l["name"], e["index"]): e for l in record["layers"] for e in l["entries"]}
    assert set(built) == {(layer, i) for layer in SAMPLE_LAYERS for i in SAMPLE_FILTERS}

    for (layer, index), entry in built.items():
        key = entry["images"][0]["key"]
        pixels, meta = decode_png((cache / "filters" / key[:2] / f"{key}.png").read_bytes())
        image, _, activation = visualize_filter(vgg16, layer, index, iters=4, seed=0, log=None)
        assert pixels.shape == (96, 96, 3)
        # Same start, same steps: only float summation order differs (batched vs one image).
        assert np.abs(pixels.astype(int) - to_uint8(image)).max() <= 2, (layer, index)
        assert meta["activation"] == pytest.approx(activation, rel=1e-3)


def test_visualize_command_prints_loss_every_tenth_and_writes_png(atlas, vgg16_weights, tmp_path):
    out_file = tmp_path / "f.png"
    code, out, err = atlas(
        "visualize", "block2_conv1", "--filter", 3, "--iters", 20,
        "--weights", vgg16_weights, "--out", out_file,
    )
    assert code == 0, err
    losses = [line for line in out.splitlines() if line.startswith("Iteration:")]
    assert [line.split(",")[0] for line in losses] == [f"Iteration: {i}" for i in range(2, 21, 2)]
    values = [float(line.rsplit(" ", 1)[1]) for line in losses]
    assert values[-1] > values[0]  # ascent raises the filter's activation
    pixels, meta = decode_png(out_file.read_bytes())
    assert pixels.shape == (96, 96, 3) and (meta["layer"], meta["filter"]) == ("block2_conv1", 3)


def test_visualize_picks_a_random_filter_when_none_given(atlas, vgg16_weights, tmp_path):
    code, out, err = atlas("visualize", "block1_conv1", "--iters", 1, "--weights", vgg16_weights,
                           "--out", tmp_path / "r.png")
    assert code == 0, err
    index = int(out.strip().splitlines()[-1].split(",")[1].split(":")[0])
    assert 0 <= index < 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["block3_conv1", "--filter", "256"], "filter 256 is out of range for block3_conv1, which has filters 0-255"),
        (["block3_conv1", "--filter", "-1"], "filter -1 is out of range"),
        (["block3_pool"], "layer 'block3_pool' is not a convolution"),
        (["block6_conv1"], "layer 'block6_conv1' is unknown; conv layers are: block1_conv1"),
        (["block1_conv1", "--iters", "0"], "--iters must be at least 1"),
    ],
)
def test_visualize_bad_input(atlas, vgg16_weights, args, message):
    code, _, err = atlas("visualize", *args, "--weights", vgg16_weights)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_weights_that_are_not_hdf5_or_do_not_fit(atlas, tiny_model, tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    code, _, err = atlas("visualize", "block1_conv1", "--weights", text)
    assert code == 1 and "cannot load vgg16 from" in err and len(err.strip().splitlines()) == 1

    code, _, err = atlas("visualize", "block1_conv1", "--weights", tmp_path / "missing.h5")
    assert code == 1 and "weights file not found" in err


def test_weights_come_from_env_then_keras_cache(atlas, vgg16_weights, tmp_path, monkeypatch):
    from generator.networks import resolve_weights

    monkeypatch.setenv("FILTER_ATLAS_WEIGHTS", str(vgg16_weights))
    assert resolve_weights("vgg16") == vgg16_weights
    explicit = tmp_path / "explicit.h5"
    explicit.touch()
    assert resolve_weights("vgg16", str(explicit)) == explicit  # --weights beats the variable

    monkeypatch.delenv("FILTER_ATLAS_WEIGHTS")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cached = tmp_path / "keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert resolve_weights("vgg16") == cached


def test_offline_without_weights_says_how_to_supply_them(atlas, tmp_path, monkeypatch):
    monkeypatch.delenv("FILTER_ATLAS_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    # No network here (or in CI): Keras's own download fails, and we say what to do.
    monkeypatch.setattr("keras.utils.get_file", fail_download)
    code, _, err = atlas("build", "--cache-dir", tmp_path / "c", "--quiet")
    assert code == 1
    assert "--weights PATH" in err and "FILTER_ATLAS_WEIGHTS" in err
    assert len(err.strip().splitlines()) == 1


def fail_download(*args, **kwargs):
    raise Exception("URL fetch failure: [Errno -2] Name or service not known")
