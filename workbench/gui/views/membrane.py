"""Membrane potential traces of chosen neurons of one layer of the probed sample."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget

from workbench.core.runs.buffers import LatestBuffer
from workbench.gui.views._common import (
    BufferPoller,
    ProbeViewMixin,
    assemble_view,
    fill_layer_combo,
    layer_header,
    sample_matrix,
    step_axis,
)
from workbench.gui.views.export import ExportMixin

#: more curves than this are unreadable and slow; the rest of a long range is not drawn
MAX_CURVES = 32
DEFAULT_NEURONS = "0-4"
#: spike markers: a triangle up on the curve where the neuron fired (down for a ternary −1)
SPIKE_SYMBOLS = {1: "t1", -1: "t"}
SPIKE_SIZE = 9


def parse_indices(text: str) -> list[int]:
    """``"0-4, 7"`` -> ``[0, 1, 2, 3, 4, 7]`` (sorted, unique). Raises ValueError on bad text."""
    found: set[int] = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        # int() rejects the pieces of "-3", "3-" and "1-2-3", so negatives can't slip through
        low_text, dash, high_text = part.partition("-")
        low = int(low_text)
        high = int(high_text) if dash else low
        if high < low:
            raise ValueError(f"range {part!r} runs backwards")
        if high - low > 1_000_000:  # a typo like 0-99999999 must not build a huge set
            raise ValueError(f"range {part!r} is too long")
        found.update(range(low, high + 1))
    return sorted(found)


def format_indices(indices: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 4, 7]`` -> ``"0-4, 7"``."""
    values = sorted(set(indices))
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(parts)


class MembraneView(QWidget, ProbeViewMixin, ExportMixin):
    """Membrane potential over time steps, one coloured curve per chosen neuron, the layer's
    threshold as a dashed line and a marker on each curve where its neuron spiked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._records: dict[str, Any] = {}
        self._sample = 0
        self._neurons = parse_indices(DEFAULT_NEURONS)
        # (neuron, values) of each drawn curve, for the CSV export
        self._drawn: list[tuple[int, np.ndarray]] = []
        # (neuron, spike per step) of each drawn curve: 0, +1 or −1
        self._drawn_spikes: list[np.ndarray] = []
        self._marks: list[tuple[int, int, int]] = []  # (neuron, t, sign) of each spike marker
        self._curves: list[pg.PlotDataItem] = []
        self._text_error = ""
        self._poller = BufferPoller(self.set_probe, self.clear, self)

        self.neuron_edit = QLineEdit(DEFAULT_NEURONS)
        self.neuron_edit.setPlaceholderText("e.g. 0-4, 7")
        self.neuron_edit.setToolTip("Neuron indices of the layer: single numbers and ranges")
        self.neuron_edit.textChanged.connect(self._on_neuron_edit_text_changed)
        self.neuron_hint = QLabel()
        # red reads as "fix this" on both themes; the text itself says what is wrong
        self.neuron_hint.setStyleSheet("color: #d62728;")
        self.neuron_hint.setVisible(False)
        header = layer_header(self, QLabel("Neurons:"), self.neuron_edit)

        self.plot_widget = pg.PlotWidget(axisItems=step_axis())
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("bottom", "time step")
        plot.setLabel("left", "membrane potential")
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        plot.addLegend(offset=(-10, 10))
        self._threshold_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen((128, 128, 128), width=1, style=Qt.PenStyle.DashLine),
            label="threshold", labelOpts={"position": 0.05})
        self._threshold_line.setVisible(False)
        self._threshold: float | None = None  # shown now
        self._given_threshold: float | None = None  # set_threshold's, for records without one
        # in the auto range: how far a silent neuron stays below its threshold is the point
        plot.addItem(self._threshold_line)
        self._spike_marks = pg.ScatterPlotItem(size=SPIKE_SIZE, pen=None, symbol="t1",
                                               brush=pg.mkBrush(128, 128, 128))
        self._spike_marks.setZValue(5)  # over the curves
        plot.addItem(self._spike_marks)

        self._stack = assemble_view(self, header, self.neuron_hint)
        self._redraw()

    # -- data in -------------------------------------------------------------------------------
    def set_records(self, records: dict[str, Any], sample: int = 0) -> None:
        """Show ``records`` (layer -> ProbeRecord); ``membrane`` may be None per layer."""
        self._records = dict(records)
        self._sample = sample
        self.title_label.setText(f"Sample {sample}" if records else "")
        layers = list(self._records)
        changed = fill_layer_combo(self.layer_combo, layers, with_all=False)
        if changed and layers:
            # prefer a layer that has membranes: a fresh combo otherwise opens on a blank plot
            current = self._records.get(self.layer_combo.currentText())
            if current is None or current.membrane is None:
                with_membrane = [n for n in layers if self._records[n].membrane is not None]
                if with_membrane:
                    blocked = self.layer_combo.blockSignals(True)
                    self.layer_combo.setCurrentText(with_membrane[0])
                    self.layer_combo.blockSignals(blocked)
        self._redraw()

    def set_neurons(self, neurons: list[int]) -> None:
        """Show these neuron indices (the text field follows)."""
        self.neuron_edit.setText(format_indices(neurons))

    def set_threshold(self, value: float | None) -> None:
        """Draw a dashed line at the firing threshold ``value`` for layers whose record does
        not carry their own (``ProbeRecord.threshold``); None hides it."""
        self._given_threshold = value
        self._show_threshold(value)

    def _show_threshold(self, value: float | None) -> None:
        self._threshold = value
        if value is None:
            self._threshold_line.setVisible(False)
        else:
            self._threshold_line.setValue(float(value))
            self._threshold_line.setVisible(True)

    def clear(self) -> None:
        self._records = {}
        self.title_label.clear()
        fill_layer_combo(self.layer_combo, [], with_all=False)
        self._redraw()

    # -- live updates --------------------------------------------------------------------------
    def attach(self, buffer: LatestBuffer, fps: float = 30) -> None:
        """Poll ``buffer`` (the run controller's probe buffer) ``fps`` times a second."""
        self._poller.attach(buffer, fps)

    def detach(self) -> None:
        self._poller.detach()

    # -- what the user sees --------------------------------------------------------------------
    def neurons(self) -> list[int]:
        """The neuron indices asked for (the last valid text)."""
        return list(self._neurons)

    def curve_count(self) -> int:
        return len(self._drawn)

    def neuron_hint_text(self) -> str:
        """The red note under the neuron field ("" when the text is fine)."""
        return self.neuron_hint.text() if not self.neuron_hint.isHidden() else ""

    def threshold(self) -> float | None:
        """The threshold drawn now (None: no line)."""
        return self._threshold if self._threshold_line.isVisible() else None

    def spike_marks(self) -> list[tuple[int, int]]:
        """``(neuron, time step)`` of every spike marker drawn, in curve order."""
        return [(neuron, t) for neuron, t, _sign in self._marks]

    # -- drawing -------------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _index: int) -> None:
        self._redraw()

    def _on_neuron_edit_text_changed(self, text: str) -> None:
        try:
            neurons = parse_indices(text)
        except ValueError:
            # keep the last valid curves: a half-typed "3-" must not blank the plot
            self._text_error = f"Can't read {text!r}: use numbers and ranges like 0-4, 7"
            self._show_neuron_hint(self._text_error)
            return
        self._text_error = ""
        self._neurons = neurons
        self._redraw()

    def _show_neuron_hint(self, text: str) -> None:
        self.neuron_hint.setText(text)
        self.neuron_hint.setVisible(bool(text))

    def _redraw(self) -> None:
        self._drawn, self._drawn_spikes = [], []
        note = ""
        layer = self.layer_combo.currentText()
        record = self._records.get(layer)
        if record is None:
            self._stack.show_hint("No membranes yet — train, or probe a test sample")
        elif record.membrane is None:
            self._stack.show_hint(f"No membrane recorded for layer {layer!r}; "
                                  "its neuron type does not expose one")
        else:
            matrix = sample_matrix(record.membrane, self._sample)
            available = matrix.shape[1]
            wanted = [n for n in self._neurons if n < available]
            if len(wanted) < len(self._neurons):
                note = f"Layer {layer!r} has {available} neurons (0-{available - 1})"
            if len(wanted) > MAX_CURVES:
                note = f"Showing the first {MAX_CURVES} of {len(wanted)} neurons"
                wanted = wanted[:MAX_CURVES]
            self._drawn = [(n, matrix[:, n].astype(np.float64)) for n in wanted]
            spikes = sample_matrix(record.spikes, self._sample)
            if spikes.shape == matrix.shape:
                self._drawn_spikes = [np.sign(spikes[:, n]).astype(np.int8) for n in wanted]
            self._stack.show_plot()
        own = getattr(record, "threshold", None) if record is not None else None
        drawn = record is not None and record.membrane is not None
        self._show_threshold((own if own is not None else self._given_threshold)
                             if drawn else None)
        self._show_neuron_hint(self._text_error or note)
        self._sync_curves()
        self._sync_marks()

    def _sync_curves(self) -> None:
        # curves are reused across redraws (5-30 per second while a run probes); only a changed
        # neuron list rebuilds the legend, so its entries stay in the curves' order
        plot = self.plot_widget.getPlotItem()
        names = [f"neuron {neuron}" for neuron, _values in self._drawn]
        renamed = names != [curve.name() for curve in self._curves]
        while len(self._curves) > len(self._drawn):
            plot.removeItem(self._curves.pop())
        if renamed and plot.legend is not None:
            plot.legend.clear()
        hues = max(len(self._drawn), 9)
        for i, ((_neuron, values), name) in enumerate(zip(self._drawn, names, strict=True)):
            if i == len(self._curves):
                curve = pg.PlotDataItem()
                curve.setDownsampling(auto=True, method="peak")
                curve.setClipToView(True)
                plot.addItem(curve)
                self._curves.append(curve)
            curve = self._curves[i]
            curve.setData(np.arange(values.size), values, name=name,
                          pen=pg.mkPen(pg.intColor(i, hues=hues), width=1.5))
            if renamed and plot.legend is not None:
                plot.legend.addItem(curve, name)

    def _sync_marks(self) -> None:
        """One scatter item for all spike markers, each in its curve's colour."""
        hues = max(len(self._drawn), 9)
        self._marks, xs, ys, brushes, symbols = [], [], [], [], []
        for i, ((neuron, values), signs) in enumerate(zip(self._drawn, self._drawn_spikes,
                                                          strict=False)):
            brush = pg.mkBrush(pg.intColor(i, hues=hues))
            for t in np.flatnonzero(signs):
                sign = int(signs[t])
                self._marks.append((neuron, int(t), sign))
                xs.append(float(t))
                ys.append(float(values[t]))
                brushes.append(brush)
                symbols.append(SPIKE_SYMBOLS[sign])
        self._spike_marks.setData(x=xs, y=ys, brush=brushes, symbol=symbols)
        self._spike_marks.setVisible(bool(xs))
        # the markers' key, after the neurons', only while there are markers (a hidden item's
        # key would show pyqtgraph's "hidden" icon)
        legend = self.plot_widget.getPlotItem().legend
        if legend is not None:
            listed = legend.getLabel(self._spike_marks) is not None
            if xs and not listed:
                legend.addItem(self._spike_marks, "spike")
            elif not xs and listed:
                legend.removeItem(self._spike_marks)

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        layer = self.layer_combo.currentText()
        rows = ((layer, neuron, t, float(v)) for neuron, values in self._drawn
                for t, v in enumerate(values))
        return ["layer", "neuron", "t", "v"], rows
