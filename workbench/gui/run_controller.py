"""Starts, pauses, cancels and shuts down runs; forwards their events to the GUI thread.

Runs come from :mod:`workbench.core.runs.catalog` as :class:`~workbench.core.runs.engine.Run`
objects, already recorded, guarded and computing with the project's settings; the controller
only iterates one on a worker thread (:meth:`start`). One run at a time. Events of a run that
is no longer current (its ``run_id`` differs) are dropped, so a late event of a cancelled run
never reaches a view (orange3 #2184). High-rate data — the live spikes and membranes of the
probe sample — goes into :attr:`probe_buffer`, which views poll on their own timer.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal

from workbench.core.model.errors import WorkbenchError
from workbench.core.runs import catalog
from workbench.core.runs.buffers import LatestBuffer
from workbench.core.runs.engine import Run
from workbench.core.runs.events import RunEvent, RunFinished
from workbench.gui import startup
from workbench.gui.workers import RunWorker, start_in_thread

if TYPE_CHECKING:  # torch: the window shows before it is imported (workbench.gui.startup)
    from workbench.core.runs.session import Session

log = logging.getLogger(__name__)

#: how often the training thread refreshes the live probe of the fixed sample
PROBE_HZ = 2.0


def keep_gui_thread_light() -> None:
    """On the GUI thread, before its first torch op: its own torch ops (probes, validation)
    then use one thread and do not slow the runs down; each run sets its own count on its
    thread (:func:`~workbench.core.build.compute.keep_calling_thread_light`)."""
    from workbench.core.build.compute import keep_calling_thread_light

    keep_calling_thread_light()


class RunController(QObject):
    run_started = Signal(str, str)  # run_id, state
    run_event = Signal(object)  # each RunEvent of the current run
    run_finished = Signal(str, str)  # run_id, status
    state_changed = Signal(str)  # "idle", "paused", or the state a run was started with

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.probe_buffer = LatestBuffer()
        self.probe_index = 0
        self._worker: RunWorker | None = None
        self._thread: QThread | None = None
        self._kind = ""
        self.last_finished: RunFinished | None = None
        # Once, on the GUI thread, when torch is there (at once, or after the first paint)
        startup.after_first_paint(keep_gui_thread_light)

    # -- state -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._worker is not None

    @property
    def state(self) -> str:
        if self._worker is None:
            return "idle"
        return "paused" if self._worker.paused else self._kind

    # -- starting runs -------------------------------------------------------------------------
    def start(self, run: Run, state: str) -> str:
        """Iterate ``run`` on a worker thread; ``state`` is shown while it runs ("training",
        "compressing", ...). Returns the run id; raises RuntimeError while another run is busy
        (callers check :attr:`busy` first)."""
        if self.busy:
            raise RuntimeError("a run is already in progress")
        # A full garbage collection scans every object the app holds (Qt wrappers, torch,
        # pyqtgraph): ~150 ms with the GIL held, on whichever thread triggers it, and the GUI
        # froze that long mid-run. Freezing what exists now keeps collections during the run
        # to the run's own objects; _on_worker_finished unfreezes.
        gc.freeze()
        worker = RunWorker(run)
        worker.event.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self._worker, self._kind = worker, state
        self._thread = start_in_thread(worker, self)
        self.run_started.emit(run.id, state)
        self.state_changed.emit(state)
        return run.id

    def start_training(self, session: Session, *, epochs: int | None = None,
                       fresh: bool = False, load_saved_weights: bool = True) -> str:
        """Train ``session`` (the network is built on the worker), probing the chosen test
        sample live into :attr:`probe_buffer`."""
        run_id: list[str] = []  # known once the run exists; the probe needs it afterwards
        run = catalog.train(session, epochs=epochs, fresh=fresh,
                            load_saved_weights=load_saved_weights,
                            on_batch=self._live_probe(session, run_id))
        run_id.append(run.id)
        return self.start(run, "training")

    def start_evaluation(self, session: Session, *, limit: int | None = None) -> str:
        return self.start(catalog.evaluate(session, limit=limit), "evaluating")

    def _live_probe(self, session: Session, run_id: list[str]) -> Callable[[], None]:
        """A callback for the training thread: every 1/PROBE_HZ s, probe the chosen sample."""
        from workbench.core.runs.probe import probe_sample

        last = [0.0]
        buffer = self.probe_buffer
        encoding = session.encoding()  # built once for every probe of this run

        def on_batch() -> None:
            now = time.perf_counter()
            if now - last[0] < 1.0 / PROBE_HZ:
                return
            last[0] = now
            try:
                result = probe_sample(session, self.probe_index, encoding=encoding)
            except WorkbenchError as exc:  # e.g. a sample past the split: skip, keep training
                log.warning("live probe skipped: %s", exc)
                return
            buffer.put(result.as_dict(), run_id[0] if run_id else "")

        return on_batch

    # -- control -------------------------------------------------------------------------------
    def pause(self) -> None:
        if self._worker is not None and not self._worker.paused:
            self._worker.pause()
            self.state_changed.emit("paused")

    def resume(self) -> None:
        if self._worker is not None and self._worker.paused:
            self._worker.resume()
            self.state_changed.emit(self._kind)

    def cancel(self, run_id: str | None = None) -> None:
        """Ask the current run (or only run ``run_id``) to stop: ``run.cancel()``."""
        if self._worker is not None and (run_id is None or run_id == self._worker.run_id):
            self._worker.cancel()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel the run and wait for its thread; called on window close and in tests."""
        thread, worker = self._thread, self._worker
        self.cancel()
        if thread is not None:
            try:
                thread.quit()
                done = thread.wait(timeout_ms)
            except RuntimeError:  # already deleted: it had finished
                done = True
            if not done:
                log.error("the run did not stop within %d ms", timeout_ms)
                return False
        if worker is not None:  # finish now; the queued notice would come too late
            self._on_worker_finished(worker.run_id)
        return True

    # -- worker signals (GUI thread) -----------------------------------------------------------
    def _on_event(self, event: RunEvent) -> None:
        if self._worker is None or event.run_id != self._worker.run_id:
            return  # a stale event of a run that is no longer current
        if isinstance(event, RunFinished):
            self.last_finished = event
        self.run_event.emit(event)

    def _on_failed(self, run_id: str, trace: str) -> None:
        log.error("run %s crashed:\n%s", run_id, trace)
        self.last_finished = RunFinished(run_id, "failed", error=trace.strip().splitlines()[-1],
                                         error_kind="internal", traceback=trace)
        self.run_event.emit(self.last_finished)

    def _on_worker_finished(self, run_id: str) -> None:
        if self._worker is None or self._worker.run_id != run_id:
            return
        finished = self.last_finished
        status = finished.status if finished is not None and finished.run_id == run_id else "failed"
        self._worker = None
        self._thread = None
        gc.unfreeze()
        self.state_changed.emit("idle")
        self.run_finished.emit(run_id, status)
