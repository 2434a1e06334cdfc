"""Firing-rate histogram: how many neurons of a layer fire how often.

A neuron's rate is the mean of ``|spike|`` over time steps and probed samples, so it lies in
[0, 1] (spikes per step). Dead layers pile up in the first bin, saturated ones in the last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from workbench.core.runs.buffers import LatestBuffer
from workbench.gui.views._common import (
    ALL_LAYERS,
    BufferPoller,
    ProbeViewMixin,
    assemble_view,
    fill_layer_combo,
    layer_header,
    layer_rates,
)
from workbench.gui.views.export import ExportMixin

BINS = 20
RATE_RANGE = (0.0, 1.0)
_BAR_COLOUR = (70, 150, 255)


class FiringRateView(QWidget, ProbeViewMixin, ExportMixin):
    """Histogram of per-neuron firing rates (20 bins on [0, 1]) of one layer or all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rates: dict[str, np.ndarray] = {}
        self._edges = np.linspace(*RATE_RANGE, BINS + 1)
        self._counts = np.zeros(BINS, dtype=np.int64)
        self._mean = float("nan")
        self._poller = BufferPoller(self.set_probe, self.clear, self)

        header = layer_header(self)

        self.plot_widget = pg.PlotWidget()
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("bottom", "firing rate (spikes per step)")
        plot.setLabel("left", "neurons")
        plot.setXRange(*RATE_RANGE, padding=0.02)
        self._bars = pg.BarGraphItem(x0=self._edges[:-1], x1=self._edges[1:],
                                     height=self._counts, brush=pg.mkBrush(*_BAR_COLOUR, 200),
                                     pen=pg.mkPen(*_BAR_COLOUR))
        plot.addItem(self._bars)

        self._stack = assemble_view(self, header)
        self.clear()

    # -- data in -------------------------------------------------------------------------------
    def set_records(self, records: dict[str, Any]) -> None:
        """Rates from ``records`` (layer -> ProbeRecord), averaged over steps and samples."""
        self.set_rates({name: layer_rates(record.spikes) for name, record in records.items()})
        self.title_label.clear()

    def set_rates(self, rates: dict[str, np.ndarray]) -> None:
        """Show per-neuron rates (layer -> 1-D array, spikes per step)."""
        self._rates = {name: np.asarray(values, dtype=np.float64).ravel()
                       for name, values in rates.items()}
        fill_layer_combo(self.layer_combo, list(self._rates), with_all=True)
        self._redraw()

    def clear(self) -> None:
        self.title_label.clear()
        self._rates = {}
        fill_layer_combo(self.layer_combo, [], with_all=True)
        self._redraw()

    # -- live updates --------------------------------------------------------------------------
    def attach(self, buffer: LatestBuffer, fps: float = 30) -> None:
        """Poll ``buffer`` (the run controller's probe buffer) ``fps`` times a second."""
        self._poller.attach(buffer, fps)

    def detach(self) -> None:
        self._poller.detach()

    # -- what the user sees --------------------------------------------------------------------
    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, counts)``: 21 bin edges on [0, 1] and the neurons in each bin."""
        return self._edges.copy(), self._counts.copy()

    def mean_rate(self) -> float:
        """Mean rate of the neurons shown (NaN when none)."""
        return self._mean

    def plot_title(self) -> str:
        return str(self.plot_widget.getPlotItem().titleLabel.text)

    # -- drawing -------------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _index: int) -> None:
        self._redraw()

    def _shown(self) -> dict[str, np.ndarray]:
        chosen = self.layer_combo.currentText()
        if chosen in ("", ALL_LAYERS):
            return self._rates
        return {chosen: self._rates[chosen]} if chosen in self._rates else {}

    def _redraw(self) -> None:
        shown = self._shown()
        values = np.concatenate(list(shown.values())) if shown else np.zeros(0)
        # a rate is at most 1 by construction; clip so rounding never drops a neuron
        self._counts, _ = np.histogram(np.clip(values, *RATE_RANGE), bins=self._edges)
        self._bars.setOpts(x0=self._edges[:-1], x1=self._edges[1:], height=self._counts)
        plot = self.plot_widget.getPlotItem()
        if values.size:
            self._mean = float(values.mean())
            plot.setTitle(f"Mean rate {self._mean:.3f} ({self._mean:.1%}) · "
                          f"{values.size} neurons")
            plot.setYRange(0, max(int(self._counts.max()), 1), padding=0.05)
            self._stack.show_plot()
        else:
            self._mean = float("nan")
            plot.setTitle("")
            self._stack.show_hint("No firing rates yet — train, or probe a test sample")

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        rows = ((name, neuron, float(rate)) for name, values in self._shown().items()
                for neuron, rate in enumerate(values))
        return ["layer", "neuron", "rate"], rows
