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
from workbench.core.model.project import Project, bind_specs
from workbench.core.persistence.examples import project_to_open
from workbench.core.persistence.project_files import load_project
from workbench.core.persistence.project_store import (
    KEEP,
    TargetOccupied,
    commit_project,
    same_folder,
)
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


def default_window_project() -> Project | None:
    """The user's copy of the default example (made on first use: the shipped example is
    never opened in place), if it can be opened."""
    try:
        folder, _note = project_to_open(None)
        return load_project(folder)
    except WorkbenchError as exc:
        log.warning("default project unavailable: %s", exc)
        return None


def bind_problem(project: Project, registry: Any) -> str:
    """Why ``project`` cannot be opened with the installed plugins, "" when it can.

    Loading a file checks its format; matching its nodes to the installed specs (a node saved by
    a newer plugin version, a migration that fails) is a second step that used to run only
    inside the document's constructor, where a failure ended the app. Every way a project comes
    in (the command line, Open, a recovery, an import) checks here first, on a copy, so a
    refusal changes nothing and is shown as an error box.
    """
    try:
        bind_specs(project.copy(), registry)
    except WorkbenchError as exc:
        return str(exc)
    except Exception as exc:  # a plugin's migrate hook failed: the app must go on
        log.exception("a plugin failed while reading project %s", project.name)
        return f"a plugin failed while reading the project: {type(exc).__name__}: {exc}"
    return ""


class Prompts(Protocol):
    """What the controller asks of the window."""

    def ask_save_changes(self) -> str: ...  # "save", "discard" or "cancel"

    def show_error(self, title: str, text: str) -> None: ...

    def ask_replace_folder(self, folder: Path, holds_project: bool) -> bool: ...  # replace it?


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
        #: True once the weights in memory were autosaved (or refused: NaN) since they changed
        self._weights_autosaved = False
        project = project or new_project()
        #: why the project given could not be opened ("" when it was): the default project
        #: is open instead, and the window says so
        self.open_problem = bind_problem(project, registry)
        if self.open_problem:
            project = default_window_project() or new_project()
            if bind_problem(project, registry):
                project = new_project()
        # One undo group: the Edit menu's actions follow whichever document is open.
        self.undo_group = QUndoGroup(self)
        self.doc = ProjectDocument(project, registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self._session: Any = None  # made on first use (see :attr:`session`)
        self._watch(self.doc)
        self._autosave = QTimer(self, interval=max(5, settings.autosave_seconds) * 1000)
        self._autosave.timeout.connect(self.autosave_now)
        self._autosave.start()
        # Trained weights are unsaved work the moment a run ends: autosave them then, not up
        # to a minute later.
        runs.run_finished.connect(self._after_run)

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
        self._weights_autosaved = False
        self.state_changed.emit()

    # -- the session's network -------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The open project's :class:`~workbench.core.runs.session.Session`, made on first use:
        its module imports torch, which the app loads after the window's first paint."""
        if self._session is None:
            from workbench.core.runs.session import Session

            self._session = Session(self.doc.project, self.registry)
        return self._session

    def adopt_session(self, session: Any) -> bool:
        """Take ``session``, made for the open project on the start-up thread (its data and
        shapes loaded there), unless the window made its own meanwhile."""
        if self._session is not None or session.project is not self.doc.project:
            return False
        self._session = session
        return True

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
        from workbench.core.persistence.weights import load_weights

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
    def set_project(self, project: Project, *, dirty: bool = False) -> bool:
        """Put ``project`` in place of the open one (``dirty``: restored unsaved work); False,
        with an error box and the open project unchanged, when it cannot be opened."""
        problem = bind_problem(project, self.registry)
        if problem:
            self._prompts.show_error("Cannot open project",
                                     f"{problem}\nThe project that was open stays open.")
            return False
        if self.runs.busy:
            # the open project is being let go: the end of its run must not autosave it again
            self.weights_dirty = False
            self.runs.shutdown()
        old = self.doc
        self.doc = ProjectDocument(project, self.registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.undo_group.removeStack(old.undo_stack)
        self._session = None  # the new project's, made on first use
        self.weights_dirty = False
        self._weights_autosaved = False
        self._watch(self.doc)
        if dirty:
            self.doc.undo_stack.resetClean()
        old.deleteLater()
        self.replaced.emit()
        return True

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
            # a shipped example (File ▸ Examples) opens as the user's copy of it
            path, note = project_to_open(path)
            project = load_project(path)
        except WorkbenchError as exc:
            self._prompts.show_error("Cannot open project", str(exc))
            return False
        if not self.set_project(project):  # its nodes do not match the installed plugins
            return False
        self._remember(project.folder)
        if note:
            self.status.emit(note[:1].upper() + note[1:], 30_000)
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
        """Save the project and its weights as one step (a crash leaves the old or the new
        project, never a mix); into a folder holding another project only when the user says
        so, and then the whole project is replaced."""
        project = self.project
        old_recovery = recovery.recovery_file(project)
        overwrite = False
        while True:
            try:
                commit_project(project, folder, weights=self._weights_to_save(folder),
                               overwrite=overwrite)
                break
            except TargetOccupied as exc:
                if overwrite or not self._prompts.ask_replace_folder(folder, exc.holds_project):
                    return False
                overwrite = True
            except (WorkbenchError, OSError) as exc:
                self._prompts.show_error("Save failed",
                                         f"{exc}\nYour work is still open and unsaved.")
                return False
        recovery.discard_file(old_recovery)  # and its autosaved weights
        recovery.discard_recovery(project)
        self.doc.mark_saved()
        self._remember(folder)
        self.set_weights_dirty(False)
        self.status.emit(f"Saved to {folder}", 5000)
        return True

    def _weights_to_save(self, folder: Path) -> bytes | Any:
        """The network's weights when they are news to ``folder`` (trained since the last save,
        another folder, none saved yet), else KEEP: the saved file stays (or, when the network
        was never built, is copied into a new folder)."""
        model, project = self.session.model, self.project
        if model is None:
            return KEEP
        in_place = project.folder is not None and same_folder(project.folder, folder)
        saved = project.weights_path
        if self.weights_dirty or not in_place or saved is None or not saved.exists():
            from workbench.core.persistence.weights import weights_bytes

            return weights_bytes(model, where=str(folder))
        return KEEP

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
        """Write the recovery file while there is unsaved work (timer-driven): the project
        while it has unsaved edits or the network holds weights its weights file lacks, and
        then those weights too. While a run changes them the last autosaved weights stay; the
        end of the run autosaves them."""
        model = self.session.model if self.weights_dirty else None
        if not self.doc.dirty and model is None:
            return None
        write_weights = model is not None and not self._weights_autosaved and not self.runs.busy
        try:
            path = recovery.write_recovery(self.project, model if write_weights else None,
                                           keep_weights=model is not None and not write_weights)
        except OSError as exc:
            log.warning("autosave failed: %s", exc)
            return None
        if write_weights:
            self._weights_autosaved = True
        return path

    def _after_run(self, _run_id: str = "", _status: str = "") -> None:
        self._weights_autosaved = False
        if self.weights_dirty:
            self.autosave_now()

    def restore(self, found: recovery.Recovered) -> bool:
        """Open autosaved work ``found`` as unsaved work, with its trained weights; this
        session's own autosave then takes the place of its recovery files."""
        if not self.confirm_discard() or not self.set_project(found.project, dirty=True):
            return False
        if found.weights is not None:
            self.load_weights(found.weights)  # says so when they do not fit the network
        written = self.autosave_now()
        if written is not None and written != found.file:
            recovery.discard_file(found.file)  # an untitled project's key is new each run
        log.info("restored unsaved work of %s", found.project.name)
        return True

    def close(self) -> None:
        """The window closes (the user agreed to drop unsaved work): no recovery is left."""
        self._autosave.stop()
        recovery.discard_recovery(self.project)
