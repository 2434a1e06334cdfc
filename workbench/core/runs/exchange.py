"""Importing a network from an exchange format (NIR) into a new project.

The exchange backend only *reads*: ``read_file(path, ctx) -> (Project, model)``. The core owns
the rest — the data the network must match, the check that its outputs fit the classes, and an
all-or-nothing save of the new project folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import PROJECT_FILE, Project
from workbench.core.persistence.project_store import check_target
from workbench.core.runs.events import Artifact, Log, RunEvent, RunFinished, RunStarted


class ImportContext:
    """What an exchange backend may ask while reading: the installed specs, and the input
    shape of a project's dataset (loaded once, through the session the import then keeps).
    ``warn(message)`` adds a warning line to the import run's log."""

    def __init__(self, lookup: Any) -> None:
        self.lookup = lookup
        self.warnings: list[str] = []
        self._sessions: dict[int, Any] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def session(self, project: Project) -> Any:
        from workbench.core.runs.session import Session

        key = id(project)
        if key not in self._sessions:
            self._sessions[key] = Session(project, self.lookup)
        return self._sessions[key]

    def input_shape(self, project: Project) -> tuple[int, ...]:
        """The per-step input shape the project's network sees (dataset, then encoder)."""
        return self.session(project).step_shape()


def import_events(backend: Any, lookup: Any, source: Path, folder: Path, fmt: str,
                  run_id: str, *, overwrite: bool = False) -> Iterator[RunEvent]:
    check_target(folder, overwrite=overwrite)
    yield RunStarted(run_id, "import", 1, {"format": fmt, "file": str(source),
                                           "out": str(folder)})
    ctx = ImportContext(lookup)
    project, model = backend.read_file(source, ctx)
    for message in ctx.warnings:
        yield Log(run_id, "warning", message)
    session = ctx.session(project)
    data = session.data()
    outputs = model.output_shape[-1] if getattr(model, "output_shape", None) else 0
    if outputs != data.n_classes:
        raise WorkbenchError(f"the network has {outputs} outputs but the dataset "
                             f"{project.dataset.id} has {data.n_classes} classes; import it "
                             "with a dataset that matches", where=str(source))
    session.model, session.weights_loaded = model, True
    _save_new_project(session, folder, overwrite)
    yield Artifact(run_id, str(folder / PROJECT_FILE), "project")
    yield RunFinished(run_id, "ok", summary={"project": str(folder), "name": project.name},
                      result=session)


def _save_new_project(session: Any, folder: Path, overwrite: bool) -> None:
    """Write project and weights as one step (a project already there stays whole when it
    fails); a folder the save created goes again, so a failure leaves nothing behind."""
    from workbench.core.persistence.project_store import commit_project
    from workbench.core.persistence.weights import weights_bytes

    created = not folder.exists()
    try:
        commit_project(session.project, folder, overwrite=overwrite,
                       weights=weights_bytes(session.model, where=str(folder)))
    except BaseException:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
