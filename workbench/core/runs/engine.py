"""The one way a run starts: an id, error capture, a record, and the compute settings.

Every run — train, evaluate, probe, compress, fit check, deploy, export, import — is a generator
of :mod:`events <workbench.core.runs.events>` wrapped here by :func:`launch`. The CLI iterates
the :class:`Run` and prints, the GUI's worker iterates it on its own thread and forwards; neither
adds behaviour of its own. The catalog of run kinds is :mod:`workbench.core.runs.catalog`.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Iterator

from workbench.core.model.errors import input_error_from
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import RunEvent, RunFinished
from workbench.core.runs.records import RecordTo, recorded


def new_run_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def guarded(run_id: str, events: Iterator[RunEvent]) -> Iterator[RunEvent]:
    """Turn an exception inside ``events`` into a final ``RunFinished(status="failed")``."""
    try:
        yield from events
    except SystemExit as exc:  # plugin code ending the process mid-run: the run fails instead
        yield RunFinished(run_id, "failed", error=f"plugin code called sys.exit({exc.code}) "
                                                  "during the run", error_kind="internal",
                          traceback=traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - a run never raises: its end says what failed
        problem = input_error_from(exc)
        if problem is not None:
            yield RunFinished(run_id, "failed", error=str(problem), error_kind="input",
                              error_where=problem.where)
            return
        yield RunFinished(run_id, "failed", error=f"{type(exc).__name__}: {exc}",
                          error_kind="internal", traceback=traceback.format_exc())


#: a run's work: ``body(cancel, run_id)`` yields its events, the last a RunFinished
Body = Callable[[CancelToken, str], Iterator[RunEvent]]


class Run:
    """A started run: iterate it (on the thread that should do the work) for its events.

    ``cancel()`` may be called from any thread; the run ends within one batch or step with
    ``RunFinished(status="cancelled")``. The last event is always exactly one
    :class:`RunFinished`; :attr:`finished` holds it afterwards.
    """

    def __init__(self, kind: str, run_id: str, body: Body, *, record_to: RecordTo,
                 cancel: CancelToken | None = None) -> None:
        self.kind = kind
        self.id = run_id
        self.token = cancel or CancelToken()
        self.record_to = record_to
        self.finished: RunFinished | None = None
        self._body = body
        self._started = False

    def cancel(self) -> None:
        self.token.set()

    def __iter__(self) -> Iterator[RunEvent]:
        if self._started:
            raise RuntimeError(f"run {self.id} was already started")
        self._started = True
        events = guarded(self.id, self._body(self.token, self.id))
        for event in recorded(events, self.record_to):
            if isinstance(event, RunFinished):
                if self.finished is not None:
                    continue  # a body that yields its own end and then fails: keep the first
                self.finished = event
            yield event
        if self.finished is None:  # a body that returned without its RunFinished
            self.finished = RunFinished(self.id, "failed", error="the run ended without a result",
                                        error_kind="internal")
            yield self.finished

    def result(self) -> RunFinished:
        """Run to the end (ignoring the events) and return the final event."""
        for _ in self:
            pass
        assert self.finished is not None
        return self.finished


def launch(kind: str, body: Body, *, record_to: RecordTo, run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Wrap ``body(cancel, run_id)`` as a recorded, guarded :class:`Run` (the catalog's door)."""
    return Run(kind, run_id or new_run_id(kind), body, record_to=record_to, cancel=cancel)
