"""Start-up in two steps: the window paints first, then torch and the project's data load.

Importing torch (and scikit-learn and scipy for the digits) takes seconds, and the first shape
inference on the meta device imports more of torch; a window that waited for them showed
nothing for ~4 s. So the desktop app (:func:`workbench.gui.app.run_app`, after :func:`begin`)
builds its window without torch: work that needs it is queued with :func:`after_first_paint`.
When the window has painted, a thread imports torch, loads the data and infers the shapes on a
session of its own (the GUI stays responsive meanwhile); then the queue runs on the GUI thread,
in order, and the window adopts that session. Without :func:`begin` (tests, scripts calling
``create_window``) the work runs at once, as before.

``SNN_WORKBENCH_STARTUP_TIMES=1`` prints ``first-paint <t>`` when the window first paints and
``ready <t>`` when the queue has run (``time.time()`` seconds) and then quits:
``benchmarks/gui_responsiveness.py`` times a fresh start with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

TIMES_ENV = "SNN_WORKBENCH_STARTUP_TIMES"
#: a window that never paints (started minimised) still loads: this long after show at most
PAINT_FALLBACK_MS = 1000

_queue: list[Callable[[], None]] | None = None


def begin() -> None:
    """From now until the window has loaded, :func:`after_first_paint` queues its work."""
    global _queue
    _queue = []


def deferring() -> bool:
    """True while work that needs torch waits for the window's first paint."""
    return _queue is not None


def after_first_paint(work: Callable[[], None]) -> None:
    """Run ``work`` now, or, during a deferred start, after the load that follows first paint."""
    if _queue is None:
        work()
    else:
        _queue.append(work)


def _preload(window: Any) -> Any:
    """On the loader thread: the heavy imports, the data and the shapes, in a session of its
    own (the GUI thread may touch the window's meanwhile). Anything wrong is left for the GUI
    thread's own validation to report."""
    from workbench.core.runs.session import Session

    session = Session(window.doc.project, window.host.registry)
    try:
        session.validate()
    except Exception as exc:  # noqa: BLE001 - the window's own validation reports it
        log.debug("start-up preload: %s", exc)
    return session


class _Loader(QObject):
    """Watches the window for its first paint, loads on a thread, then runs the queue."""

    loaded = Signal(object)  # emitted on the loader thread, delivered on the GUI thread

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.started = False
        self.report_times = bool(os.environ.get(TIMES_ENV))
        self.loaded.connect(self._finish)
        window.installEventFilter(self)
        QTimer.singleShot(PAINT_FALLBACK_MS, self._start)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt's name
        if event.type() == QEvent.Type.Paint and not self.started:
            if self.report_times:
                print(f"first-paint {time.time():.4f}", flush=True)
            QTimer.singleShot(0, self._start)  # after this paint has reached the screen
        return False

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        self.window.removeEventFilter(self)

        def load() -> None:
            try:
                session = _preload(self.window)
            except Exception as exc:  # noqa: BLE001 - e.g. no torch: the queue says so
                log.error("start-up load failed: %s", exc)
                session = None
            self.loaded.emit(session)

        threading.Thread(target=load, name="startup-load", daemon=True).start()

    def _finish(self, session: Any) -> None:
        global _queue
        projects = self.window.projects
        if session is not None and projects.adopt_session(session):
            log.debug("the window took the session loaded at start-up")
        queued, _queue = _queue or [], None
        for work in queued:
            try:
                work()
            except Exception:  # one part failing must not keep the rest from loading
                log.exception("start-up step %r failed", work)
        if self.report_times:
            print(f"ready {time.time():.4f}", flush=True)
            QTimer.singleShot(0, QApplication.quit)


def load_after_first_paint(window: Any) -> None:
    """After :func:`begin` and the window's construction: load when it first paints."""
    _Loader(window)
