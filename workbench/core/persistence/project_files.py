"""Reading and writing ``project.json``: errors name the file and the field; a save commits the
project and its weights in one step (:mod:`workbench.core.persistence.project_store`)."""

from __future__ import annotations

from pathlib import Path

from workbench.core.model.errors import ProjectError
from workbench.core.model.json_text import parse_json
from workbench.core.model.project import PROJECT_FILE, Project
from workbench.core.persistence.files import regular_file
from workbench.core.persistence.project_store import clean_leftovers, commit_project


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
    regular_file(file, ProjectError, what="project file")  # a FIFO would block the read
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read the file: {exc.strerror}", where=str(file)) from None
    data = parse_json(raw, where=str(file), error=ProjectError)
    project = Project.from_dict(data, where=str(file))
    project.folder = file.parent
    # what a killed save left behind goes now (a read-only folder keeps it, silently)
    clean_leftovers(project.folder, project.weights_file)
    return project


def save_project(project: Project, folder: str | Path | None = None, *,
                 overwrite: bool = False) -> Path:
    """Save ``project`` into ``folder`` (default: where it came from) with its weights, as one
    step (:func:`~workbench.core.persistence.project_store.commit_project`): in place the
    weights file stays, into a new folder it is copied. Another project there is replaced only
    with ``overwrite``."""
    return commit_project(project, folder, overwrite=overwrite)
