"""Check a backend's class against its protocol when the plugin host registers the spec.

Registering must stay cheap (discovering plugins imports no torch, and a backend module usually
imports it), so the class is looked at without importing anything new:

- a factory given as an object, or a ``"module:attr"`` whose module is already imported (often
  the plugin's own package), is resolved and inspected;
- otherwise the module's source is read and the class found in it: a plain class (no base
  classes, no ``__getattr__``) must define each method itself. For anything that cannot be
  told without running the module (a base class, a factory function), the check waits for
  ``BackendSpec.create``, which refuses an object that lacks a method.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path

from workbench.core.model.errors import PluginError
from workbench.core.model.specs import BackendSpec

#: class decorators known to add none of a backend's methods
_PLAIN_DECORATORS = {"dataclass", "dataclasses.dataclass", "final", "typing.final"}


def required_methods(spec: BackendSpec) -> tuple[str, ...]:
    """The methods the protocols of ``spec`` ask for: the spec's own list, which a test keeps
    equal to :class:`Backend` and :class:`ExchangeBackend`."""
    return spec.required_methods()


def backend_problems(spec: BackendSpec) -> list[str]:
    """What the backend's class lacks (empty when it fits, or when it cannot be told yet).

    Raises :class:`PluginError` when the factory's module does not exist or fails to resolve.
    """
    required = required_methods(spec)
    defined = _defined_methods(spec)
    if defined is None:
        return []
    missing = [name for name in required if name not in defined]
    if not missing:
        return []
    name = spec.factory if isinstance(spec.factory, str) else spec.factory.__name__
    methods = ", ".join(f"{m}()" for m in missing)
    return [f"the backend class {name} has no {methods} method"
            f"{'s' if len(missing) > 1 else ''}; a backend needs {', '.join(required)}"]


def _defined_methods(spec: BackendSpec) -> set[str] | None:
    factory = spec.factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        if module_name not in sys.modules:
            return _static_methods(spec, module_name, attr)
    target = spec.resolve()  # PluginError names the plugin and the factory string
    if not inspect.isclass(target):
        return None  # a factory function: only the object it builds can tell
    return {name for name in dir(target) if callable(getattr(target, name, None))}


def _static_methods(spec: BackendSpec, module_name: str, attr: str) -> set[str] | None:
    """The methods class ``attr`` defines in ``module_name``'s source, or None when only
    running the module could tell."""
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise PluginError(f"cannot import {spec.factory!r} ({type(exc).__name__}: {exc})",
                          where=f"plugin {spec.plugin!r}, {spec.id}") from exc
    if found is None:
        raise PluginError(f"cannot import {spec.factory!r} (no module named {module_name!r})",
                          where=f"plugin {spec.plugin!r}, {spec.id}")
    if not found.origin or not found.origin.endswith(".py") or "." in attr:
        return None
    try:
        tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None  # importing it at create time reports the real error
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == attr), None)
    if node is None or node.keywords or any(
            not (isinstance(b, ast.Name) and b.id == "object") for b in node.bases):
        return None  # inherited methods are out of sight
    if any(ast.unparse(d).split("(")[0] not in _PLAIN_DECORATORS for d in node.decorator_list):
        return None  # a decorator may add methods
    names: set[str] = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.AnnAssign) and item.value is not None \
                and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    return None if "__getattr__" in names else names
