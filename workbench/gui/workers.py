"""Iterate a core :class:`~workbench.core.runs.engine.Run` on its own QThread.

Rules: the worker never touches a widget; events reach the GUI thread through
queued signals; cancel and pause are plain thread-safe flags set from the GUI thread (a signal
would not be delivered while the worker is busy); the worker catches everything.

The run itself records its events, turns its exceptions into a failed ``RunFinished`` and sets
its own torch threads and device: the worker only pulls events and forwards them.
"""

from __future__ import annotations

import os
import sys
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

#: how much lower than the GUI thread a run's thread (and the torch threads it starts) runs
RUN_NICENESS = 5

_LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def yield_cpu_to_gui() -> None:
    """Lower the calling thread's priority (Linux only: there ``nice`` is per thread, and the
    torch threads this thread starts inherit it).

    Training keeps both cores of a 2-core machine busy; a repaint then waited for a core and
    the GUI stalled 100–135 ms, twice its own CPU time (benchmarks/gui_responsiveness.py). At
    a lower priority the run gives way when the GUI thread wakes, and has the CPU back at
    once: the GUI is idle most of the time."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the priority is the whole process's
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + RUN_NICENESS)
    except OSError:  # not allowed here: the run just keeps its priority
        pass


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
        yield_cpu_to_gui()  # before the run starts its torch threads: they inherit it
        last_progress = 0.0
        try:
            for ev in self._run:
                if isinstance(ev, Progress) and ev.done < ev.total:
                    now = time.perf_counter()
                    # a pause is honoured at the next batch, not the next forwarded one: the
                    # bar then shows where the run really stopped
                    if now - last_progress < 1.0 / PROGRESS_HZ and not self.paused:
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
