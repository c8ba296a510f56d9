"""Faults and hostile input: nothing lost, nothing half-written taken as valid,
one clear line for the user."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import h5py
import pytest

from generator import cache as cache_module
from generator.imaging import decode_png
from tests.conftest import SLOW, copy_atlas, run_cli


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (but temporaries) by relative path: for file-by-file comparison."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp")
    }


def build_and_render(atlas, model, work: Path, *extra):
    code, _, err = atlas("build", "--model", model, "--cache-dir", work / "cache", "--quiet", "--iters", 5, *extra)
    assert code == 0, err
    code, _, err = atlas("render", "--cache-dir", work / "cache", "--site-dir", work / "site")
    assert code == 0, err


def test_same_settings_give_byte_identical_atlases(atlas, tiny_model, tiny_atlas, tmp_path):
    """A build now, against the session's build of the same settings made earlier in another folder."""
    build_and_render(atlas, tiny_model, tmp_path)
    assert tree(tmp_path / "cache" / "filters") == tree(tiny_atlas / "cache" / "filters")
    assert tree(tmp_path / "site") == tree(tiny_atlas / "site")


def test_killing_a_build_at_random_points_loses_nothing(atlas, tiny_model, tmp_path):
    """SIGKILL mid-build, three times at random moments, then finish: the result
    equals an uninterrupted build file for file."""
    slow = SLOW  # each layer takes a second or two, so kills land mid-layer
    build_and_render(atlas, tiny_model, tmp_path / "reference", *slow)
    work = tmp_path / "killed"
    entries = lambda: list((work / "cache").glob("filters/*/*.png"))
    rng = random.Random(1234)
    left = []
    for target in sorted(rng.sample(range(1, 10), 3)):  # 15 filters: kill before the last layer is in
        proc = run_cli("build", "--model", tiny_model, "--cache-dir", work / "cache", "--quiet", *slow)
        while len(entries()) < target and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        left.append(len(entries()))
        for path in entries():
            decode_png(path.read_bytes())  # whatever is there is whole
    assert any(n < 15 for n in left), left  # some kill did land mid-build
    build_and_render(atlas, tiny_model, work, *slow)
    assert tree(work / "cache" / "filters") == tree(tmp_path / "reference" / "cache" / "filters")
    assert tree(work / "site") == tree(tmp_path / "reference" / "site")


def test_sigterm_stops_like_ctrl_c(tiny_model, tmp_path):
    cache = tmp_path / "cache"
    proc = run_cli("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", *SLOW)
    deadline = time.monotonic() + 120
    while not list(cache.glob("filters/*/*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    assert "Traceback" not in err


def test_several_builds_at_once_share_a_cache_safely(tiny_model, tiny_atlas, tmp_path):
    args = ["build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet", "--iters", 5,
            "--precision", "float32"]  # as the reference was built
    builds = [run_cli(*args) for _ in range(2)]
    for proc in builds:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert tree(tmp_path / "cache" / "filters") == tree(tiny_atlas / "cache" / "filters")
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_writability_probes_of_concurrent_builds_never_collide(tmp_path):
    """Many probes of one folder at once, as builds and renders sharing a cache
    or site do: a fixed probe name lets one delete another's probe."""
    from concurrent.futures import ThreadPoolExecutor

    def probe_repeatedly(_):
        for _ in range(200):
            cache_module.ensure_writable(tmp_path)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(probe_repeatedly, range(8)))  # re-raises any probe's failure
    assert list(tmp_path.iterdir()) == []


def test_concurrent_renders_of_one_site(tiny_atlas, tmp_path):
    """Four renders into one site at once all finish, and leave it whole."""
    from concurrent.futures import ThreadPoolExecutor

    copy_atlas(tiny_atlas, tmp_path)
    from generator.site import render

    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: render(tmp_path / "cache", tmp_path / "site"), range(4)))
    assert pages == [22] * 4
    from tests.test_pipeline import broken_links

    assert broken_links(tmp_path / "site") == []


def test_concurrent_renders_into_fresh_sites(atlas, tiny_model, tmp_path, monkeypatch):
    """Renders that overlap never fail, on an empty site as on a full one: none
    deletes another's temporary files or the folder it is about to write into."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from generator.site import render
    from tests.test_pipeline import broken_links

    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet", "--iters", 2,
                         "--layers", "block1_conv1", "--filters", "0-1")
    assert code == 0, err
    cache, reference = tmp_path / "cache", tmp_path / "reference"
    render(cache, reference)
    write_temporary = cache_module.write_temporary

    # One render holds its first picture's temporary file in a fresh site while
    # another runs from start to end; then it renames it into place.
    held, other_done = threading.Event(), threading.Event()

    def holding(folder, *args):
        tmp = write_temporary(folder, *args)
        if threading.current_thread().name == "held" and folder.name == "img" and not held.is_set():
            held.set()
            other_done.wait(60)
        return tmp

    monkeypatch.setattr(cache_module, "write_temporary", holding)
    failures = []

    def run_held():
        try:
            render(cache, tmp_path / "site")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    first = threading.Thread(name="held", target=run_held)
    first.start()
    assert held.wait(60)
    render(cache, tmp_path / "site")
    other_done.set()
    first.join(60)
    assert failures == [] and tree(tmp_path / "site") == tree(reference)
    assert not list((tmp_path / "site").rglob("*.tmp"))
    leftover = tmp_path / "site" / "img" / ".gone.png.x1y2z3.tmp"  # of a render killed long ago
    leftover.write_bytes(b"half")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    render(cache, tmp_path / "site")
    assert not leftover.exists()

    # Many renders at once into fresh sites, 4 into each. Processes, forked:
    # threads would take turns on the GIL.
    monkeypatch.setattr(cache_module, "write_temporary", write_temporary)
    sites = [tmp_path / f"site{attempt}" for attempt in range(8) for _ in range(4)]
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        assert list(pool.map(render, [cache] * len(sites), sites)) == [6] * len(sites)
    for site in sorted(set(sites)):
        assert tree(site) == tree(reference) and not list(site.rglob("*.tmp"))
    assert broken_links(site) == []


def test_a_full_disk_fails_cleanly(atlas, tiny_model, tmp_path, monkeypatch):
    real_mkstemp = cache_module.tempfile.mkstemp

    def mkstemp_on_a_full_disk(dir, prefix, suffix):
        fd, path = real_mkstemp(dir=dir, prefix=prefix, suffix=suffix)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), path  # every write: ENOSPC

    monkeypatch.setattr(cache_module.tempfile, "mkstemp", mkstemp_on_a_full_disk)
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet")
    assert code == 1
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no temporary left behind


@pytest.mark.parametrize("command", ["build", "render"])
def test_unwritable_folders(atlas, tiny_model, tiny_atlas, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    if command == "build":
        code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", blocker / "cache", "--quiet")
    else:
        copy_atlas(tiny_atlas, tmp_path)
        code, _, err = atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", blocker / "site")
    assert code == 1 and "cannot write to" in err and "a-file is a file, not a folder" in err
    assert len(err.strip().splitlines()) == 1


def test_visualize_to_an_unwritable_place(atlas, tiny_model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = atlas("visualize", "block1_conv1", "--model", tiny_model, "--iters", 1,
                         "--out", blocker / "x.png")
    assert code == 1 and "cannot write" in err


def test_truncated_and_mismatched_weights(atlas, vgg16_weights, tiny_model, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(vgg16_weights.read_bytes()[: 10_000_000])
    code, _, err = atlas("visualize", "block1_conv1", "--weights", truncated, "--iters", 1)
    assert code == 1 and f"cannot load vgg16 from {truncated}" in err
    assert len(err.strip().splitlines()) == 1

    # an HDF5 weights file of another network: the tiny model's, in Keras's layout
    from generator.networks import load_model
    from keras.src.legacy.saving import legacy_h5_format

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, load_model(str(tiny_model), tiny_model))
    code, _, err = atlas("build", "--weights", other, "--cache-dir", tmp_path / "c", "--quiet")
    assert code == 1 and f"cannot load vgg16 from {other}" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_model_name(atlas, tmp_path):
    code, _, err = atlas("build", "--model", "alexnet", "--cache-dir", tmp_path / "c")
    assert code == 1 and "unknown model 'alexnet'; choose one of: convnext_tiny, densenet121," in err
    assert "vgg16, vgg19, or a path to a .keras or .onnx file" in err and len(err.strip().splitlines()) == 1


def test_hostile_layer_names_are_escaped_and_kept_inside_the_site(atlas, tmp_path):
    from generator.tf_quiet import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(3, 3, padding="same", name='block1_<script>alert("x")</script>'.replace("/", "\\"))(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", name='..\\..\\outside & "co"')(x)
    model = tmp_path / "hostile.keras"
    keras.Model(inputs, x).save(model)

    build_and_render(atlas, model, tmp_path, "--method", "fourier,seed")
    site = tmp_path / "site"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(site in p.parents or tmp_path / "cache" in p.parents or p == model for p in written)
    for page in site.rglob("*.html"):
        assert "<script>alert" not in page.read_text()
    index = (site / "hostile" / "index.html").read_text()
    assert "block1_&lt;script&gt;alert(&#34;x&#34;)&lt;\\script&gt;" in index
    from tests.test_pipeline import broken_links

    assert broken_links(site) == []


@pytest.mark.parametrize("damage", ["empty", "half", "last byte", "flipped byte", "other png"])
def test_every_kind_of_damaged_cache_entry_is_caught(atlas, tiny_model, tiny_atlas, tmp_path, damage):
    args = ("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--iters", 5)
    copy_atlas(tiny_atlas, tmp_path)
    before = tree(tmp_path / "cache" / "filters")
    victims = sorted((tmp_path / "cache" / "filters").rglob("*.png"))
    victim, donor = victims[2], victims[7]
    data = victim.read_bytes()
    damaged = {
        "empty": b"",
        "half": data[: len(data) // 2],
        "last byte": data[:-1],
        "flipped byte": data[:60] + bytes([data[60] ^ 0xFF]) + data[61:],
        "other png": donor.read_bytes(),  # whole, but another filter's: its key does not match
    }[damage]
    victim.write_bytes(damaged)
    code, out, err = atlas(*args)
    assert code == 0, err
    assert out.count("is corrupt; recomputing it") == 1
    assert tree(tmp_path / "cache" / "filters") == before


def test_a_model_without_convolutions(atlas, tmp_path):
    from generator.tf_quiet import import_keras

    keras = import_keras()
    inputs = keras.Input((8, 8, 3))
    path = tmp_path / "dense.keras"
    keras.Model(inputs, keras.layers.Dense(2, name="block1_dense")(inputs)).save(path)
    code, _, err = atlas("build", "--model", path, "--cache-dir", tmp_path / "c", "--quiet")
    assert code == 1 and "has no 2-D convolution layers to visualize" in err
