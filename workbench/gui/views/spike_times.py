"""The Spike times view: the firing times of a time-to-first-spike network for the probed sample.

In such a network each neuron fires at most once, and what travels between layers is that
firing time (``inf`` when the neuron stays silent), so a raster over time steps has nothing to
show. This view draws, for the layer chosen (the layers whose modules declare
``emits_spike_times``):

- a **sorted raster**: one dot per neuron that fired, at its firing time, the neurons ranked by
  that time (the curve's shape tells a layer that fires all at once from one that spreads out);
- a **histogram** of those times;

and for the network's output, the **race**: one bar per class, as long as its output neuron's
firing time; the earliest (the predicted class under the earliest-spike readout) is the
winner. Times are in the encoder's units (``wb_core.ttfs`` puts the inputs in 0 … ``t_max``).

A spike-train network has no firing times to show: the view says so in one line. The probe's
records come from :mod:`workbench.core.runs.probe` (``spike_times``, ``output_times``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QWidget

from workbench.gui.views._common import (
    PlotViewMixin,
    StepAxis,
    assemble_view,
    fill_layer_combo,
    layer_header,
    probe_title,
    to_numpy,
)
from workbench.gui.views.export import ExportMixin

EMPTY_HINT = "No spike times yet — probe a test sample"
TRAINS_HINT = ("This network passes spike trains; spike times are shown for "
               "time-to-first-spike networks (encoder wb_core.ttfs)")
#: the histogram's bins at most (fewer for a layer with few fired neurons)
BINS = 20
#: the output race's row name in the CSV export
RACE_ROW = "output race"
# the raster's spike colour for dots and bars, the Variants view's orange for the winner, and a
# mid-grey for silence: all read on the light and the dark plot background
_FIRED_COLOUR = (70, 150, 255)
_WINNER_COLOUR = (240, 110, 50)
_SILENT_COLOUR = (128, 128, 128)


def fired_times(times: Any) -> np.ndarray:
    """The firing times of the neurons that fired (finite), sorted, as float64."""
    values = to_numpy(times).astype(np.float64).ravel()
    return np.sort(values[np.isfinite(values)])


def race_winner(times: np.ndarray) -> int | None:
    """The class that fired first, or None when every output stayed silent: the core's rule
    (:func:`workbench.core.runs.probe.race_winner`), which ``inspect`` prints too."""
    import torch  # loaded by the probe that made ``times``

    from workbench.core.runs.probe import race_winner as core_winner

    return core_winner(torch.from_numpy(np.asarray(times, dtype=np.float64)))


def race_sentence(times: np.ndarray, label: int | None) -> str:
    """"class 3 fired first at t = 1.82 (label 3)", or that every output stayed silent."""
    winner = race_winner(times)
    tail = "" if label is None else f" (label {label})"
    if winner is None:
        return f"No output neuron fired{tail}"
    return f"class {winner} fired first at t = {times[winner]:.3g}{tail}"


def encoder_window(session: Any) -> float | None:
    """The encoder's input window ``t_max`` (the unit of every firing time), when the project's
    encoder has one; read from the project, not the encoder, so nothing is built."""
    try:
        component = session.project.encoder
        spec = session.lookup.get(component.id)
        value = {**(spec.defaults() if spec is not None else {}), **component.params}.get("t_max")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def time_axis_title(window: float | None) -> str:
    if window is None:
        return "firing time t (encoder time units)"
    return f"firing time t (encoder units: inputs fire in 0 … t_max = {window:g})"


class SpikeTimeView(QWidget, PlotViewMixin, ExportMixin):
    """Sorted raster and histogram of one layer's firing times, and the output race.

    ``session`` returns the open project's session (the window's); it gives the time unit.
    Scripts and tests may feed it with :meth:`set_probe` directly.
    """

    def __init__(self, session: Callable[[], Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._times: dict[str, np.ndarray] = {}
        self._output: np.ndarray | None = None
        self._label: int | None = None
        self._window: float | None = None  # the encoder's t_max, the unit of the times
        self._marks: dict[int, str] = {}
        self._mark_items: list[pg.TextItem] = []

        header = layer_header(self, tip="A layer that emits firing times")
        self.race_label = QLabel()
        self.race_label.setContentsMargins(6, 0, 6, 0)

        self.plot_widget = pg.GraphicsLayoutWidget()
        layout = self.plot_widget.ci
        self.raster_plot = layout.addPlot(row=0, col=0)
        self.raster_plot.setLabel("left", "neuron rank (by firing time)")
        self._dots = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(*_FIRED_COLOUR))
        self.raster_plot.addItem(self._dots)
        # whole neurons only on the count axis
        self.histogram_plot = layout.addPlot(row=0, col=1, axisItems={"left": StepAxis("left")})
        self.histogram_plot.setLabel("left", "neurons")
        self._hist = pg.BarGraphItem(x0=[], x1=[], height=[], brush=pg.mkBrush(*_FIRED_COLOUR,
                                                                                  200),
                                     pen=pg.mkPen(*_FIRED_COLOUR))
        self.histogram_plot.addItem(self._hist)
        self.race_plot = layout.addPlot(row=1, col=0, colspan=2)
        self.race_plot.setTitle("Output race: each class's output spike", size="9pt")
        self.race_plot.setLabel("left", "class")
        self.race_plot.invertY(True)  # class 0 on top, as a list reads
        self.race_plot.setMouseEnabled(y=False)
        self._race = pg.BarGraphItem(x0=[], y=[], width=[], height=[])
        self.race_plot.addItem(self._race)
        self._race_widths = np.zeros(0)
        self._edges = np.zeros(0)
        self._counts = np.zeros(0, dtype=np.int64)

        self._stack = assemble_view(self, header, self.race_label)
        self.clear()

    # -- data in -------------------------------------------------------------------------------
    def set_probe(self, item: dict[str, Any]) -> None:
        """A probe buffer item: its ``spike_times`` (layer -> ``[N]``) and ``output_times``."""
        self.title_label.setText(probe_title(item))
        times = item.get("spike_times") or {}
        output = item.get("output_times")
        self._times = {name: to_numpy(values).astype(np.float64).ravel()
                       for name, values in times.items()}
        self._output = None if output is None else to_numpy(output).astype(np.float64).ravel()
        self._label = item.get("label")
        if not self._times and self._output is None:
            self.race_label.clear()
            fill_layer_combo(self.layer_combo, [], with_all=False)
            self._stack.show_hint(TRAINS_HINT)
            return
        fill_layer_combo(self.layer_combo, list(self._times), with_all=False)
        self._set_time_unit()
        self._redraw_layer()
        self._redraw_race()
        self._stack.show_plot()

    def clear(self) -> None:
        self.title_label.clear()
        self.race_label.clear()
        self._times, self._output, self._label = {}, None, None
        fill_layer_combo(self.layer_combo, [], with_all=False)
        self._stack.show_hint(EMPTY_HINT)

    # -- what the user sees --------------------------------------------------------------------
    def layers(self) -> list[str]:
        return [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())]

    def set_layer(self, name: str) -> None:
        self.layer_combo.setCurrentText(name)

    def raster_points(self) -> tuple[np.ndarray, np.ndarray]:
        """``(time, rank)`` of the dots drawn: one per neuron that fired."""
        x, y = self._dots.getData()
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, counts)`` of the histogram drawn."""
        return self._edges.copy(), self._counts.copy()

    def race_bars(self) -> tuple[np.ndarray, list[str]]:
        """Each class's bar length, and its kind: ``"winner"``, ``"fired"`` or ``"silent"``
        (drawn grey and hatched, to the right edge)."""
        times = self._output if self._output is not None else np.zeros(0)
        winner = race_winner(times) if times.size else None
        kinds = ["winner" if k == winner else "fired" if np.isfinite(t) else "silent"
                 for k, t in enumerate(times)]
        return self._race_widths.copy(), kinds

    def race_marks(self) -> dict[int, str]:
        """The words written beside the bars: ``{class: "winner, label"}``."""
        return dict(self._marks)

    def race_text(self) -> str:
        return self.race_label.text()

    def plot_title(self, which: str) -> str:
        """The title of ``"raster"``, ``"histogram"`` or ``"race"``."""
        return str(getattr(self, f"{which}_plot").titleLabel.text)

    # -- drawing -------------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _index: int) -> None:
        if self._times:
            self._redraw_layer()

    def _set_time_unit(self) -> None:
        session = self._session() if self._session is not None else None
        self._window = encoder_window(session) if session is not None else None
        title = time_axis_title(self._window)
        for plot in (self.raster_plot, self.histogram_plot, self.race_plot):
            plot.setLabel("bottom", title)

    def _redraw_layer(self) -> None:
        name = self.layer_combo.currentText()
        times = self._times.get(name, np.zeros(0))
        fired = fired_times(times)
        self._dots.setData(fired, np.arange(fired.size, dtype=np.float64))
        silent = times.size - fired.size
        if name:
            self.raster_plot.setTitle(f"{name}: {fired.size} of {times.size} neurons fired, "
                                      f"{silent} silent", size="9pt")
        else:
            self.raster_plot.setTitle("No layer reports its firing times", size="9pt")
        if fired.size:
            low, high = float(fired[0]), float(fired[-1])
            if high <= low:  # all at one time: a bin of width 1 around it
                low, high = low - 0.5, high + 0.5
            self._counts, self._edges = np.histogram(fired, bins=min(BINS, fired.size),
                                                     range=(low, high))
        else:
            self._counts, self._edges = np.zeros(0, dtype=np.int64), np.zeros(0)
        self._hist.setOpts(x0=self._edges[:-1], x1=self._edges[1:], height=self._counts)
        self.histogram_plot.setTitle(f"Firing times of {fired.size} neurons", size="9pt")
        for plot in (self.raster_plot, self.histogram_plot):
            plot.enableAutoRange()

    def _redraw_race(self) -> None:
        for item in self._mark_items:
            self.race_plot.removeItem(item)
        self._mark_items, self._marks = [], {}
        times = self._output
        if times is None:
            self._race_widths = np.zeros(0)
            self._race.setOpts(x0=[], y=[], width=[], height=[])
            self.race_label.setText("The network's output is not firing times")
            return
        finite = np.isfinite(times)
        # silent classes reach the right edge: past the latest output spike
        edge = 1.1 * max(float(times[finite].max()) if finite.any() else 0.0,
                         self._window or 0.0, 1e-6)
        self._race_widths = np.where(finite, times, edge)
        winner = race_winner(times)
        brushes = [self._bar_brush(k == winner, bool(fired)) for k, fired in enumerate(finite)]
        classes = np.arange(times.size, dtype=np.float64)
        self._race.setOpts(x0=np.zeros(times.size), y=classes, width=self._race_widths,
                           height=0.7, brushes=brushes, pens=[pg.mkPen(None)] * times.size)
        self.race_plot.getAxis("left").setTicks([[(k, str(k)) for k in range(times.size)]])
        for k in range(times.size):
            words = [word for word, yes in (("winner", k == winner), ("silent", not finite[k]),
                                            ("label", k == self._label)) if yes]
            if not words:
                continue
            self._marks[k] = ", ".join(words)
            colour = (_WINNER_COLOUR if k == winner else _FIRED_COLOUR if finite[k]
                      else _SILENT_COLOUR)
            mark = pg.TextItem(f" {self._marks[k]}", anchor=(0, 0.5), color=colour)
            mark.setPos(float(self._race_widths[k]), float(k))
            self.race_plot.addItem(mark)
            self._mark_items.append(mark)
        self.race_plot.setXRange(0, edge * 1.25, padding=0)  # room for the words
        self.race_plot.setYRange(-0.6, times.size - 0.4, padding=0)
        self.race_label.setText(race_sentence(times, self._label))

    @staticmethod
    def _bar_brush(winner: bool, fired: bool) -> QBrush:
        if winner:
            return pg.mkBrush(*_WINNER_COLOUR)
        if fired:
            return pg.mkBrush(*_FIRED_COLOUR, 200)
        return QBrush(QColor(*_SILENT_COLOUR), Qt.BrushStyle.BDiagPattern)

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        """Every layer's firing times, then the output race; a silent neuron's time is
        empty."""
        def rows() -> Iterable[Sequence[Any]]:
            tables = list(self._times.items())
            if self._output is not None:
                tables.append((RACE_ROW, self._output))
            for name, times in tables:
                for neuron, t in enumerate(times):
                    yield name, neuron, float(t) if np.isfinite(t) else ""

        return ["layer", "neuron", "time"], rows()
