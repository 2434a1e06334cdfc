"""Application settings: recent projects, window layout, theme — JSON in the config folder.

The folder is ``$SNN_WORKBENCH_CONFIG`` when set (tests point it at a temporary folder so a
developer's own settings are never read or written), else Qt's per-user config location.
Writes are atomic. A damaged file (not JSON, not an object, a field of the wrong type or out of
range, a FIFO in its place) is renamed to ``settings.json.broken`` (an earlier one is kept: the
new name gets a timestamp) and defaults are used, never a crash; :attr:`AppSettings.warnings`
says what happened, and the window shows it once it is up.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.persistence.atomic import atomic_write_text
from workbench.gui.config_files import ConfigFileProblem, read_config_text, set_aside

log = logging.getLogger(__name__)

CONFIG_ENV = "SNN_WORKBENCH_CONFIG"
SCHEMA_VERSION = 1
MAX_RECENT = 10
#: the themes the View menu offers (workbench.gui.theme draws them)
THEMES = ("light", "dark")
#: seconds between autosaves: fewer than 5 would write constantly, more than an hour is no
#: autosave at all
AUTOSAVE_RANGE = (5, 3600)
#: a settings file is a few kilobytes; anything far larger is not ours
MAX_SETTINGS_BYTES = 1 << 20


def config_dir() -> Path:
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
    return Path(base or Path.home() / ".config") / "snn-workbench"


@dataclass
class AppSettings:
    schema_version: int = SCHEMA_VERSION
    recent_projects: list[str] = field(default_factory=list)
    theme: str = "light"
    window_geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""  # base64 of QMainWindow.saveState()
    disabled_plugins: list[str] = field(default_factory=list)
    autosave_seconds: int = 60
    #: Run ▸ Run on…'s last choice: ``{"id": runner id, "params": {...}, "epochs": n}``
    run_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def path(cls) -> Path:
        return config_dir() / "settings.json"

    def __post_init__(self) -> None:
        #: what went wrong reading the settings or their folder, for the window to show (not a
        #: dataclass field: never saved)
        self.warnings: list[str] = []

    @classmethod
    def load(cls) -> AppSettings:
        """The saved settings; defaults (and a warning) when the file is missing or damaged."""
        path = cls.path()
        settings = cls._read(path)
        folder_problem = _unwritable(path.parent)
        if folder_problem:
            settings.warnings.append(folder_problem)
        return settings  # the window logs and shows the warnings (the Log panel exists then)

    @classmethod
    def _read(cls, path: Path) -> AppSettings:
        try:
            if not os.path.lexists(path):
                return cls()
        except (OSError, ValueError):  # ValueError: a NUL byte in $SNN_WORKBENCH_CONFIG
            return cls()
        try:
            data = json.loads(read_config_text(path, limit=MAX_SETTINGS_BYTES))
            return cls(**_checked_fields(data))
        except ConfigFileProblem as exc:
            problem = str(exc)
        except (ValueError, RecursionError) as exc:  # json: bad syntax, a 5 000-digit number
            problem = _json_problem(exc)
        settings = cls()
        try:
            kept = set_aside(path, suffix=".broken")
        except OSError as exc:
            settings.warnings.append(
                f"The settings file {path} {problem}; using the default settings. It could not "
                f"be renamed ({exc.strerror}): fix or delete it by hand.")
        else:
            settings.warnings.append(
                f"The settings file {path} {problem}; using the default settings. The damaged "
                f"file was kept as {kept}.")
        return settings

    def save(self) -> None:
        try:
            atomic_write_text(self.path(), json.dumps(asdict(self), indent=2))
        except OSError as exc:
            log.warning("could not save settings to %s: %s", self.path(), exc)

    def restore_layout(self, window: Any) -> None:
        """Put a QMainWindow's geometry and docks back as they were saved; a damaged value is
        ignored (the default layout), never an error."""
        from PySide6.QtCore import QByteArray

        try:
            if self.window_geometry:
                window.restoreGeometry(QByteArray(base64.b64decode(self.window_geometry)))
            if self.window_state:
                window.restoreState(QByteArray(base64.b64decode(self.window_state)))
        except (ValueError, TypeError) as exc:
            log.warning("ignoring the saved window layout: %s", exc)

    def save_layout(self, window: Any) -> None:
        """Remember a QMainWindow's geometry and docks, and save the settings."""
        self.window_geometry = base64.b64encode(bytes(window.saveGeometry())).decode()
        self.window_state = base64.b64encode(bytes(window.saveState())).decode()
        self.save()

    def add_recent(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        self.recent_projects = [folder] + [p for p in self.recent_projects if p != folder]
        del self.recent_projects[MAX_RECENT:]


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, RecursionError):
        return "is nested too deeply to read"
    return f"cannot be read as JSON ({exc})"


def _checked_fields(data: Any) -> dict[str, Any]:
    """The known fields of a settings object, each checked against its type and range; the
    first bad one raises ConfigFileProblem naming it. Unknown keys are ignored (a newer version of the
    app may have written them)."""
    if not isinstance(data, dict):
        raise ConfigFileProblem(f"holds a JSON {_json_type(data)} where an object belongs")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_str_list(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    low, high = AUTOSAVE_RANGE
    checks: dict[str, tuple[Any, str]] = {
        "schema_version": (is_int, "a whole number"),
        "recent_projects": (is_str_list, "a list of folder names"),
        "theme": (lambda v: v in THEMES, f"one of {', '.join(THEMES)}"),
        "window_geometry": (lambda v: isinstance(v, str), "text"),
        "window_state": (lambda v: isinstance(v, str), "text"),
        "disabled_plugins": (is_str_list, "a list of plugin names"),
        "autosave_seconds": (lambda v: is_int(v) and low <= v <= high,
                             f"a whole number of seconds from {low} to {high}"),
        "run_on": (lambda v: isinstance(v, dict) and isinstance(v.get("id", ""), str)
                   and isinstance(v.get("params", {}), dict),
                   'an object {"id": runner, "params": {...}}'),
    }
    known = {}
    for name, (ok, expected) in checks.items():
        if name not in data:
            continue
        value = data[name]
        if not ok(value):
            shown = repr(value) if len(repr(value)) <= 40 else f"a JSON {_json_type(value)}"
            raise ConfigFileProblem(f"has {name} = {shown}, expected {expected}")
        known[name] = value
    known["recent_projects"] = known.get("recent_projects", [])[:MAX_RECENT]
    return known


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (dict, "object"), (list, "list"), (str, "string"),
                       (int, "number"), (float, "number")):
        if isinstance(value, kind):
            return name
    return "null"


def _unwritable(folder: Path) -> str:
    """A warning when the config folder cannot be made or written ("" when it is fine)."""
    try:
        if os.path.lexists(folder) and not folder.is_dir():
            raise NotADirectoryError(20, "it is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "permission denied")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        return (f"The settings folder {folder} cannot be written ({reason}): settings, recent "
                "projects and autosave are not kept until that is fixed. Set "
                f"{CONFIG_ENV} to another folder to use one.")
    return ""
