"""The probed test sample: the "Test sample" chooser above the raster, the on-demand probe, and
the hand-over of the newest probe to the views that are on screen.

During a run the training thread probes the chosen sample live into the controller's
:attr:`~workbench.gui.run_controller.RunController.probe_buffer`; when no run is busy a probe
is one forward pass of one sample, done here with the core's
:func:`~workbench.core.runs.probe.probe_sample` (not a recorded run: showing a sample is not
something to keep a record of, and it must not hold the controller and turn a Train click
away). The GUI thread computes with one torch thread, so this stays short.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from workbench.core.model.errors import WorkbenchError

log = logging.getLogger(__name__)

PROBE_POLL_MS = 100  # the views take new probes at most 10 times a second


def on_screen(widget: QWidget) -> bool:
    """Whether any of ``widget`` can be seen. A dock behind another dock's tab stays
    ``isVisible()`` (Qt moves it off screen instead): redrawing the raster, membranes, rates
    and attention maps there on every live probe made the GUI thread stall 60–100 ms."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


class ProbeFeed(QObject):
    """``views()`` names the widgets with ``set_probe(item)``; ``session()`` the open one."""

    def __init__(self, controller: Any, views: Callable[[], dict[str, QWidget]],
                 session: Callable[[], Any], status: Callable[[str], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._views = views
        self._session = session
        self._status = status
        self._seq = 0
        self._item: dict[str, Any] | None = None
        self._shown: dict[str, int] = {}

        self.bar = QWidget()
        row = QHBoxLayout(self.bar)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(QLabel("Test sample"))
        self.sample_spin = QSpinBox(minimum=0, maximum=0)
        self.sample_spin.setToolTip("Which test sample the spike raster, membrane traces, "
                                    "firing rates, Signal tab and plugin views (such as the "
                                    "attention maps) show; during training this sample is "
                                    "probed live")
        row.addWidget(self.sample_spin)
        show = QPushButton("Show")
        show.clicked.connect(lambda: self.probe_now(self.sample_spin.value()))
        row.addWidget(show)
        row.addStretch(1)

        self._timer = QTimer(self, interval=PROBE_POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def set_sample_count(self, count: int) -> None:
        self.sample_spin.setMaximum(max(0, count - 1))

    def probe_now(self, index: int) -> None:
        """Show test sample ``index`` in the views (during a run, the live probe switches)."""
        self.controller.probe_index = index
        if self.controller.busy:
            return  # the run's model is busy on its thread; its live probe shows the sample
        from workbench.core.runs.probe import probe_sample  # torch loads after the first paint

        try:
            result = probe_sample(self._session(), index)
        except WorkbenchError as exc:
            self._status(str(exc))
            return
        self.controller.probe_buffer.put(result.as_dict())

    def poll(self) -> None:
        """Hand the newest probe to the views that are on screen; hidden ones catch up when
        their tab is shown (no CPU spent drawing what nobody sees)."""
        seq, item, _ = self.controller.probe_buffer.take(self._seq)
        if item is not None:
            self._seq, self._item, self._shown = seq, item, {}
        if self._item is None:
            return
        for name, view in self._views().items():
            if self._shown.get(name) == self._seq or not on_screen(view):
                continue
            self._shown[name] = self._seq
            try:
                view.set_probe(self._item)
            except Exception as exc:  # noqa: BLE001 - a plugin's view must not break the others
                log.error("view %s could not show the probe: %s", name, exc)

    def stop(self) -> None:
        self._timer.stop()
