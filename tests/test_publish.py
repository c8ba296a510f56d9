"""`make publish`: the rendered site becomes the gh-pages branch of a remote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_project(tmp_path: Path) -> tuple[Path, Path]:
    project, remote = tmp_path / "project", tmp_path / "remote.git"
    project.mkdir()
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "t@example.invalid")
    git(project, "config", "user.name", "t")
    shutil.copy(REPO / "Makefile", project)
    git(project, "add", "Makefile")
    git(project, "commit", "-qm", "init")
    return project, remote


def test_publish_pushes_site_as_gh_pages(tmp_path):
    project, remote = make_project(tmp_path)
    (project / "site" / "layers").mkdir(parents=True)
    (project / "site" / "index.html").write_text("<h1>atlas</h1>")
    (project / "site" / "layers" / "a.html").write_text("a")
    run = subprocess.run(["make", "publish", f"REMOTE={remote}"], cwd=project, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    files = git(remote, "ls-tree", "-r", "--name-only", "gh-pages").split()
    assert "index.html" in files and "layers/a.html" in files
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"

    (project / "site" / "layers" / "a.html").unlink()
    run = subprocess.run(["make", "publish", f"REMOTE={remote}"], cwd=project, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "layers/a.html" not in git(remote, "ls-tree", "-r", "--name-only", "gh-pages").split()
    assert len(git(remote, "log", "--oneline", "gh-pages").splitlines()) == 2


def test_publish_without_a_site_says_so(tmp_path):
    project, remote = make_project(tmp_path)
    run = subprocess.run(["make", "publish", f"REMOTE={remote}"], cwd=project, capture_output=True, text=True)
    assert run.returncode != 0 and "run make atlas first" in run.stderr
