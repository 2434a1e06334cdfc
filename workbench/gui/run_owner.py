"""A panel or dialog that starts its own runs (compression, deployment, fit check) on the
window's run controller and shows their events itself, not in the training panel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import RunEvent

MakeEvents = Callable[[CancelToken], Iterator[RunEvent]]
#: ``launch(run_id, kind, make_events) -> run_id`` ("" when another run is in progress)
Launch = Callable[[str, str, MakeEvents], str]


class RunOwner:
    """Mixin: the run id it owns, launching, cancelling, and the "why not" label.

    The widget provides ``controller``, ``_launch``, ``reason_label``, ``progress`` (a
    QProgressBar), ``refresh()`` and ``_show_status(text)``.
    """

    _run_id: str = ""
    controller: Any
    _launch: Launch

    @property
    def running(self) -> bool:
        return bool(self._run_id)

    def reason_text(self) -> str:
        """The reason shown under the form ("" when none is shown)."""
        return self.reason_label.text() if not self.reason_label.isHidden() else ""

    def cancel(self) -> None:
        """Ask the run to stop; it ends within one batch or tool step."""
        if self.running:
            self._show_status("Cancelling…")
            self.controller.cancel(self._run_id)

    def _launch_run(self, run_id: str, state: str, make_events: MakeEvents) -> str:
        """Start ``make_events`` as this widget's run; "" when another run holds the
        controller. The id is set first: the first events may arrive at once."""
        self._run_id = run_id
        self.progress.setRange(0, 0)
        if not self._launch(run_id, state, make_events):
            self._run_id = ""
            self.progress.setRange(0, 1)
            self._show_status("Another run is in progress.")
        self.refresh()
        return self._run_id

    def _show_status(self, text: str) -> None:
        raise NotImplementedError
