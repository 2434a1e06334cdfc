"""The questions the app asks the user, as modal message boxes.

The window exposes them as ``ask_save_changes()`` and ``ask_restore(found)`` so a test (or a
script) can answer them by replacing the attribute."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QMessageBox, QWidget

from workbench.gui.recovery import Recovered

APP_NAME = "SNN Workbench"
_BUTTON = QMessageBox.StandardButton


def ask_save_changes(parent: QWidget, project_name: str) -> str:
    """"save", "discard" or "cancel"."""
    answer = QMessageBox.question(parent, APP_NAME, f"Save the changes to {project_name}?",
                                  _BUTTON.Save | _BUTTON.Discard | _BUTTON.Cancel)
    return {_BUTTON.Save: "save", _BUTTON.Discard: "discard"}.get(answer, "cancel")


def ask_restore(parent: QWidget, found: Recovered) -> bool:
    """After a crash: bring back the unsaved work ``found``?"""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.saved_at))
    answer = QMessageBox.question(
        parent, APP_NAME, f"{APP_NAME} did not close cleanly. Restore the unsaved changes to "
                          f"{found.project.name} from {when}?", _BUTTON.Yes | _BUTTON.No)
    return answer == _BUTTON.Yes
