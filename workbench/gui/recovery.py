"""Autosave to a recovery file, and restore after a crash.

While a project has unsaved changes, its state is written every few seconds to
``<config>/recovery/<key>.json`` (the project dict plus the folder it belongs to). A clean save or
close removes the file; a recovery file found at start-up means the app did not close cleanly,
and the user is offered the unsaved work back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.model.errors import ProjectError
from workbench.core.model.project import Project
from workbench.core.persistence.atomic import atomic_write_text
from workbench.gui.settings import config_dir

log = logging.getLogger(__name__)


def recovery_dir() -> Path:
    return config_dir() / "recovery"


def _key(project: Project) -> str:
    where = str(project.folder.resolve()) if project.folder else f"untitled-{id(project)}"
    return hashlib.sha1(where.encode()).hexdigest()[:16]


def recovery_file(project: Project) -> Path:
    return recovery_dir() / f"{_key(project)}.json"


def write_recovery(project: Project) -> Path:
    path = recovery_file(project)
    payload = {"saved_at": time.time(),
               "folder": str(project.folder) if project.folder else None,
               "project": project.to_dict()}
    atomic_write_text(path, json.dumps(payload))
    return path


def discard_recovery(project: Project) -> None:
    recovery_file(project).unlink(missing_ok=True)


@dataclass
class Recovered:
    file: Path
    project: Project
    saved_at: float


def find_recoveries() -> list[Recovered]:
    """Readable recovery files, newest first; unreadable ones are logged and skipped."""
    found = []
    folder = recovery_dir()
    if not folder.is_dir():
        return found
    for file in folder.glob("*.json"):
        try:
            payload = json.loads(file.read_text(encoding="utf-8"))
            project = Project.from_dict(payload["project"], where=str(file))
            project.folder = Path(payload["folder"]) if payload.get("folder") else None
            found.append(Recovered(file, project, float(payload.get("saved_at", 0))))
        except (OSError, ValueError, KeyError, ProjectError) as exc:
            log.warning("ignoring unreadable recovery file %s: %s", file, exc)
    return sorted(found, key=lambda r: r.saved_at, reverse=True)
