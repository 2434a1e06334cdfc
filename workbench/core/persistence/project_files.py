"""Reading and writing ``project.json``: errors name the file and the field; saves are atomic."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.core.model.errors import ProjectError
from workbench.core.model.project import PROJECT_FILE, Project
from workbench.core.persistence.atomic import atomic_write_text


def project_file(path: str | Path) -> Path:
    """``path`` may be the project folder or its ``project.json``."""
    path = Path(path)
    return path / PROJECT_FILE if path.is_dir() or path.suffix != ".json" else path


def load_project(path: str | Path) -> Project:
    """Read a project; every problem raises :class:`ProjectError` naming the file and field."""
    file = project_file(path)
    if not file.exists():
        hint = (" (the folder has no project.json)" if Path(path).is_dir() else "")
        raise ProjectError(f"no such project{hint}", where=str(file if Path(path).is_dir()
                                                             else path))
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read the file: {exc.strerror}", where=str(file)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"not UTF-8 text (bad byte at offset {exc.start}); project files are "
                           "UTF-8 JSON", where=str(file)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"not valid JSON at line {exc.lineno}, column {exc.colno} "
                           f"({exc.msg}); the file may be truncated or hand-edited",
                           where=str(file)) from None
    project = Project.from_dict(data, where=str(file))
    project.folder = file.parent
    return project


def save_project(project: Project, folder: str | Path | None = None) -> Path:
    """Write ``project.json`` atomically into ``folder`` (default: where it came from)."""
    target = Path(folder) if folder is not None else project.folder
    if target is None:
        raise ProjectError("the project has no folder yet; choose one with Save As")
    atomic_write_text(target / PROJECT_FILE, project.to_json())
    project.folder = target
    return target / PROJECT_FILE
