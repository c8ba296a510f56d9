"""The site in a real browser (Debian's Chromium driven by Playwright), from a
local server and from file://: walking, keys, the jump box, grid controls."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from generator.cli import main
from tests.conftest import REPO, as_on_a_float32_machine

# The sites and the browser are the session's: a worker of `make test` runs other
# files' tests in between, and module fixtures would be made again each time.

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed: apt-get install chromium")


@pytest.fixture(scope="session")
def site(tiny_model, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as monkeypatch:
        as_on_a_float32_machine(monkeypatch)
        build_and_render(work, ["build", "--model", tiny_model, "--cache-dir", work / "cache", "--quiet",
                                "--iters", 5, "--method", "fourier,seed", "--views", "unit", "--diversity", 2,
                                "--images", REPO / "data" / "photos", "--examples", 3, "--bottom"])
    return work / "site"


def build_and_render(work: Path, *builds: list) -> None:
    for args in (*builds, ["render", "--cache-dir", work / "cache", "--site-dir", work / "site"]):
        assert main([str(a) for a in args]) == 0


@pytest.fixture(scope="session")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type in ("error", "warning") and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    # Requests cut short by leaving the page (net::ERR_ABORTED) are not errors.
    page.on("requestfailed", lambda r: "ABORTED" not in (r.failure or "")
            and page.errors.append(f"failed: {r.url} {r.failure}"))
    yield page
    context.close()


@pytest.fixture(params=["http", "file"])
def base(request, site, server) -> str:
    return server if request.param == "http" else site.as_uri() + "/"


def test_walk_index_block_layer_filter(page, base):
    page.goto(base + "index.html")
    page.click("h2 >> text=tiny")
    assert page.url.endswith("tiny/index.html")
    page.click("h2 >> text=block2")
    assert page.url.endswith("tiny/blocks/block2.html")
    page.click("h2 >> text=block2_conv1")
    assert page.url.endswith("layers/block2_conv1.html")
    page.click("a.thumb[data-index='3']")
    assert page.url.endswith("filters/block2_conv1/3.html")
    assert page.locator("nav.crumbs").inner_text().split() == \
        ["Filter", "atlas", "›", "tiny", "›", "block2", "›", "block2_conv1", "›", "filter", "3"]
    assert page.locator("section.side").first.locator(".large").first.locator("figure img").count() == 2 * 2
    # fourier and seed side by side: channel and neuron
    assert page.errors == []


def test_arrow_keys_move_between_filters(page, base):
    page.goto(base + "tiny/filters/block1_conv2/2.html")
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/filters/block1_conv2/3.html")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url("**/filters/block1_conv2/2.html")
    page.keyboard.press("ArrowUp")
    page.wait_for_url("**/layers/block1_conv2.html")
    assert page.errors == []


def test_arrow_keys_cross_layer_boundaries(page, base):
    page.goto(base + "tiny/filters/block1_conv1/3.html")
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/filters/block1_conv2/0.html")


@pytest.mark.parametrize("query", ["block2_conv1/4", "b2c1 4", "block2_conv1 4", "  BLOCK2_CONV1:4 ",
                                   "tiny/block2_conv1/4", "tiny b2c1 4"])
def test_jump_box_finds_a_filter(page, base, query):
    page.goto(base + "tiny/layers/block1_conv1.html")
    page.fill("#jump-to", query)
    page.press("#jump-to", "Enter")
    page.wait_for_url("**/filters/block2_conv1/4.html")
    assert page.errors == []


def test_jump_box_explains_what_it_cannot_find(page, base):
    page.goto(base + "index.html")
    page.fill("#jump-to", "block9_conv1 3")
    page.press("#jump-to", "Enter")
    assert "No layer" in page.inner_text("#jump-status")
    page.fill("#jump-to", "b2c1 99")
    page.press("#jump-to", "Enter")
    assert "has no filter 99" in page.inner_text("#jump-status")
    assert page.url.endswith("index.html")


def test_grid_sorts_by_activation_and_resizes(page, server):
    page.goto(server + "tiny/layers/block2_conv1.html")
    activations = lambda: [float(a) for a in page.eval_on_selector_all(
        "#grid a.thumb", "els => els.map(e => e.dataset.activation)")]
    page.select_option("#sort-by", "activation")
    assert activations() == sorted(activations(), reverse=True)
    page.select_option("#sort-by", "index")
    indices = page.eval_on_selector_all("#grid a.thumb", "els => els.map(e => Number(e.dataset.index))")
    assert indices == sorted(indices)
    page.fill("#thumb-size", "160")
    page.dispatch_event("#thumb-size", "input")
    assert page.eval_on_selector("#grid img", "img => img.getBoundingClientRect().width") == 160


def test_grid_switches_between_the_views_and_the_top_photos(page, base):
    page.goto(base + "tiny/layers/block2_conv1.html")
    first = "#grid a.thumb img"
    shown = lambda: page.eval_on_selector(first, "img => img.getAttribute('src')")
    channel = shown()
    for view in ("neuron", "negative", "diversity", "accent", "example"):
        page.select_option("#show", view)
        expected = page.eval_on_selector("#grid a.thumb", f"a => a.dataset.show{view.capitalize()}")
        assert shown() == expected and shown() != channel
    page.select_option("#show", "channel")
    assert shown() == channel
    assert page.errors == []


def test_the_unit_page_shows_every_view_beside_the_photos(page, base):
    page.goto(base + "tiny/filters/block2_conv1/3.html")
    up, down = page.locator("section.side").nth(0), page.locator("section.side").nth(1)
    # channel and neuron, 2 diverse, and each of 3 top photos' crop beside its accentuation's, per method
    assert up.locator("figure img").count() == 2 * 2 + 2 * 2 + 2 * 3 * 2
    assert up.locator(".examples .example").count() == 3 and down.locator(".examples .example").count() == 3
    assert down.locator("figure img").count() == 2  # the negative picture, per method
    for img in page.locator("figure img").all():
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    assert "photo" in up.locator("figcaption").first.inner_text()
    assert page.errors == []


def test_focus_shows_activation_and_is_visible(page, server):
    page.goto(server + "tiny/layers/block1_conv1.html")
    first = page.locator("#grid a.thumb").first
    assert not first.locator(".act").is_visible()
    first.focus()
    assert first.locator(".act").is_visible()
    assert page.eval_on_selector("#grid a.thumb", "a => getComputedStyle(a).outlineStyle") != "none"


def test_every_page_link_and_image_loads(page, server, site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    for rel in pages:
        page.goto(server + rel)
        targets = page.eval_on_selector_all(
            "a[href], img[src], link[href], script[src]", "els => els.map(e => e.href || e.src)")
        for url in set(targets) - {"data:,"}:  # the empty inline favicon
            assert url.startswith(server), f"{rel}: leaves the site: {url}"
            assert page.request.get(url).status == 200, f"{rel}: broken {url}"
    assert page.errors == []


def test_screenshots_of_a_layer_and_a_filter_page(page, server, tmp_path):
    out = Path(os.environ.get("ATLAS_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    for rel, name in [("tiny/layers/block2_conv1.html", "layer.png"), ("tiny/filters/block2_conv1/3.html", "filter.png")]:
        page.goto(server + rel)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=out / name, full_page=True)
        assert (out / name).stat().st_size > 5000
    assert page.errors == []


@pytest.fixture(scope="session")
def zoo(tiny_model, tmp_path_factory) -> str:
    """Two models in one cache and one site, served over HTTP."""
    from tests.conftest import make_tiny_model

    work = tmp_path_factory.mktemp("zoo")
    other = make_tiny_model(work / "other.keras", seed=1)
    with pytest.MonkeyPatch.context() as monkeypatch:
        as_on_a_float32_machine(monkeypatch)
        build_and_render(work, *(["build", "--model", model, "--cache-dir", work / "cache", "--quiet", "--iters", 2]
                                 for model in (tiny_model, other)))
    handler = functools.partial(QuietHandler, directory=str(work / "site"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.mark.parametrize("start, query, lands", [
    ("index.html", "other/block2_conv1 4", "other/filters/block2_conv1/4.html"),
    ("index.html", "tiny b1c2 1", "tiny/filters/block1_conv2/1.html"),
    ("other/index.html", "tiny/block1_conv1/0", "tiny/filters/block1_conv1/0.html"),
    ("other/index.html", "block2_conv1 5", "other/filters/block2_conv1/5.html"),  # the page's own model
    ("tiny/layers/block1_conv1.html", "b2c1 5", "tiny/filters/block2_conv1/5.html"),
    ("index.html", "other", "other/index.html"),
])
def test_jump_box_across_models(page, zoo, start, query, lands):
    page.goto(zoo + start)
    page.fill("#jump-to", query)
    page.press("#jump-to", "Enter")
    page.wait_for_url("**/" + lands)
    assert page.errors == []


def test_jump_box_asks_which_model_when_two_have_the_layer(page, zoo):
    page.goto(zoo + "index.html")
    assert page.locator("section.model h2").all_inner_texts() == ["other", "tiny"]
    page.fill("#jump-to", "block2_conv1 4")
    page.press("#jump-to", "Enter")
    assert "is in other, tiny; name the model, e.g. other/block2_conv1" in page.inner_text("#jump-status")
    assert page.url.endswith("/index.html")
