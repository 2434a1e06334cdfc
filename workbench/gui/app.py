"""Start the desktop app: ``snn-workbench`` (no arguments) or ``snn-workbench gui PROJECT``."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import Project
from workbench.core.persistence.examples import project_to_open
from workbench.core.persistence.project_files import load_project
from workbench.gui import recovery, startup
from workbench.gui.dialogs.recovery_dialog import RecoveryDialog
from workbench.gui.main_window import APP_NAME, MainWindow
from workbench.gui.project_controller import default_window_project
from workbench.gui.settings import AppSettings
from workbench.gui.theme import apply_theme
from workbench.pluginhost.manager import load_plugins

log = logging.getLogger(__name__)


def install_excepthooks() -> None:
    """Anything uncaught is logged (the Log panel shows it), never a crash or a raw dialog."""

    def hook(exc_type, exc, tb) -> None:
        log.error("unexpected error: %s: %s\n%s", exc_type.__name__, exc,
                  "".join(traceback.format_tb(tb)))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)


def create_window(project_path: str | Path | None = None, *, plugins: Iterable[str] = (),
                  settings: AppSettings | None = None, offer_recovery: bool = True) -> MainWindow:
    """Build the main window (the QApplication must exist).

    No project, an example's name or its shipped folder opens the user's copy of that example
    (the status bar says where). A project that cannot be opened (unreadable, or nodes the
    installed plugins cannot take) never stops the app: the window opens the default project
    and shows an error box."""
    settings = settings or AppSettings.load()
    apply_theme(settings.theme)
    host = load_plugins(modules=plugins, disabled=settings.disabled_plugins)
    project: Project | None = None
    problem = note = ""
    try:
        folder, note = project_to_open(project_path)
        project = load_project(folder)
    except WorkbenchError as exc:
        note = ""
        if project_path is None:
            log.warning("default project unavailable: %s", exc)
        else:
            problem = str(exc)
    if project is None and project_path is not None:
        project = default_window_project()
    # the window checks the project against the plugins (ProjectController.open_problem)
    window = MainWindow(host, settings, project)
    if note:
        log.info(note)  # the Log panel keeps it; the status bar unless a warning is showing
        if not window.statusBar().currentMessage():
            window.statusBar().showMessage(note[:1].upper() + note[1:], 30_000)
    if problem:
        window.show_error("Cannot open project",
                          f"{problem}\n{window.doc.project.name} was opened instead.")
    if offer_recovery:
        offer_recoveries(window)
    return window


def offer_recoveries(window: MainWindow) -> RecoveryDialog | None:
    """After a crash, list every project's autosaved unsaved work (damaged recovery files are
    moved aside, and said so); the dialog, or None when there was nothing to offer."""
    found, warnings = recovery.scan_recoveries()
    window.show_startup_warnings(warnings)
    if not found:
        return None
    return window.show_recoveries(found)


def run_app(project_path: str | Path | None = None, *, plugins: Iterable[str] = ()) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("snn-workbench")
    logging.basicConfig(level=logging.INFO)
    install_excepthooks()
    startup.begin()  # torch, the data and the shapes load after the window's first paint
    try:
        window = create_window(project_path, plugins=plugins, offer_recovery=False)
    except WorkbenchError as exc:  # e.g. strict plugin mode and a broken plugin
        QMessageBox.critical(None, APP_NAME, str(exc))
        return 2
    startup.load_after_first_paint(window)
    window.show()
    offer_recoveries(window)  # once the window is up: the list is window-modal
    return app.exec()
