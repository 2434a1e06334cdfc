"""Application settings: recent projects, window layout, theme — JSON in the config folder.

The folder is ``$SNN_WORKBENCH_CONFIG`` when set (tests point it at a temporary folder so a
developer's own settings are never read or written), else Qt's per-user config location.
Writes are atomic; an unreadable file is set aside and defaults are used, never a crash.
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

log = logging.getLogger(__name__)

CONFIG_ENV = "SNN_WORKBENCH_CONFIG"
SCHEMA_VERSION = 1
MAX_RECENT = 10


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

    @classmethod
    def path(cls) -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> AppSettings:
        path = cls.path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            settings = cls(**known)
            if not isinstance(settings.recent_projects, list):
                raise ValueError("recent_projects is not a list")
            return settings
        except (OSError, ValueError, TypeError) as exc:
            backup = path.with_suffix(".json.broken")
            log.warning("settings file %s is unreadable (%s); using defaults, kept it as %s",
                        path, exc, backup)
            try:
                path.replace(backup)
            except OSError:
                pass
            return cls()

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
