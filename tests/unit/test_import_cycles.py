"""No import cycles anywhere in kubehop (DESIGN "forbid import cycles").

The graph is grimp's: every `import` of a module, at the top, under `TYPE_CHECKING` or inside a
function alike. A cycle is reported as the modules in the order they import each other.
`test_no_cycles_through_package_modules` adds what Python does implicitly: importing `a.b.c`
from outside `a.b` runs `a/b/__init__.py` first, so a package module that imports its
submodules is part of every chain that goes through one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grimp
import pytest

PACKAGE = "kubehop"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def find_cycles(nodes: Iterable[str], edges: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (or one importing itself),
    each as one cycle through it: a chain of modules ending where it started."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    # Tarjan's algorithm, iterative (the graph is deep enough for Python's recursion limit).
    work: list[tuple[str, list[str]]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        work.append((v, sorted(edges(v), reverse=True)))

    for root in sorted(nodes):
        if root in index:
            continue
        visit(root)
        while work:
            v, todo = work[-1]
            if todo:
                w = todo.pop()
                if w not in index:
                    visit(w)
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1 or v in set(edges(v)):
                    components.append(sorted(component))
    return [_cycle_in(c, edges) for c in components]


def _cycle_in(component: list[str], edges: Callable[[str], Iterable[str]]) -> list[str]:
    """One cycle inside a strongly connected component, from its first module (breadth first,
    so the shortest one back)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges(v)):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start, start]


def _describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in cycles)


def test_find_cycles_names_each_cycle() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"]}
    assert find_cycles(edges, lambda m: edges.get(m, [])) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles(["x", "y"], lambda m: ["y"] if m == "x" else []) == []


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles = find_cycles(graph.modules, graph.find_modules_directly_imported_by)
    assert not cycles, f"import cycles:\n{_describe(cycles)}"


def _with_packages(graph: grimp.ImportGraph) -> Callable[[str], set[str]]:
    """Imports plus, for an import of `p.q.m` from outside `p.q`, the package modules `p.q` and
    `p` that Python runs first (a module's own enclosing packages are already running)."""
    modules = graph.modules

    def edges(importer: str) -> set[str]:
        out: set[str] = set()
        for imported in graph.find_modules_directly_imported_by(importer):
            out.add(imported)
            parts = imported.split(".")
            for i in range(1, len(parts)):
                package = ".".join(parts[:i])
                inside = importer == package or importer.startswith(package + ".")
                if package in modules and not inside:
                    out.add(package)
        return out

    return edges


def test_no_cycles_through_package_modules(graph: grimp.ImportGraph) -> None:
    cycles = find_cycles(graph.modules, _with_packages(graph))
    assert not cycles, f"import cycles through package __init__ modules:\n{_describe(cycles)}"
