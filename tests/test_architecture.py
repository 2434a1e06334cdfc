"""Dependency rules, enforced with the import-linter contracts of pyproject.toml, and no import
circles between the modules of the workbench and its plugins."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint, str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_never_imports_qt():
    code = ("import sys, workbench.core.runs.session, workbench.core.runs.training, workbench.cli; "
            "print(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["root_packages"]


def _cycles(graph) -> list[list[str]]:
    """Every import circle, as one path per strongly connected group of modules (Tarjan)."""
    modules = sorted(graph.modules)
    imports = {m: sorted(i for i in graph.find_modules_directly_imported_by(m)
                         if i in graph.modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        # iterative DFS: the graph is deep enough for Python's recursion limit to matter
        work = [(root, iter(imports[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(imports[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycles():
    """Imports inside functions count (they only defer a circle); ``if TYPE_CHECKING:`` ones
    do not (they never run)."""
    import grimp

    graph = grimp.build_graph(*_root_packages(), exclude_type_checking_imports=True)
    described = []
    for group in _cycles(graph):
        members = set(group)
        edges = [f"{a} -> {b} (line {d['line_number']})"
                 for a in group for b in sorted(graph.find_modules_directly_imported_by(a))
                 if b in members
                 for d in graph.get_import_details(importer=a, imported=b)[:1]]
        described.append("\n  ".join(edges))
    assert not described, "import circles:\n  " + "\n\n  ".join(described)


def test_the_cycle_finder_finds_a_circle():
    class Graph:  # a -> b -> c -> a, and d alone
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module):
            return self.edges.get(module, set())

    assert _cycles(Graph()) == [["a", "b", "c"]]
