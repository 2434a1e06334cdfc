"""What the compression and deployment runs share: a context that lets plugin code report
progress and notice cancel, and the loop that forwards a plugin generator's events.

A plugin step (a compression method, a backend's ``deploy`` or ``run``) is a generator: it
yields events and *returns* its result. :func:`drive` forwards the events, stops the generator
when cancel is requested, and hands the result back to the run.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import Log, Progress, RunEvent


class Cancelled(Exception):
    """Raised by :meth:`PluginRunContext.check_cancel` (and by :func:`drive`)."""


class PluginRunContext:
    """The part of a run's context every plugin step uses."""

    def __init__(self, cancel: CancelToken, run_id: str) -> None:
        self.cancel = cancel
        self.run_id = run_id

    def check_cancel(self) -> None:
        """Call between units of work; the run then ends as "cancelled"."""
        if self.cancel.requested:
            raise Cancelled

    def progress(self, done: int, total: int, message: str = "") -> Progress:
        """``yield ctx.progress(...)``: the message names the step (views list the steps)."""
        return Progress(self.run_id, done, total, message=message)

    def log(self, message: str, level: str = "info") -> Log:
        return Log(self.run_id, level, message)


def drive(gen: Generator[RunEvent, None, Any], cancel: CancelToken
          ) -> Generator[RunEvent, None, Any]:
    """Forward ``gen``'s events; close it and raise :class:`Cancelled` when cancel is asked;
    return what it returns."""
    while True:
        if cancel.requested:
            gen.close()
            raise Cancelled
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        yield event
