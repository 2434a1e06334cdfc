"""Starts, pauses, cancels and shuts down runs; forwards their events to the GUI thread.

One run at a time. Events of a run that is no longer current (its ``run_id`` differs) are
dropped, so a late event of a cancelled run never reaches a view (orange3 #2184). High-rate
data — the live spikes and membranes of the probe sample — goes into :attr:`probe_buffer`,
which views poll on their own timer.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal

from workbench.core.build.probes import SpikeProbe, recording_maps
from workbench.core.runs.buffers import LatestBuffer
from workbench.core.runs.engine import new_run_id
from workbench.core.runs.events import RunEvent, RunFinished
from workbench.core.runs.records import recorded
from workbench.core.runs.session import Session
from workbench.gui.workers import RunWorker, start_in_thread

log = logging.getLogger(__name__)

#: how often the training thread refreshes the live probe of the fixed sample
PROBE_HZ = 2.0

_COMPUTE_THREADS: int | None = None


def reserve_cores_for_runs() -> int:
    """Give the runs all of torch's threads and the GUI thread one.

    OpenMP keeps a thread team per calling thread. Once the GUI thread has run any torch op
    with its default team (validation, probes), training on a worker thread ran at ~40 % of its
    headless speed on 2 cores (benchmarks/gui_responsiveness.py); with the GUI thread limited
    to one thread and each run restoring the full count on its own thread, it runs at full
    speed. The setting is per thread, so this is done once, on the GUI thread.
    """
    global _COMPUTE_THREADS
    if _COMPUTE_THREADS is None:
        _COMPUTE_THREADS = torch.get_num_threads()
        torch.set_num_threads(1)
    return _COMPUTE_THREADS


def probe_sample(session: Session, index: int, *, membranes: bool = True,
                 encode: Any = None) -> dict[str, Any]:
    """Run test sample ``index`` through the network; spikes (and membranes) per neuron layer.

    Must not run while a training run uses the same model (the controller guarantees it).
    """
    model = session.model if session.model is not None else session.build()
    x, y = session.data().test.batch(np.array([index]))
    was_training = model.training
    model.eval()
    try:
        with (torch.no_grad(), SpikeProbe(model, membranes=membranes, samples=1) as probe,
              recording_maps(model) as maps):
            scores = model((encode or session.encoder())(x))
    finally:
        model.train(was_training)
    from workbench.core.model.readout import class_scores

    return {"records": dict(probe.records), "maps": maps, "input": x[0], "label": int(y[0]),
            "predicted": int(class_scores(scores).argmax(-1)[0]), "index": index}


class RunController(QObject):
    run_started = Signal(str, str)  # run_id, kind
    run_event = Signal(object)  # each RunEvent of the current run
    run_finished = Signal(str, str)  # run_id, status
    state_changed = Signal(str)  # "idle", "training", "evaluating", "paused"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.probe_buffer = LatestBuffer()
        self.probe_index = 0
        self._worker: RunWorker | None = None
        self._thread: QThread | None = None
        self._kind = ""
        self.last_finished: RunFinished | None = None
        self.compute_threads = reserve_cores_for_runs()

    # -- state -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._worker is not None

    @property
    def current_run(self) -> str:
        return self._worker.run_id if self._worker is not None else ""

    @property
    def state(self) -> str:
        if self._worker is None:
            return "idle"
        return "paused" if self._worker.paused else self._kind

    # -- starting runs -------------------------------------------------------------------------
    def start_training(self, session: Session, *, epochs: int | None = None,
                       fresh: bool = False, load_saved_weights: bool = True) -> str:
        run_id = new_run_id("train")
        on_batch = self._live_probe(session, run_id)

        def events(cancel):
            torch.set_num_threads(self.compute_threads)  # on the run's own thread
            return recorded(session.train(epochs=epochs, cancel=cancel, run_id=run_id,
                                          on_batch=on_batch, fresh=fresh,
                                          load_saved_weights=load_saved_weights),
                            session.project.folder)

        return self._start(run_id, "training", events)

    def start_evaluation(self, session: Session, *, limit: int | None = None) -> str:
        run_id = new_run_id("evaluate")

        def events(cancel):
            torch.set_num_threads(self.compute_threads)
            return recorded(session.evaluate(cancel=cancel, run_id=run_id, limit=limit),
                            session.project.folder)

        return self._start(run_id, "evaluating", events)

    def start(self, run_id: str, kind: str, make_events) -> str:
        """Run ``make_events(cancel)`` (a core run generator) on a worker thread; ``kind`` is
        the state shown while it runs ("compressing", "deploying", ...)."""
        return self._start(run_id, kind, make_events)

    def _start(self, run_id: str, kind: str, make_events) -> str:
        if self.busy:
            raise RuntimeError("a run is already in progress")
        # A full garbage collection scans every object the app holds (Qt wrappers, torch,
        # pyqtgraph): ~150 ms with the GIL held, on whichever thread triggers it, and the GUI
        # froze that long mid-run. Freezing what exists now keeps collections during the run
        # to the run's own objects; _on_worker_finished unfreezes.
        gc.freeze()
        worker = RunWorker(run_id, make_events)
        worker.event.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self._worker, self._kind = worker, kind
        self._thread = start_in_thread(worker, self)
        self.run_started.emit(run_id, kind)
        self.state_changed.emit(kind)
        return run_id

    def _live_probe(self, session: Session, run_id: str):
        """A callback for the training thread: every 1/PROBE_HZ s, probe the fixed sample."""
        last = [0.0]
        buffer = self.probe_buffer
        encode = session.encoder()

        def on_batch() -> None:
            now = time.perf_counter()
            if now - last[0] < 1.0 / PROBE_HZ:
                return
            last[0] = now
            buffer.put(probe_sample(session, self.probe_index, encode=encode), run_id)

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
