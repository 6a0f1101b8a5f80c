"""The import graph of `vq` has no cycles, and the runtime path never needs JAX.

Every ``import`` counts, at module level, inside functions and under ``TYPE_CHECKING``
alike: a cycle that only closes at call time still ties two modules into one unit, and
the next top-level import turns it into an ImportError.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import REPO


def package_roots() -> dict[str, Path]:
    """Import name -> folder, from pyproject's package-dir mapping (vq.train is train/)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: REPO / folder for name, folder in config["package-dir"].items()}


def modules() -> dict[str, Path]:
    roots = package_roots()
    out: dict[str, Path] = {}
    for package, folder in roots.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            # vq/'s own walk must not claim the folders mapped elsewhere
            if (
                package == "vq"
                and parts
                and f"vq.{parts[0]}" in roots
                and roots[f"vq.{parts[0]}"] != folder / parts[0]
            ):
                continue
            out[name] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import vq.media.video` -> that module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycles():
    mods = modules()
    assert "vq.train.trainer" in mods and "vq.media.video" in mods and "vq.runtimes.ort" in mods
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    assert "vq.media.video" in graph["vq.media"]  # the walk sees package re-exports
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
