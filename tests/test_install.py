"""Installed the usual way: the wheel in a fresh virtual environment, away
from the source tree, builds and renders like the editable install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.conftest import REPO
from tests.test_faults import tree


def run(*args, cwd=None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def fresh_environment(wheel: Path, where: Path) -> Path:
    """A new virtual environment with the wheel alone installed; the test
    environment's dependencies (TensorFlow, ...) are reused through a .pth
    line rather than installed again."""
    run(sys.executable, "-m", "venv", "--without-pip", where)
    python = where / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel)
    # Only the dependencies' folder: .pth files in it (the editable install's) are not read.
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where / "bin"


def clean_source(where: Path) -> Path:
    """The source tree without build outputs: setuptools would reuse a stale build/ folder."""
    anywhere = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "node_modules", "__pycache__", ".pytest_cache")
    outputs = {".atlas-cache", "build", "site", "weights", "dist"}  # at the top only: generator/site is code

    def skip(folder, names):
        return set(anywhere(folder, names)) | (outputs & set(names) if Path(folder) == REPO else set())

    return Path(shutil.copytree(REPO, where, ignore=skip))


def test_the_wheel_works_in_a_fresh_environment(tiny_model, tmp_path):
    source = clean_source(tmp_path / "source")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", tmp_path / "dist", source, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("filter_atlas-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("generator/templates/base.html", "generator/templates/style.css",
                   "generator/templates/atlas.js", "generator/networks/units.py", "generator/cli.py"):
        assert needed in names
    assert not [n for n in names if n.startswith(("tests/", "data/", "templates/"))]

    bin_dir = fresh_environment(wheel, tmp_path / "env")
    away = tmp_path / "elsewhere"  # not the source tree: nothing importable from it
    away.mkdir()
    where = run(bin_dir / "python", "-c", "import generator; print(generator.__file__)", cwd=away)
    assert where.startswith(str(tmp_path / "env")), where
    assert run(bin_dir / "filter-atlas", "--version", cwd=away).strip() == "filter-atlas 0.1.0"

    cache = tmp_path / "cache"
    run(bin_dir / "filter-atlas", "build", "--model", tiny_model, "--cache-dir", cache, "--quiet", "--iters", 3,
        cwd=away)
    run(bin_dir / "filter-atlas", "render", "--cache-dir", cache, "--site-dir", tmp_path / "site-wheel", cwd=away)
    assert (tmp_path / "site-wheel" / "style.css").is_file()
    assert len(list((tmp_path / "site-wheel").rglob("*.html"))) == 22

    from generator.site import render

    render(cache, tmp_path / "site-editable")
    assert tree(tmp_path / "site-wheel") == tree(tmp_path / "site-editable")
