"""The questions the app asks the user, as modal message boxes.

The window exposes them as ``ask_save_changes()`` and ``ask_replace_folder(folder,
holds_project)`` so a test (or a script) can answer them by replacing the attribute. The list of
autosaved work after a crash is a dialog of its own (``dialogs/recovery_dialog.py``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

APP_NAME = "SNN Workbench"
_BUTTON = QMessageBox.StandardButton


def ask_save_changes(parent: QWidget, project_name: str) -> str:
    """"save", "discard" or "cancel"."""
    answer = QMessageBox.question(parent, APP_NAME, f"Save the changes to {project_name}?",
                                  _BUTTON.Save | _BUTTON.Discard | _BUTTON.Cancel)
    return {_BUTTON.Save: "save", _BUTTON.Discard: "discard"}.get(answer, "cancel")


def ask_replace_folder(parent: QWidget, folder: Path, holds_project: bool) -> bool:
    """Save As chose a folder holding another project (or other files): replace it?"""
    if holds_project:
        text = (f"{folder} already holds a project. Replace it with this one? Its project file "
                "and weights are replaced; its run records stay.")
    else:
        text = (f"{folder} is not empty and holds no project. Save the project into it anyway? "
                "The files already there stay.")
    answer = QMessageBox.question(parent, APP_NAME, text, _BUTTON.Yes | _BUTTON.No,
                                  _BUTTON.No)
    return answer == _BUTTON.Yes

