"""The open project's lifecycle: new, open, save, save as, recent projects, autosave and
recovery, dirty tracking, and the session (the built network) that belongs to the project.

No widget lives here. What needs the user — "save the changes?", an error box, a folder chooser
— goes through the window (:class:`Prompts`), looked up at the moment it is needed, so a test
can replace ``window.ask_save_changes``. The window listens to the signals: ``replaced`` after
a different project was put in place (it rebuilds the editor and re-points the panels),
``state_changed`` whenever the title or the "may compress/deploy" state could change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import QFileDialog

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import WEIGHTS_FILE, Project
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.weights import load_weights
from workbench.core.runs.session import Session
from workbench.gui import recovery
from workbench.gui.document import ProjectDocument
from workbench.gui.settings import AppSettings

log = logging.getLogger(__name__)



def new_project() -> Project:
    """A small starting point: flatten -> spiking linear -> linear on the embedded digits."""
    graph = Graph.chain([Node("flat", "wb_core.flatten"),
                         Node("fc1", "wb_core.spiking_linear", {"out_features": 128}),
                         Node("fc2", "wb_core.linear", {"out_features": 10})])
    return Project("untitled", graph)


class Prompts(Protocol):
    """What the controller asks of the window."""

    def ask_save_changes(self) -> str: ...  # "save", "discard" or "cancel"

    def show_error(self, title: str, text: str) -> None: ...


class ProjectController(QObject):
    """Owns :attr:`doc` (the undoable project), :attr:`session` and :attr:`undo_group`."""

    replaced = Signal()  # a new document and session are in place
    state_changed = Signal()  # dirty/saved state, name or folder may have changed
    recent_changed = Signal()
    status = Signal(str, int)  # a status-bar message and how long it shows (ms)

    def __init__(self, registry: Any, settings: AppSettings, runs: Any, prompts: Prompts,
                 project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.settings = settings
        self.runs = runs
        self._prompts = prompts
        #: False once the weights in memory differ from the project's weights file
        self.weights_dirty = False
        # One undo group: the Edit menu's actions follow whichever document is open.
        self.undo_group = QUndoGroup(self)
        self.doc = ProjectDocument(project or new_project(), registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.session = Session(self.doc.project, registry)
        self._watch(self.doc)
        self._autosave = QTimer(self, interval=max(5, settings.autosave_seconds) * 1000)
        self._autosave.timeout.connect(self.autosave_now)
        self._autosave.start()

    def _watch(self, doc: ProjectDocument) -> None:
        doc.changed.connect(self.state_changed)
        doc.dirty_changed.connect(lambda _dirty: self.state_changed.emit())

    # -- state -----------------------------------------------------------------------------------
    @property
    def project(self) -> Project:
        return self.doc.project

    @property
    def is_dirty(self) -> bool:
        return self.doc.dirty or self.weights_dirty

    def set_weights_dirty(self, dirty: bool = True) -> None:
        """The weights in memory changed (training) or now match the file (save, load)."""
        self.weights_dirty = dirty
        self.state_changed.emit()

    # -- the session's network -------------------------------------------------------------------
    def prepare_model(self, fresh: bool = False) -> bool:
        """Build the network if the graph changed; weights from the file only if they fit."""
        if self.session.model is not None and not fresh:
            return True
        try:
            self.session.build(load_saved_weights=not fresh and self.doc.weights_match_graph)
        except WorkbenchError as exc:
            self._prompts.show_error("Cannot build the network", str(exc))
            return False
        return True

    def load_saved_weights(self) -> None:
        """After opening: build the network with the project's weights file, if it has one."""
        weights = self.project.weights_path
        if weights is None or not weights.exists():
            return
        try:
            self.session.build()
        except WorkbenchError as exc:
            self._prompts.show_error("Weights not loaded", str(exc))
        else:
            log.info("loaded %s", weights)

    def load_weights(self, path: str | Path) -> bool:
        """Load a weights file into the network (refused, and said, when it does not fit)."""
        if not self.prepare_model(False):
            return False
        try:
            load_weights(self.session.model, path)
        except WorkbenchError as exc:
            self._prompts.show_error("Cannot load weights", str(exc))
            return False
        self.doc.weights_match_graph = True
        self.set_weights_dirty(Path(path) != self.project.weights_path)
        self.status.emit(f"Loaded {path}", 5000)
        return True

    def forget_model(self) -> None:
        """The graph changed: the network is rebuilt (with fresh weights) on the next run."""
        if not self.runs.busy:
            self.session.model = None

    # -- opening ---------------------------------------------------------------------------------
    def set_project(self, project: Project, *, dirty: bool = False) -> None:
        """Put ``project`` in place of the open one (``dirty``: restored unsaved work)."""
        if self.runs.busy:
            self.runs.shutdown()
        old = self.doc
        self.doc = ProjectDocument(project, self.registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.undo_group.removeStack(old.undo_stack)
        self.session = Session(project, self.registry)
        self.weights_dirty = False
        self._watch(self.doc)
        if dirty:
            self.doc.undo_stack.resetClean()
        old.deleteLater()
        self.replaced.emit()

    def new_project(self) -> bool:
        if not self.confirm_discard():
            return False
        self.set_project(new_project())
        return True

    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent(), "Open project folder")
        if folder:
            self.open_project(folder)

    def open_project(self, path: str | Path, *, ask: bool = True) -> bool:
        if ask and not self.confirm_discard():
            return False
        try:
            project = load_project(path)
        except WorkbenchError as exc:
            self._prompts.show_error("Cannot open project", str(exc))
            return False
        self.set_project(project)
        self._remember(project.folder)
        return True

    def _remember(self, folder: Path | None) -> None:
        if folder is not None:
            self.settings.add_recent(folder)
            self.settings.save()
            self.recent_changed.emit()

    # -- saving ----------------------------------------------------------------------------------
    def save(self) -> bool:
        if self.project.folder is None:
            return self.save_as()
        return self._save_to(self.project.folder)

    def save_as(self, folder: str | Path | None = None) -> bool:
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.parent(), "Save project into folder")
            if not folder:
                return False
        return self._save_to(Path(folder))

    def _save_to(self, folder: Path) -> bool:
        project = self.project
        old_recovery = recovery.recovery_file(project)
        try:
            save_project(project, folder)
            if self.session.model is not None and (self.weights_dirty or not
                                                   (folder / WEIGHTS_FILE).exists()):
                self.session.save_weights(folder / WEIGHTS_FILE)
        except (WorkbenchError, OSError) as exc:
            self._prompts.show_error("Save failed",
                                     f"{exc}\nYour work is still open and unsaved.")
            return False
        old_recovery.unlink(missing_ok=True)
        recovery.discard_recovery(project)
        self.doc.mark_saved()
        self._remember(folder)
        self.set_weights_dirty(False)
        self.status.emit(f"Saved to {folder}", 5000)
        return True

    def confirm_discard(self) -> bool:
        """True when it is fine to drop the current project (saved, or the user agreed)."""
        if not self.is_dirty:
            return True
        answer = self._prompts.ask_save_changes()
        if answer == "save":
            return self.save()
        if answer == "discard":
            recovery.discard_recovery(self.project)
            return True
        return False

    # -- autosave --------------------------------------------------------------------------------
    def autosave_now(self) -> Path | None:
        """Write the recovery file while there are unsaved edits (timer-driven)."""
        if not self.doc.dirty:
            return None
        try:
            return recovery.write_recovery(self.project)
        except OSError as exc:
            log.warning("autosave failed: %s", exc)
            return None

    def close(self) -> None:
        """The window closes (the user agreed to drop unsaved work): no recovery is left."""
        self._autosave.stop()
        recovery.discard_recovery(self.project)
