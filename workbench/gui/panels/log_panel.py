"""The log panel: Python logging records, shown in the GUI thread whichever thread logged."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget


class _Relay(QObject):
    record = Signal(str, int)


class QtLogHandler(logging.Handler):
    """Forwards records through a queued signal, so any thread may log."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.relay = _Relay()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.relay.record.emit(self.format(record), record.levelno)
        except RuntimeError:  # the panel is gone (window closed)
            pass


class LogPanel(QPlainTextEdit):
    MAX_LINES = 5000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(self.MAX_LINES)
        self.setFont(QFont("monospace"))
        self.handler = QtLogHandler()
        self.handler.relay.record.connect(self.append_line)
        logging.getLogger().addHandler(self.handler)
        if logging.getLogger().level > logging.INFO:
            logging.getLogger().setLevel(logging.INFO)

    def append_line(self, text: str, level: int = logging.INFO) -> None:
        if level >= logging.ERROR:
            text = f"⚠ {text}"
        self.appendPlainText(text)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self.handler)
