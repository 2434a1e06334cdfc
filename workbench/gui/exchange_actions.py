"""File ▸ Import NIR… and File ▸ Export NIR…: exchange runs started on the run controller.

Both are catalog runs (:func:`~workbench.core.runs.catalog.import_file`,
:func:`~workbench.core.runs.catalog.export`) on the worker thread, so reading or writing a large
network never freezes the window. Whichever installed backend speaks the format does the work;
the application imports no plugin. An import opens the new project when its run ends ``ok``;
its warnings (e.g. a NIR file that records no time step) go to the log and the status bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QGridLayout, QLabel, QLineEdit

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import PROJECT_FILE
from workbench.core.persistence.examples import user_projects_dir
from workbench.core.runs import catalog
from workbench.core.runs.engine import Run
from workbench.core.runs.events import Log, RunEvent, RunFinished
from workbench.gui.actions import make_action
from workbench.gui.run_owner import one_line, run_readiness

log = logging.getLogger(__name__)

FORMAT = "nir"


def outside_projects(folder: Path) -> Path:
    """``folder``, or when it is inside a project folder (a NIR file saved into its project),
    the folder that holds that project: a project is never made inside another one."""
    folder = folder.absolute()
    for parent in (folder, *folder.parents):
        if (parent / PROJECT_FILE).is_file():
            folder = parent.parent
    return folder


def free_folder(path: Path) -> Path:
    """The new project's folder: beside the file (or beside the project folder the file is in),
    named after it, never an existing one."""
    where = outside_projects(path.parent)
    folder, n = where / path.stem, 2
    while folder.exists():
        folder, n = where / f"{path.stem}-{n}", n + 1
    return folder


def import_file_dialog(parent: Any) -> QFileDialog:
    """File ▸ Import NIR…'s file dialog, with a time-step field under the file name
    (``dialog.dt_field``; blank or 0: the step the file records)."""
    dialog = QFileDialog(parent, "Import a NIR graph", "", "NIR graphs (*.nir);;All files (*)")
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # a native one takes no field
    field = QLineEdit(dialog)
    field.setObjectName("dt_field")
    field.setPlaceholderText("from the file")
    field.setToolTip("The Euler step (seconds) the file's LIF time constants assume. Blank: "
                     "the one the file records, else 1e-4 (snnTorch's) with a warning. Norse "
                     "writes 0.001 unless told otherwise.")
    label = QLabel("Time step &dt (s):", dialog)
    label.setBuddy(field)
    layout = dialog.layout()
    if isinstance(layout, QGridLayout):  # Qt's own dialog: below "File name" / "Files of type"
        row = layout.rowCount()
        layout.addWidget(label, row, 0)
        layout.addWidget(field, row, 1)
    dialog.dt_field = field
    return dialog


def dt_value(text: str) -> float | None:
    """The time step typed into the import dialog; None (the file's) when blank or 0."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise WorkbenchError(f"{text!r} is not a number: give seconds (e.g. 0.001), or leave "
                             "it blank for the file's", where="time step dt") from None
    return value or None  # the core checks the range


def export_start(project: Any) -> Path:
    """Export's suggested file: beside the project folder (never inside it, where importing the
    file back would nest a project in the project), else in the user's projects folder."""
    folder = project.folder.absolute().parent if project.folder else user_projects_dir()
    return folder / f"{project.name}.nir"


class ExchangeActions(QObject):
    """Starts NIR imports and exports; ``finished(what, ok)`` when one ends ("import" or
    "export"), after an imported project was opened."""

    finished = Signal(str, bool)

    def __init__(self, window: Any, start_run: Callable[[Run, str], str]) -> None:
        super().__init__(window)
        self.window = window
        self._start_run = start_run
        self._runs: dict[str, tuple[str, Path]] = {}  # run id -> (what, file)
        self._ends: dict[str, RunFinished] = {}
        self._warnings: dict[str, list[str]] = {}  # run id -> its warning lines
        self.act_import_nir = make_action(window, "&Import NIR…", self.import_dialog)
        self.act_export_nir = make_action(window, "&Export NIR…", self.export_dialog)
        window.controller.run_event.connect(self._on_event)
        window.controller.run_finished.connect(self._on_run_finished)

    # -- import ----------------------------------------------------------------------------------
    def import_dialog(self) -> None:
        dialog = import_file_dialog(self.window)
        if not dialog.exec() or not dialog.selectedFiles():
            return
        try:
            dt = dt_value(dialog.dt_field.text())
        except WorkbenchError as exc:
            self.window.show_error("Cannot import the NIR file", one_line(str(exc)))
            return
        self.import_nir(dialog.selectedFiles()[0], dt=dt)

    def import_nir(self, path: str | Path, folder: str | Path | None = None,
                   dt: float | None = None) -> str:
        """Turn a NIR file into a project (by default a new folder beside the file, named after
        it) and open it when done; ``dt``: the Euler step to read it with (None: the file's).
        The run id, "" when it cannot start (said why)."""
        path = Path(path)
        folder = Path(folder) if folder is not None else free_folder(path)
        params = {"dt": dt} if dt else None
        if not self.window.projects.confirm_discard():
            return ""
        return self._start("import", path, "importing", "Cannot import the NIR file",
                           lambda: catalog.import_file(self.window.host.registry, path=path,
                                                       out=folder, fmt=FORMAT, params=params))

    # -- export ----------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        reason = self._export_reason()
        if reason:  # said before a file is asked for, not after
            self.window.show_error("Cannot export", reason)
            return
        project = self.window.doc.project
        start = str(export_start(project))
        path, _ = QFileDialog.getSaveFileName(self.window, "Export as a NIR graph", start,
                                              "NIR graphs (*.nir)")
        if path:
            self.export_nir(path)

    def export_nir(self, path: str | Path) -> str:
        """Write the open project's trained network (its saved weights) as a NIR graph; the
        run id, "" when it cannot start (said why)."""
        projects = self.window.projects
        reason = self._export_reason()
        if reason:
            self.window.show_error("Cannot export", reason)
            return ""
        # A session of its own: it reads the saved weights, and the run builds it on the worker.
        from workbench.core.runs.session import Session  # torch: not before the window shows

        session = Session(projects.project, self.window.host.registry)
        return self._start("export", Path(path), "exporting", "Cannot export to NIR",
                           lambda: catalog.export(session, path=path, fmt=FORMAT))

    def _export_reason(self) -> str:
        """Why the open project cannot be exported now (not trained, unsaved weights…); ""."""
        projects = self.window.projects
        return run_readiness(projects.project, weights_dirty=projects.weights_dirty,
                             weights_match_graph=projects.doc.weights_match_graph,
                             verb="export it")

    # -- running ---------------------------------------------------------------------------------
    def _start(self, what: str, path: Path, state: str, title: str,
               make_run: Callable[[], Run]) -> str:
        if self.window.controller.busy:
            self.window.show_error(title, "Another run is in progress: wait for it to finish "
                                          "or stop it.")
            return ""
        try:
            run = make_run()
        except WorkbenchError as exc:
            self.window.show_error(title, one_line(str(exc)))
            return ""
        self._runs[run.id] = (what, path)
        if not self._start_run(run, state):
            del self._runs[run.id]
            return ""
        self.window.statusBar().showMessage(f"{state.capitalize()} {path.name}…")
        return run.id

    def _on_event(self, event: RunEvent) -> None:
        if event.run_id not in self._runs:
            return
        if isinstance(event, RunFinished):
            self._ends[event.run_id] = event
        elif isinstance(event, Log) and event.level == "warning":
            log.warning("%s", event.message)
            self._warnings.setdefault(event.run_id, []).append(event.message)

    def _on_run_finished(self, run_id: str, _status: str) -> None:
        """After the controller is idle again (an import may then replace the project)."""
        if run_id not in self._runs:
            return
        what, path = self._runs.pop(run_id)
        end = self._ends.pop(run_id, None)
        warnings = self._warnings.pop(run_id, [])
        ok = end is not None and end.status == "ok"
        if not ok:
            error = one_line(end.error) if end is not None else "the run ended without a result"
            if end is not None and end.status == "cancelled":
                self.window.statusBar().showMessage(f"{what.capitalize()} cancelled", 5000)
            else:
                title = "Cannot import the NIR file" if what == "import" else \
                    "Cannot export to NIR"
                self.window.show_error(title, error)
        elif what == "import":
            made = end.summary.get("project", "")
            ok = self.window.projects.open_project(made, ask=False)
            if ok:
                note = f"; warning: {warnings[0]}" if warnings else ""
                self.window.statusBar().showMessage(f"Imported {path.name} as {made}{note}",
                                                    30_000 if warnings else 10_000)
        else:
            self.window.statusBar().showMessage(f"Wrote {path}", 10_000)
        self.finished.emit(what, ok)
