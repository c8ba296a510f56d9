"""The package's shape: no module of generator/ imports, however indirectly or
lazily, one that imports it back (scripts/import_cycles.py finds them)."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "import_cycles.py"
checker = runpy.run_path(str(SCRIPT))


def test_generator_has_no_import_cycles():
    assert checker["import_cycles"](REPO / "generator") == []
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("no import cycles among ")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checker_finds_cycles_lazy_relative_self_and_through_a_package(tmp_path, capsys):
    package = tmp_path / "fakepkg"
    write(package / "__init__.py", "")
    write(package / "a.py", "from .b import helper\n")
    write(package / "b.py", "def helper():\n    from fakepkg.a import thing  # lazy: still a cycle\n    return thing\n")
    write(package / "d.py", "from . import d\n")  # imports itself
    write(package / "sub" / "__init__.py", "from .c import thing\n")
    write(package / "sub" / "c.py", "import fakepkg.sub\nfrom ..a import helper\nthing = 1\n")
    write(package / "e.py", "import os\nfrom fakepkg import a, sub\nfrom .sub import c\n")  # imports, no cycle

    graph = checker["import_graph"](package)
    assert graph["fakepkg.e"] == {"fakepkg.a", "fakepkg.sub", "fakepkg.sub.c"}
    assert graph["fakepkg.sub.c"] == {"fakepkg.sub", "fakepkg.a"}
    assert checker["import_cycles"](package) == [["fakepkg.a", "fakepkg.b"], ["fakepkg.d"],
                                                 ["fakepkg.sub", "fakepkg.sub.c"]]
    assert checker["main"]([str(package)]) == 1
    out = capsys.readouterr().out
    assert "fakepkg.b -> fakepkg.a" in out and "fakepkg.d -> fakepkg.d" in out and "no import cycles" not in out

    write(package / "b.py", "def helper():\n    return 1\n")
    write(package / "d.py", "")
    write(package / "sub" / "c.py", "from ..a import helper\nthing = 1\n")
    assert checker["main"]([str(package)]) == 0
    assert capsys.readouterr().out == "no import cycles among 7 modules\n"
