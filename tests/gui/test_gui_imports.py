"""The desktop app starts without importing torch: no module under ``workbench/gui`` imports it
at module level (the functions that compute import it when they run)."""

from __future__ import annotations

import ast
from pathlib import Path

GUI = Path(__file__).resolve().parents[2] / "workbench" / "gui"


def module_level_torch_imports(source: str) -> list[int]:
    """Line numbers of ``import torch…`` / ``from torch… import`` outside functions (module
    body, classes, and ``if``/``try`` blocks at those levels)."""
    found: list[int] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                if any(a.name == "torch" or a.name.startswith("torch.") for a in node.names):
                    found.append(node.lineno)
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0 and (module == "torch" or module.startswith("torch.")):
                    found.append(node.lineno)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # runs only when called
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt)]
                              + [s for h in inner if isinstance(h, ast.ExceptHandler)
                                 for s in h.body])

    visit(ast.parse(source).body)
    return found


def test_the_checker_sees_module_level_imports_and_ignores_function_ones():
    source = ("import os\nimport torch.nn as nn\nclass A:\n    from torch import Tensor\n"
              "if True:\n    import torch\ndef f():\n    import torch\n"
              "try:\n    pass\nexcept ImportError:\n    from torch import cuda\n")
    assert module_level_torch_imports(source) == [2, 4, 6, 12]


def test_no_gui_module_imports_torch_at_module_level():
    files = sorted(GUI.rglob("*.py"))
    assert len(files) > 20  # the walk found the package
    offenders = {str(path.relative_to(GUI)): lines for path in files
                 if (lines := module_level_torch_imports(path.read_text(encoding="utf-8")))}
    assert offenders == {}
