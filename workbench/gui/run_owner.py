"""A panel or dialog that starts its own runs (compression, deployment, fit check, NIR
exchange) on the window's run controller and shows their events itself, not in the training
panel; and what decides whether such a run may start at all (:func:`run_readiness`), so the
Compress dialog, the Deploy panel and File ▸ Export NIR say the same thing in the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import Project
from workbench.core.runs.engine import Run

#: ``launch(run, state) -> run_id`` ("" when another run is in progress)
Launch = Callable[[Run, str], str]


@dataclass
class RunContext:
    """What the Compress dialog and the Deploy panel need to know about the open project."""

    project: Project
    session: Any  # workbench.core.runs.session.Session
    reason: str = ""  # why no compression or deployment can start now ("" when one can)


def run_readiness(project: Project, *, weights_dirty: bool, weights_match_graph: bool,
                  verb: str = "compress") -> str:
    """Why ``project`` cannot be compressed (or deployed, exported: ``verb``) now; "" when it can.

    A compression reads the saved ``weights.safetensors`` (the core rebuilds the network from it
    when the session has no loaded weights), and writes variants next to the project, so the
    project needs a folder and weights that are saved and belong to the current graph.
    """
    if project.folder is None:
        return f"The project has no folder yet: save it (File ▸ Save As…), then {verb}."
    weights = project.weights_path
    if not weights_dirty and (weights is None or not weights.exists()):
        return (f"The project is not trained yet (it has no saved weights): train it and save "
                f"it, then {verb}.")
    if weights_dirty:
        return ("The trained weights are not saved yet: save the project (File ▸ Save), "
                f"then {verb}.")
    if not weights_match_graph:
        return ("The network changed since its weights were trained: train it again (or undo "
                f"the change) and save it, then {verb}.")
    return ""


def one_line(text: str) -> str:
    """The first non-empty line of an error: a panel never shows a traceback."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


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

    def _launch_run(self, make_run: Callable[[], Run], state: str) -> str:
        """Create the run (a catalog call) and start it as this widget's run; "" when its
        options are wrong (said in one line) or another run holds the controller. The id is
        set before it starts: the first events may arrive at once."""
        try:
            run = make_run()
        except WorkbenchError as exc:
            self._show_status(f"Failed: {one_line(str(exc))}")
            self.refresh()
            return ""
        self._run_id = run.id
        self.progress.setRange(0, 0)
        if not self._launch(run, state):
            self._run_id = ""
            self.progress.setRange(0, 1)
            self._show_status("Another run is in progress.")
        self.refresh()
        return self._run_id

    def _show_status(self, text: str) -> None:
        raise NotImplementedError
