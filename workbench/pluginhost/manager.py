"""Discover plugins and load them so that one broken plugin never takes the others down.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to import,
so we walk the entry points ourselves and isolate three stages per plugin:

1. **import** of the entry point's module,
2. **register** with pluggy (which rejects hooks with unknown arguments; we also reject hook
   names that have no spec, which catches typos),
3. **each hook call** and **each spec** it returns (right type, valid id and params, an id
   prefixed with the plugin's name, no duplicate, and for a backend a class with the methods
   of its protocol: :mod:`workbench.pluginhost.conformance`).

Each failure is recorded as a :class:`PluginFailure` with its traceback, and loading goes on.
In strict mode (``SNN_WORKBENCH_STRICT_PLUGINS=1``; on in our own tests) the first failure
raises instead.

A plugin cannot take the application down either: every ``BaseException`` but
``KeyboardInterrupt`` counts as a failure (a ``sys.exit()`` at import included), and the import
and each contribution hook run on a worker thread that is waited for at most
``SNN_WORKBENCH_PLUGIN_TIMEOUT`` seconds (default 20): a plugin that hangs is reported
("did not return within 20 s") and left behind while loading goes on.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from workbench.core.model.errors import PluginError
from workbench.core.model.specs import BackendSpec, Spec
from workbench.pluginhost import hookspecs
from workbench.pluginhost.conformance import backend_problems
from workbench.pluginhost.hookspecs import CONTRIBUTION_HOOKS, PROJECT_NAME
from workbench.pluginhost.registry import ContributionRegistry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "snn_workbench.plugins"
OWN_DISTRIBUTION = "snn-workbench"
STRICT_ENV = "SNN_WORKBENCH_STRICT_PLUGINS"
EXTRA_PLUGINS_ENV = "SNN_WORKBENCH_PLUGINS"
NO_AUTOLOAD_ENV = "SNN_WORKBENCH_DISABLE_PLUGIN_AUTOLOAD"
TIMEOUT_ENV = "SNN_WORKBENCH_PLUGIN_TIMEOUT"
#: seconds a plugin's import or one of its hooks may take before it counts as hung
DEFAULT_TIMEOUT_S = 20.0


class StrictPluginError(PluginError):
    """Raised in strict mode for the first plugin failure."""


@dataclass
class PluginFailure:
    plugin: str
    stage: str  # "import", "register", "hook wb_neurons", "spec wb_x.y"
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"plugin": self.plugin, "stage": self.stage, "message": self.message,
                "traceback": self.traceback}


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str = ""
    contributions: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "module": self.module, "version": self.version,
                "contributions": self.contributions}


@dataclass
class PluginReport:
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"plugins": [p.to_dict() for p in self.plugins],
                "failures": [f.to_dict() for f in self.failures]}


@dataclass
class _Candidate:
    """A plugin to load: from an entry point, or a module named on the command line."""

    name: str
    load: object  # zero-argument callable returning the plugin object
    module: str
    version: str = ""


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def plugin_timeout() -> float:
    """``SNN_WORKBENCH_PLUGIN_TIMEOUT`` in seconds (default 20); a bad value is an input
    error naming the variable."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:  # NaN fails this too
        raise PluginError(f"expected a number of seconds above 0, got {raw!r}",
                          where=f"environment variable {TIMEOUT_ENV}")
    return value


class PluginTimeout(Exception):
    """A plugin's import or hook did not return in time (it is left running, unreferenced)."""


class _Outcome:
    value: object = None
    error: BaseException | None = None


def call_isolated(fn: Callable[[], object], timeout: float, what: str) -> object:
    """``fn()`` on a daemon worker thread, waited for ``timeout`` seconds.

    Returns its value; re-raises what it raised, ``SystemExit`` included (so the caller reports
    it instead of the process ending); raises :class:`PluginTimeout` when it has not returned
    in time. A Python thread cannot be stopped: a hung one is left behind as a daemon, which
    does not keep the process alive.
    """
    outcome = _Outcome()

    def work() -> None:
        try:
            outcome.value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            outcome.error = exc

    worker = threading.Thread(target=work, name=f"plugin {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise PluginTimeout(f"did not return within {timeout:g} s; the plugin may be waiting "
                            f"for something that never comes (raise the limit with "
                            f"{TIMEOUT_ENV}=SECONDS)")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value


class PluginHost:
    """Loads plugins and holds what they contribute: ``registry`` and ``report``."""

    def __init__(self, *, strict: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registry = ContributionRegistry()
        self.report = PluginReport()
        self.strict = _env_on(STRICT_ENV) if strict is None else strict
        self.timeout = plugin_timeout()

    # -- discovery ---------------------------------------------------------------------------
    def load(self, *, entry_points_: Iterable[EntryPoint] | None = None,
             modules: Iterable[str] = (), disabled: Iterable[str] = ()) -> PluginReport:
        """Load entry-point plugins and extra plugin ``modules``, then collect contributions.

        ``SNN_WORKBENCH_PLUGINS`` (comma-separated module names) adds modules too;
        ``SNN_WORKBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` keeps only this distribution's own plugins.
        """
        disabled = set(disabled)
        for candidate in self._candidates(entry_points_, modules):
            if candidate.name in disabled or self.pm.has_plugin(candidate.name):
                continue
            self._load_one(candidate)
        self._collect()
        return self.report

    def _candidates(self, eps: Iterable[EntryPoint] | None, modules: Iterable[str]):
        own_only = eps is None and _env_on(NO_AUTOLOAD_ENV)
        if eps is None:
            eps = entry_points(group=ENTRY_POINT_GROUP)
        for ep in eps:
            dist = getattr(ep, "dist", None)
            if own_only and (dist is None or dist.name != OWN_DISTRIBUTION):
                continue
            yield _Candidate(ep.name, ep.load, ep.value, getattr(dist, "version", "") or "")
        extra = [m.strip() for m in os.environ.get(EXTRA_PLUGINS_ENV, "").split(",") if m.strip()]
        for module in [*modules, *extra]:
            yield _Candidate(module.rsplit(".", 1)[-1], lambda m=module: importlib.import_module(m),
                             module)

    def _load_one(self, candidate: _Candidate) -> None:
        try:
            plugin = call_isolated(candidate.load, self.timeout,  # type: ignore[arg-type]
                                   f"{candidate.name} import")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() at import is a failure too
            self._fail(candidate.name, "import", exc)
            return
        try:
            self.pm.register(plugin, name=candidate.name)
            self._reject_unknown_hooks(candidate.name, plugin)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - see above
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(candidate.name, "register", exc)
            return
        self.report.plugins.append(PluginInfo(candidate.name, candidate.module, candidate.version))

    def _reject_unknown_hooks(self, name: str, plugin: object) -> None:
        # pluggy's check_pending() looks at every plugin; we want to blame only this one.
        for caller in self.pm.get_hookcallers(plugin) or ():
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.optionalhook:
                    raise pluggy.PluginValidationError(
                        plugin, f"hook {caller.name!r} of plugin {name!r} has no specification "
                                f"(a typo? known hooks: {', '.join(CONTRIBUTION_HOOKS)})")

    # -- contributions -----------------------------------------------------------------------
    def _collect(self) -> None:
        infos = {p.name: p for p in self.report.plugins}
        for hook_name, spec_cls in CONTRIBUTION_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                info = infos.get(plugin)
                if info is None or hook_name in info.contributions:
                    continue  # already collected in an earlier load() call
                try:  # list() inside: a generator may hang or fail while it is consumed
                    items = call_isolated(lambda f=impl.function: list(f() or []),
                                          self.timeout, f"{plugin} {hook_name}")
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - sys.exit() in a hook too
                    self._fail(plugin, f"hook {hook_name}", exc)
                    continue
                ids = info.contributions.setdefault(spec_cls.KIND, [])
                for item in items:
                    try:
                        accepted = self._accept(plugin, hook_name, spec_cls, item)
                    except KeyboardInterrupt:
                        raise
                    except BaseException as exc:  # noqa: BLE001 - a spec's own methods ran
                        self._fail(plugin, f"spec {getattr(item, 'id', '?')}", exc)
                        continue
                    if accepted:
                        ids.append(item.id)
                if not ids:
                    info.contributions.pop(spec_cls.KIND)

    def _accept(self, plugin: str, hook_name: str, spec_cls: type, item: object) -> bool:
        label = getattr(item, "id", repr(item))
        problems: list[str]
        # A hook's items must be of its own kind: wb_blocks takes BlockSpec but not an
        # AttentionSpec (that belongs to wb_attention), although AttentionSpec subclasses it.
        if not isinstance(item, Spec) or item.KIND != spec_cls.KIND:
            problems = [f"{hook_name} must return {spec_cls.__name__} objects, "
                        f"got {type(item).__name__}"]
        else:
            problems = item.problems()
            if not problems and item.plugin != plugin:
                problems = [f"id {item.id!r} must start with the plugin's name {plugin + '.'!r}"]
            if not problems and isinstance(item, BackendSpec):
                try:
                    problems = backend_problems(item)
                except PluginError as exc:
                    problems = [str(exc)]
        if not problems:
            try:
                self.registry.add(plugin, item)
                return True
            except ValueError as exc:
                problems = [str(exc)]
        self._fail(plugin, f"spec {label}", ValueError("; ".join(problems)))
        return False

    def _fail(self, plugin: str, stage: str, exc: BaseException) -> None:
        if self.strict:
            raise StrictPluginError(f"plugin {plugin!r} failed at {stage}: "
                                    f"{_message(exc)}") from exc
        # Logged at debug level only: a command says how many plugins failed in one line
        # (the CLI's load_host), and `snn-workbench plugins` or the GUI's dialog the details.
        log.debug("plugin %s failed at %s: %s", plugin, stage, exc)
        self.report.failures.append(PluginFailure(
            plugin, stage, _message(exc), "".join(traceback.format_exception(exc))))

    def failure_summary(self) -> str:
        """One line for every failed plugin together, or "" when none failed."""
        names = list(dict.fromkeys(f.plugin for f in self.report.failures))
        if not names:
            return ""
        count = f"{len(names)} plugin{'s' if len(names) > 1 else ''}"
        return (f"{count} failed to load ({', '.join(names)}); see 'snn-workbench plugins'")


def _message(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    if isinstance(exc, PluginTimeout):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def load_plugins(*, strict: bool | None = None, modules: Iterable[str] = (),
                 disabled: Iterable[str] = ()) -> PluginHost:
    """Create a :class:`PluginHost` and load every installed plugin."""
    host = PluginHost(strict=strict)
    host.load(modules=modules, disabled=disabled)
    return host
