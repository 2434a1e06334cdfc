"""The two runs a :class:`~workbench.core.runs.session.Session` starts on itself: train and
evaluate.

The run catalog offers them with the other kinds (``catalog.train``), and ``session.train()``
is their shortcut. They live here, below both, so that the session does not import the catalog,
which imports the runs that make new sessions (replay, import): no import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import Run, launch
from workbench.core.runs.events import Artifact, RunEvent, RunFinished


def train(session: Any, *, epochs: int | None = None, fresh: bool = False,
          save_weights: bool = False, load_saved_weights: bool = True,
          on_batch: Callable[[], None] | None = None, run_id: str | None = None,
          cancel: CancelToken | None = None) -> Run:
    """Train the session's network (built inside the run, so a GUI builds on its worker).

    ``fresh`` starts from new weights; ``save_weights`` saves the weights as the project's
    (:meth:`Session.save_weights`) when the run ends ``ok``. Of a run on several processes
    (:mod:`~workbench.core.runs.distributed`), only rank 0 records it and saves."""
    from workbench.core.runs.distributed import is_main

    if epochs is not None and epochs < 1:  # zero epochs would "succeed" having done nothing
        raise WorkbenchError("must be 1 or more", where="epochs")
    main = is_main()

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        for event in session.train_events(epochs=epochs, fresh=fresh, cancel=token,
                                          run_id=run_id, on_batch=on_batch,
                                          load_saved_weights=load_saved_weights):
            if (isinstance(event, RunFinished) and event.status == "ok" and save_weights
                    and main and session.project.folder is not None):
                path = session.save_weights()
                yield Artifact(run_id, str(path), "weights")
                event = RunFinished(run_id, "ok", summary={**event.summary, "weights": str(path)})
            yield event

    return launch("train", body, record_to=session.project.folder if main else None,
                          run_id=run_id, cancel=cancel)


def evaluate(session: Any, *, limit: int | None = None, table: str | None = None,
             batch_size: int = 256, run_id: str | None = None,
             cancel: CancelToken | None = None) -> Run:
    """Accuracy and the energy ledger on the test split (``table`` replaces the project's cost
    table for this run only)."""
    if limit is not None and limit < 1:
        raise WorkbenchError("must be 1 or more", where="limit")

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        yield from session.evaluate_events(cancel=token, run_id=run_id, limit=limit,
                                           batch_size=batch_size, table=table)

    return launch("evaluate", body, record_to=session.project.folder,
                          run_id=run_id, cancel=cancel)
