"""After a crash: every project with autosaved unsaved work, each with Restore and Discard.

One project is open per window, so Restore opens one and closes the list; the others stay on
disk, untouched, and are listed again at the next start. Discard removes that one autosave only.
Closing the dialog keeps them all.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from workbench.gui.prompts import APP_NAME
from workbench.gui.recovery import Recovered


@dataclass
class RecoveryRow:
    found: Recovered
    frame: QFrame
    label: QLabel
    restore_button: QPushButton
    discard_button: QPushButton


def describe(found: Recovered) -> str:
    """One line per fact: the project's name, its folder, when it was autosaved."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.saved_at))
    folder = str(found.project.folder) if found.project.folder else "not saved to a folder yet"
    extra = ", with trained weights that were not saved" if found.weights else ""
    return (f"<b>{html.escape(found.project.name)}</b><br>{html.escape(folder)}<br>"
            f"autosaved {when}{extra}")


class RecoveryDialog(QDialog):
    """Lists ``found``; emits :attr:`restore_requested` or :attr:`discard_requested` with the
    :class:`Recovered` item of the row whose button was clicked (the caller acts on it)."""

    restore_requested = Signal(object)
    discard_requested = Signal(object)

    def __init__(self, found: list[Recovered], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recovery_dialog")
        self.setWindowTitle(f"Restore unsaved work — {APP_NAME}")
        self.resize(620, 360)
        self.rows: list[RecoveryRow] = []
        intro = QLabel(
            f"{APP_NAME} did not close cleanly, and unsaved work of {len(found)} project(s) was "
            "autosaved. <b>Restore</b> opens one in this window; as one project is open per "
            "window, the others stay on disk and are listed again at the next start. "
            "<b>Discard</b> deletes that autosave only. Closing this list keeps them all.")
        intro.setWordWrap(True)
        body = QWidget()
        column = QVBoxLayout(body)
        for found_item in found:
            column.addWidget(self._row(found_item))
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        buttons = QDialogButtonBox()
        self.keep_button = buttons.addButton("Keep all for later",
                                             QDialogButtonBox.ButtonRole.RejectRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)

    def _row(self, found: Recovered) -> QFrame:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        label = QLabel(describe(found))
        label.setWordWrap(True)
        restore, discard = QPushButton("Restore"), QPushButton("Discard")
        restore.setToolTip("Open this unsaved work in the window")
        discard.setToolTip("Delete this autosave; the project's saved files are not touched")
        row = RecoveryRow(found, frame, label, restore, discard)
        restore.clicked.connect(lambda: self._restore(row))
        discard.clicked.connect(lambda: self._discard(row))
        line = QHBoxLayout(frame)
        line.addWidget(label, 1)
        line.addWidget(restore)
        line.addWidget(discard)
        self.rows.append(row)
        return frame

    def row_texts(self) -> list[str]:
        """The rows still listed, as plain text (for scripts and tests)."""
        return [row.label.text() for row in self.rows]

    def _restore(self, row: RecoveryRow) -> None:
        self.accept()
        self.restore_requested.emit(row.found)

    def _discard(self, row: RecoveryRow) -> None:
        self.rows.remove(row)
        row.frame.hide()
        row.frame.deleteLater()
        self.discard_requested.emit(row.found)
        if not self.rows:
            self.accept()
