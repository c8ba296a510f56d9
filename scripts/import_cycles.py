"""Import cycles among a package's modules, found by reading the source with `ast`.

    python scripts/import_cycles.py [PACKAGE_DIR]     (default: generator/)

Every import of one of the package's modules counts, wherever it is written: at the
top, inside a function (a lazy import is still a cycle), under `if TYPE_CHECKING`.
`import pkg.sub` and `from pkg import sub` name the module pkg/sub (a package is its
__init__.py); `from .sub import name` names sub, or sub.name where that is a
submodule. As in `import pkg.sub`, the packages above a module are not counted. Prints each cycle, a strongly connected component of more than one module
or a module importing itself, and exits 1; else prints "no import cycles among N
modules" and exits 0.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def package_modules(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package (a package's name is its __init__.py)."""
    package_dir = Path(package_dir)
    root = package_dir.name
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [root, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies within (pkg.mod.attr -> pkg.mod)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # The package a relative import starts from: the module's own package, then up.
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                if not base:
                    continue  # climbs out of the package
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            target = _resolve(source, modules)
            if target is None:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                # `from pkg import submodule` imports the submodule; any other name, the module it is in.
                found.add(sub if sub in modules else target)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = package_modules(package_dir)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively; each sorted, the list sorted."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def import_cycles(package_dir: Path) -> list[list[str]]:
    """Each cycle among the package's imports: components of more than one module, or a self-import."""
    graph = import_graph(package_dir)
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    edges = [f"  {a} -> {b}" for a in cycle for b in sorted(graph[a]) if b in members]
    return f"import cycle among {len(cycle)} module(s): {', '.join(cycle)}\n" + "\n".join(edges)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    package_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "generator"
    graph = import_graph(package_dir)
    cycles = import_cycles(package_dir)
    for cycle in cycles:
        print(describe(cycle, graph))
    if cycles:
        return 1
    print(f"no import cycles among {len(graph)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
