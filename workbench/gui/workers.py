"""Iterate a core :class:`~workbench.core.runs.engine.Run` on its own QThread.

Rules: the worker never touches a widget; events reach the GUI thread through
queued signals; cancel and pause are plain thread-safe flags set from the GUI thread (a signal
would not be delivered while the worker is busy); the worker catches everything.

The run itself records its events, turns its exceptions into a failed ``RunFinished`` and sets
its own torch threads and device: the worker only pulls events and forwards them.
"""

from __future__ import annotations

import threading
import time
import traceback
import weakref
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from workbench.core.runs.events import Progress

#: per-batch progress events are forwarded at most this often (the bar cannot show more, and
#: every event the GUI thread handles is CPU taken from the run on a 2-core machine)
PROGRESS_HZ = 4.0

_LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def live_threads() -> list[QThread]:
    """Threads still running; the test suite asserts none is left after each test."""
    alive = []
    for thread in list(_LIVE_THREADS):
        try:
            if thread.isRunning():
                alive.append(thread)
        except RuntimeError:  # the C++ object is gone: it finished and was deleted
            _LIVE_THREADS.discard(thread)
    return alive


class RunWorker(QObject):
    """Pulls the events of one started :class:`Run` and emits each one."""

    event = Signal(object)
    failed = Signal(str, str)  # run_id, traceback
    finished = Signal(str)  # run_id

    def __init__(self, run: Any) -> None:
        super().__init__()
        self._run = run
        self.run_id: str = run.id
        self._resume = threading.Event()
        self._resume.set()

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    def cancel(self) -> None:
        self._run.cancel()
        self._resume.set()  # a paused run must wake up to notice the cancel

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @Slot()
    def run(self) -> None:
        last_progress = 0.0
        try:
            for ev in self._run:
                if isinstance(ev, Progress) and ev.done < ev.total:
                    now = time.perf_counter()
                    if now - last_progress < 1.0 / PROGRESS_HZ:
                        continue
                    last_progress = now
                self.event.emit(ev)
                # Pausing between events pauses between batches: the run is lazy.
                self._resume.wait()
        except Exception:  # never let anything escape a thread (the run guards its own body)
            self.failed.emit(self.run_id, traceback.format_exc())
        finally:
            self.finished.emit(self.run_id)


def start_in_thread(worker: RunWorker, parent: QObject) -> QThread:
    """Start ``worker`` in a new thread; the caller keeps ``worker`` alive until finished."""
    thread = QThread(parent)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit)
    thread.finished.connect(thread.deleteLater)
    _LIVE_THREADS.add(thread)
    thread.start()
    return thread
