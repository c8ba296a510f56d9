"""The whole pipeline on a tiny model: build, cache, resume, render, browse."""

from __future__ import annotations

import re
import signal
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from generator.optvis.engine import LayerEngine
from generator.imaging import decode_png
from tests.conftest import SLOW, copy_atlas, read_record, run_cli


def build_args(model, tmp_path, *extra):
    return ["build", "--model", model, "--cache-dir", tmp_path / "cache", "--quiet", "--iters", 5, *extra]


def cached_pngs(cache_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((cache_dir / "filters").rglob("*.png"))}


def test_build_caches_every_filter_and_render_links_resolve(atlas, tiny_model, tmp_path):
    code, out, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 0, err
    assert "15 filters of 3 layers" in out
    assert len(cached_pngs(tmp_path / "cache")) == 4 + 5 + 6

    code, out, err = atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    assert code == 0, err
    site = tmp_path / "site"
    pages = sorted(site.rglob("*.html"))
    # the models' index, the model's index, 2 blocks, 3 layers, 15 filters
    assert len(pages) == 1 + 1 + 2 + 3 + 15
    broken = broken_links(site)
    assert broken == []
    filter_page = (site / "tiny" / "filters" / "block1_conv2" / "3.html").read_text()
    assert 'rel="prev" href="../../../tiny/filters/block1_conv2/2.html"' in filter_page
    assert 'rel="next" href="../../../tiny/filters/block1_conv2/4.html"' in filter_page
    assert 'rel="up" href="../../../tiny/layers/block1_conv2.html"' in filter_page
    layer_page = (site / "tiny" / "layers" / "block2_conv1.html").read_text()
    assert layer_page.count('class="thumb"') == 6


def test_images_are_named_by_content_and_carry_activation(atlas, tiny_model, tmp_path):
    atlas(*build_args(tiny_model, tmp_path, "--method", "seed"))
    atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    record = read_record(tmp_path / "cache")
    images = sorted((tmp_path / "site" / "img").glob("*.png"))
    assert len(images) == 15
    import hashlib

    for path in images:
        assert path.stem == hashlib.sha256(path.read_bytes()).hexdigest()[:20]
        pixels, meta = decode_png(path.read_bytes())
        assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
        assert pixels.min() == 0 and pixels.max() == 255  # min-max scaled, as the seed plots
        entry = next(
            e for layer in record["layers"] if layer["name"] == meta["layer"]
            for e in layer["entries"] if e["index"] == meta["filter"]
        )
        assert entry["images"][0]["activation"] == pytest.approx(meta["activation"])


def test_second_build_is_all_cache_hits(atlas, tiny_model, tiny_atlas, tmp_path, monkeypatch):
    copy_atlas(tiny_atlas, tmp_path)  # the first build
    before = cached_pngs(tmp_path / "cache")

    def no_compute(*args, **kwargs):
        raise AssertionError("a cache hit must compute nothing")

    monkeypatch.setattr(LayerEngine, "run", no_compute)
    code, _, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 0, err
    assert cached_pngs(tmp_path / "cache") == before


def test_changed_settings_miss_the_cache(atlas, tiny_model, tmp_path):
    atlas(*build_args(tiny_model, tmp_path, "--layers", "block1_conv1"))
    first = cached_pngs(tmp_path / "cache")
    atlas(*build_args(tiny_model, tmp_path, "--layers", "block1_conv1", "--seed", "7"))
    both = cached_pngs(tmp_path / "cache")
    assert len(first) == 4 and len(both) == 8
    assert set(first) < set(both)


def test_selection_of_layers_blocks_and_filters(atlas, tiny_model, tmp_path):
    code, out, _ = atlas(*build_args(tiny_model, tmp_path, "--layers", "block1", "--filters", "0-1,4"))
    assert code == 0
    record = read_record(tmp_path / "cache")
    chosen = {layer["name"]: [e["index"] for e in layer["entries"]] for layer in record["layers"]}
    # block1_conv1 has only 4 filters, so index 4 applies to block1_conv2 alone
    assert chosen == {"block1_conv1": [0, 1], "block1_conv2": [0, 1, 4]}


def test_interrupted_build_keeps_finished_filters_and_resumes(atlas, tiny_model, tiny_atlas, tmp_path, monkeypatch):
    reference = tiny_atlas / "cache"  # the same build, never interrupted

    calls = []
    real_run = LayerEngine.run

    def interrupt_on_second_layer(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(LayerEngine, "run", interrupt_on_second_layer)
    code, _, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 130
    assert "interrupted" in err and len(err.strip().splitlines()) == 1
    assert len(cached_pngs(tmp_path / "cache")) == 4  # the first layer survived

    monkeypatch.setattr(LayerEngine, "run", real_run)
    code, _, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 0, err
    assert cached_pngs(tmp_path / "cache") == cached_pngs(reference)


def when_the_second_layer_begins(monkeypatch, interrupt) -> list:
    """Make `interrupt()` happen as the engine starts the second layer; returns
    the engine's runs so far (one entry each)."""
    calls = []
    real_run = LayerEngine.run

    def run(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            interrupt()
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(LayerEngine, "run", run)
    return calls


def test_an_interrupt_that_tensorflow_wraps_still_stops_the_build_as_ctrl_c_does(atlas, tiny_model, tmp_path,
                                                                                monkeypatch):
    """Ctrl-C while TensorFlow traces a graph comes back as a StagingError made
    from a SystemError whose cause is the KeyboardInterrupt."""

    def interrupt_while_tracing():
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as interrupt:
                raise SystemError("<built-in method> returned a result with an exception set") from interrupt
        except SystemError as error:
            raise RuntimeError("in user code: ...") from error  # as autograph's StagingError wraps it

    when_the_second_layer_begins(monkeypatch, interrupt_while_tracing)
    code, _, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 130, err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1
    assert len(cached_pngs(tmp_path / "cache")) == 4  # the first layer survived


def test_an_interrupt_that_a_library_swallows_still_stops_the_build_after_that_batch(atlas, tiny_model, tmp_path,
                                                                                     monkeypatch):
    """Ctrl-C can land inside TensorFlow's C++ calling back into Python, which
    may clear the KeyboardInterrupt; the build stops at the next batch all the same."""

    def interrupt_swallowed():
        try:
            signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C, through the build's own handler
        except KeyboardInterrupt:
            pass  # as a C-level attribute probe clears whatever was raised

    calls = when_the_second_layer_begins(monkeypatch, interrupt_swallowed)
    code, _, err = atlas(*build_args(tiny_model, tmp_path))
    assert code == 130, err
    assert "interrupted" in err and len(err.strip().splitlines()) == 1
    assert len(cached_pngs(tmp_path / "cache")) == 4 + 5  # the batch under way was finished and kept
    assert len(calls) == 2  # and the last layer was never begun


def test_ctrl_c_in_a_real_process_loses_nothing(tiny_model, tmp_path):
    cache = tmp_path / "cache"
    args = ["build", "--model", tiny_model, "--cache-dir", cache, "--quiet", *SLOW]
    # Started with SIGINT ignored, as a shell starts background jobs: it must stop all the same.
    proc = run_cli(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not list(cache.glob("filters/*/*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    kept = cached_pngs(cache)
    assert 1 <= len(kept) < 15
    assert not list(cache.rglob("*.tmp"))  # no half-written entry left behind
    for data in kept.values():
        decode_png(data)  # every kept entry is a whole, valid PNG


def test_corrupt_cache_entry_is_reported_and_recomputed(atlas, tiny_model, tiny_atlas, tmp_path):
    copy_atlas(tiny_atlas, tmp_path)
    before = cached_pngs(tmp_path / "cache")
    victim = sorted((tmp_path / "cache" / "filters").rglob("*.png"))[3]
    victim.write_bytes(victim.read_bytes()[:100])
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--iters", 5)
    assert code == 0, err
    assert "corrupt" in out + err
    assert cached_pngs(tmp_path / "cache") == before


def test_rerender_of_unchanged_atlas_rewrites_nothing(atlas, tiny_atlas, tmp_path):
    copy_atlas(tiny_atlas, tmp_path)
    site_args = ("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    atlas(*site_args)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*") if p.is_file()}
    atlas(*site_args)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "site").rglob("*") if p.is_file()} == stamps


def test_render_removes_pages_of_filters_no_longer_built(atlas, tiny_model, tiny_atlas, tmp_path):
    site_args = ("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    copy_atlas(tiny_atlas, tmp_path)  # built and rendered whole
    atlas(*build_args(tiny_model, tmp_path, "--layers", "block2_conv1"))
    atlas(*site_args)
    assert not (tmp_path / "site" / "tiny" / "layers" / "block1_conv1.html").exists()
    assert len(list((tmp_path / "site" / "img").glob("*.png"))) == 6
    assert broken_links(tmp_path / "site") == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "block9_conv1"], "layer 'block9_conv1' is unknown; conv layers are: block1_conv1"),
        (["--layers", "block1_pool"], "layer 'block1_pool' is not a convolution; conv layers are: block1_conv1"),
        (["--filters", "6"], "filter 6 is out of range: block2_conv1 has filters 0-5"),
        (["--filters", "2-x"], "cannot parse --filters '2-x'"),
        (["--filters", "-3"], "filter index -3 is negative"),
        (["--iters", "0"], "--iters must be at least 1"),
    ],
)
def test_bad_build_input_gets_one_line_error(atlas, tiny_model, tmp_path, args, message):
    code, _, err = atlas("build", "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--quiet", *args)
    assert code == 1
    assert err.startswith("filter-atlas: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_render_without_a_build_says_what_to_do(atlas, tmp_path):
    code, _, err = atlas("render", "--cache-dir", tmp_path / "none", "--site-dir", tmp_path / "site")
    assert code == 1 and "run `filter-atlas build` first" in err


def test_missing_model_file(atlas, tmp_path):
    code, _, err = atlas("build", "--model", tmp_path / "nope.keras", "--cache-dir", tmp_path / "c")
    assert code == 1 and "model file not found" in err


class LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)


def broken_links(site: Path) -> list[str]:
    """Every href/src of every page that does not resolve to a file in the site."""
    broken = []
    for page in site.rglob("*.html"):
        collector = LinkCollector()
        collector.feed(page.read_text())
        for target in collector.targets:
            if target == "data:,":  # the empty inline favicon
                continue
            parts = urlsplit(target)
            assert not parts.scheme and not parts.netloc, f"{page}: external link {target}"
            assert not target.startswith("/"), f"{page}: absolute link {target}"
            if not parts.path:  # a fragment of the page itself, e.g. the skip link
                assert f'id="{parts.fragment}"' in page.read_text(), f"{page}: no #{parts.fragment}"
                continue
            resolved = (page.parent / parts.path).resolve()
            if not resolved.is_file() or site.resolve() not in resolved.parents:
                broken.append(f"{page.relative_to(site)} -> {target}")
    return broken


def test_several_methods_are_shown_side_by_side(atlas, tiny_model, tmp_path):
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--method", "fourier,seed", "--layers", "block2_conv1"))
    assert code == 0, err
    record = read_record(tmp_path / "cache")
    images = record["layers"][0]["entries"][0]["images"]
    assert [img["method"] for img in images] == ["fourier", "seed"]
    assert images[0]["key"] != images[1]["key"]
    assert len(cached_pngs(tmp_path / "cache")) == 12

    atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")
    page = (tmp_path / "site" / "tiny" / "filters" / "block2_conv1" / "0.html").read_text()
    assert page.count("<figure>") == 2 and "fourier" in page and "seed" in page
    assert broken_links(tmp_path / "site") == []


def test_method_parameters_are_part_of_the_cache_key(atlas, tiny_model, tmp_path):
    atlas(*build_args(tiny_model, tmp_path, "--method", "fourier", "--layers", "block1_conv1"))
    atlas(*build_args(tiny_model, tmp_path, "--method", "fourier", "--layers", "block1_conv1", "--iters", 6))
    assert len(cached_pngs(tmp_path / "cache")) == 8


@pytest.mark.parametrize("method", ["seed", "fourier"])
def test_a_filter_alone_gets_the_picture_it_gets_in_a_full_batch(atlas, tiny_model, tmp_path, method):
    atlas(*build_args(tiny_model, tmp_path / "all", "--method", method))
    atlas(*build_args(tiny_model, tmp_path / "one", "--method", method, "--layers", "block2_conv1", "--filters", 4))
    alone = cached_pngs(tmp_path / "one" / "cache")
    assert len(alone) == 1
    name, data = next(iter(alone.items()))
    assert cached_pngs(tmp_path / "all" / "cache")[name] == data


def test_unknown_method(atlas, tiny_model, tmp_path):
    code, _, err = atlas(*build_args(tiny_model, tmp_path, "--method", "dream"))
    assert code == 1 and "unknown method 'dream'; choose from: seed, fourier" in err


def test_visualize_with_the_fourier_method(atlas, tiny_model, tmp_path):
    code, out, err = atlas("visualize", "block2_conv1", "--filter", 2, "--method", "fourier", "--iters", 3,
                           "--model", tiny_model, "--out", tmp_path / "f.png")
    assert code == 0, err
    pixels, meta = decode_png((tmp_path / "f.png").read_bytes())
    assert pixels.shape == (16, 16, 3) and meta["method"] == "fourier" and meta["filter"] == 2


def test_quiet_prints_the_final_line_alone_and_counts_read_right(atlas, tiny_model, tmp_path):
    """--quiet: no per-layer reports, no preprocessing line, only the final line;
    one of anything is singular, on the command line and on every page."""
    from tests.test_examples import PHOTOS

    cache = tmp_path / "cache"
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 2,
                           "--layers", "block2_conv1", "--filters", "0", "--images", PHOTOS, "--examples", 1)
    assert code == 0, err
    assert out.splitlines() == [f"tiny: 1 filter of 1 layer ready in {cache}; "
                                f"top 1 example per filter from 5 photos in {PHOTOS}"]
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", cache, "--iters", 2,
                           "--layers", "block2_conv1", "--filters", "1")
    assert code == 0, err
    assert "block2_conv1: 1 filter in " in out and "tiny.keras: preprocessing tf" in out  # shown without --quiet
    code, out, err = atlas("build", "--model", tiny_model, "--cache-dir", cache, "--iters", 1, "--quiet",
                           "--method", "fourier,seed", "--layers", "block2_conv1", "--filters", "0")
    assert code == 0, err
    code, out, err = atlas("render", "--cache-dir", cache, "--site-dir", tmp_path / "site")
    assert out.splitlines() == [f"site with 5 pages in {tmp_path / 'site'}; open {tmp_path / 'site' / 'index.html'}"]
    site = tmp_path / "site"
    text = {p.relative_to(site).as_posix(): " ".join(p.read_text().split()) for p in site.rglob("*.html")}
    for name, page in text.items():
        assert not re.search(r"\b1 (filter|layer|block|photo|step|model|convolution layer)s\b", page), name
    assert "1 filter in 1 layer and 1 block" in text["index.html"]
    assert "1 of 6 filters" in text["tiny/index.html"] and "1 filter in 1 convolution layer" in text["tiny/index.html"]
    assert "1 layer, 1 filter." in text["tiny/blocks/block2.html"]
    assert "1 of 6 filters." in text["tiny/layers/block2_conv1.html"]
    assert "1 step</dd>" in text["tiny/filters/block2_conv1/0.html"]


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def webp_pixels(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_thumbnails_keep_the_aspect_ratio_and_are_filtered(tmp_path, monkeypatch):
    """Reduced with an area-like filter (1-px stripes become grey, not moiré),
    enlarged with nearest-neighbour (pixels stay blocks), keyed by source, size and filter."""
    from generator.site import files
    from generator.cache import Cache

    cache = Cache(tmp_path / "cache")
    stripes = np.zeros((160, 224, 3))
    stripes[:, ::2] = 255  # the finest detail a 224 px picture has
    thumb = webp_pixels(files.thumbnail(cache, "a" * 64, png_bytes(stripes)))
    assert thumb.shape == (69, 96, 3)  # 224x160 scaled to 96 on the longer side
    assert abs(thumb.mean() - 127.5) < 8 and thumb.std() < 12, (thumb.mean(), thumb.std())

    checker = (np.indices((16, 24)).sum(axis=0) % 2 * 255)[..., None].repeat(3, axis=2)
    thumb = webp_pixels(files.thumbnail(cache, "b" * 64, png_bytes(checker)))
    assert thumb.shape == (64, 96, 3)  # 4 x 4 pixels for each of the picture's
    centres = thumb[1::4, 1::4][:, :, 0]  # the inner corner of every block
    assert np.abs(centres - checker[:, :, 0]).max() < 48

    monkeypatch.setattr(files, "THUMB_SIZE", 48)  # another size: another thumbnail, not the cached one
    assert webp_pixels(files.thumbnail(cache, "a" * 64, png_bytes(stripes))).shape == (34, 48, 3)
    monkeypatch.setattr(files, "THUMB_DOWNSCALE", "nearest")  # another filter: made again
    assert webp_pixels(files.thumbnail(cache, "a" * 64, png_bytes(stripes))).std() > 100
    assert len(list((tmp_path / "cache" / "thumbs").iterdir())) == 4


def test_a_non_square_picture_keeps_its_shape_on_the_site(atlas, tmp_path):
    from PIL import Image

    from generator.tf_quiet import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 24, 3))
    model = tmp_path / "wide.keras"
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs)).save(model)
    code, _, err = atlas(*build_args(model, tmp_path, "--iters", 1, "--filters", "0"))
    assert code == 0, err
    assert atlas("render", "--cache-dir", tmp_path / "cache", "--site-dir", tmp_path / "site")[0] == 0
    site = tmp_path / "site"
    page = (site / "wide" / "filters" / "block1_conv1" / "0.html").read_text()
    assert re.search(r'<img src="[./]*img/\w+\.png" width="384" height="256"', page)
    (thumb,) = (site / "thumbs").iterdir()
    with Image.open(thumb) as image:
        assert image.size == (96, 64)
    css = (site / "style.css").read_text()
    large = re.search(r"\.large img \{[^}]*\}", css.replace(".thumb img, .large img", "")).group(0)
    assert "aspect-ratio" not in large and "image-rendering: pixelated" in css
