"""Training curves: loss (per batch and per epoch), accuracy (per epoch) and the learning rule's
own metrics (per epoch: ``backward_events``, silent fractions, gradient norms…), against the step.

Samples arrive as run events, several a second; they are appended at once but drawn on a short
single-shot timer so a burst of events costs one redraw (update on a timer, not
per event).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from workbench.core.runs.events import MetricSample
from workbench.gui.views._common import PlotViewMixin, assemble_view, step_axis
from workbench.gui.views.export import ExportMixin

#: at most this many redraws a second however fast samples come: repainting the two plots
#: costs CPU the training run shares on a small machine (benchmarks/gui_responsiveness.py)
REDRAW_HZ = 2
#: the plots' height floor: below ~180 px a curve's shape (and the axis labels) are lost
MIN_PLOT_HEIGHT = 180


@dataclass(frozen=True)
class _SeriesStyle:
    key: str  # the key in MetricSample.values
    epoch_end: bool  # taken from epoch-end samples (else from batch samples)
    plot: str  # "loss" or "accuracy"
    label: str
    colour: tuple[int, int, int]
    symbol: str | None


#: the series drawn, in legend order; "loss" is the batch loss, the rest are epoch summaries
SERIES = (
    _SeriesStyle("loss", False, "loss", "batch loss", (120, 160, 230), None),
    _SeriesStyle("train_loss", True, "loss", "train loss (epoch)", (31, 119, 180), "o"),
    _SeriesStyle("test_loss", True, "loss", "test loss (epoch)", (255, 127, 14), "s"),
    _SeriesStyle("train_accuracy", True, "accuracy", "train accuracy", (31, 119, 180), "o"),
    _SeriesStyle("test_accuracy", True, "accuracy", "test accuracy", (255, 127, 14), "s"),
)
_ACCURACY = {style.key for style in SERIES if style.plot == "accuracy"}
#: values every trainer reports that are not curves of their own
_NOT_CURVES = {"lr", "epoch"}
#: colours of the learning rule's extra metrics, in the order they first appear in their family
_EXTRA_COLOURS = ((44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194),
                  (23, 190, 207), (188, 189, 34), (127, 127, 127))
#: how a family of the rule's metrics is drawn: its axis label, and a log axis or not
_FAMILY_AXES = {"backward events": ("events per epoch", False),
                "silent fraction": ("share of neurons silent", False),
                "gradient norm": ("gradient norm", True)}


def metric_family(key: str) -> str:
    """The family a learning rule's metric belongs to, drawn together on one axis: per-layer
    metrics ``name.layer`` by their name, counts of events together; a family per kind keeps
    10^5 events and a 0.01 gradient norm off one axis."""
    if key.endswith("_events"):
        return "backward events"
    return key.split(".", 1)[0].replace("grad_norm", "gradient norm").replace("_", " ")


def _extra_label(key: str) -> str:
    """``silent_fraction.hidden1`` -> ``hidden1``; ``dense_backward_events`` -> ``dense``."""
    if "." in key:
        return key.split(".", 1)[1]
    if key.endswith("_events"):
        return key.removesuffix("_events").replace("_backward", "").replace("_", " ") or key
    return key.replace("_", " ")


class MetricsView(QWidget, PlotViewMixin, ExportMixin):
    """Loss on a log scale (left), accuracy in % (middle) and — when the learning rule reports
    any — its own per-epoch metrics (right), side by side with linked step axes.

    Side by side because the training dock is wide and short: stacked, each plot got ~80 px.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # key -> (steps, epochs, values); values as reported (accuracies in [0, 1])
        self._data: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._extras: dict[str, _SeriesStyle] = {}  # the rule's metrics, as they appear
        self._last_epoch: int | None = None
        self._note = ""  # where the curves come from, when not from a run of this session

        self.title_label = QLabel()
        # a long summary (or the "from the last run" note) must not widen the dock: it gives way
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # the learning rule's metrics come in families (events, silent fractions, gradient
        # norms per layer) of very different sizes: one family is drawn at a time
        self.family_box = QComboBox()
        self.family_box.setToolTip("Which of the learning rule's own metrics the right plot "
                                   "shows (each family on its own axis)")
        self.family_box.currentTextChanged.connect(self._show_family)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.family_box)
        header.addWidget(self._make_export_button())

        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setMinimumHeight(MIN_PLOT_HEIGHT + 20)  # + the layout's margins
        self.loss_plot = self.plot_widget.addPlot(row=0, col=0, axisItems=step_axis())
        self.accuracy_plot = self.plot_widget.addPlot(row=0, col=1, axisItems=step_axis())
        self.loss_plot.setLabel("left", "loss")
        # a loss falls by orders of magnitude: on a linear axis it looks flat after epoch 2
        self.loss_plot.setLogMode(y=True)
        self.accuracy_plot.setLabel("left", "accuracy", units="%")
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setLabel("bottom", "step (batches)")
        self.accuracy_plot.setXLink(self.loss_plot)
        # The rule's own metrics (counts such as backward_events, fractions, norms) get a plot
        # of their own, added only once a rule reports one: most runs have none. (Hiding a
        # plot with a legend instead left the legend anchored to a deleted view box.)
        self.extra_plot: pg.PlotItem | None = None
        # accuracy is a fraction: a fixed 0-100 % axis makes runs comparable at a glance
        self.accuracy_plot.setYRange(0, 100, padding=0.02)
        self.accuracy_plot.enableAutoRange(axis="y", enable=False)
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            # No grid: its translucent lines made each redraw ~60 ms (software rendering),
            # time taken from the training run this view watches.
            plot.addLegend(offset=(-10, 10))

        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(1000 // REDRAW_HZ)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)

        self._stack = assemble_view(self, header)
        self.clear()

    # -- data in -------------------------------------------------------------------------------
    def add_sample(self, sample: MetricSample) -> None:
        """Append a metric event; it is drawn within 1/REDRAW_HZ s."""
        if sample.epoch_end:
            self._note_extras(sample.values)
        for style in self._styles():
            value = sample.values.get(style.key)
            if value is None or style.epoch_end != sample.epoch_end:
                continue
            steps, epochs, values = self._data.setdefault(style.key, ([], [], []))
            steps.append(int(sample.step))
            epochs.append(int(sample.epoch))
            values.append(float(value))
        if sample.epoch_end:
            self._last_epoch = sample.epoch
        if not self._redraw_timer.isActive():
            self._redraw_timer.start(1000 // REDRAW_HZ)

    def _styles(self) -> list[_SeriesStyle]:
        return [*SERIES, *self._extras.values()]

    def _note_extras(self, values: dict[str, float]) -> None:
        """Give each new metric of the learning rule a series (epoch values only: a rule may
        report per-batch counts whose epoch value is their sum)."""
        known = {style.key for style in SERIES} | _NOT_CURVES
        for key in values:
            if key not in known and key not in self._extras:
                family = metric_family(key)
                siblings = sum(metric_family(k) == family for k in self._extras)
                colour = _EXTRA_COLOURS[siblings % len(_EXTRA_COLOURS)]
                self._extras[key] = _SeriesStyle(key, True, "extra", _extra_label(key),
                                                 colour, "t")
                if self.family_box.findText(family) < 0:
                    self.family_box.addItem(family)  # the first one becomes the shown one
                    self.family_box.setVisible(True)

    def shown_family(self) -> str:
        """The family of the rule's metrics the right plot shows ("" when there is none)."""
        return self.family_box.currentText()

    def _show_family(self, family: str) -> None:
        """Draw ``family`` in the right plot instead of the one shown."""
        if self.extra_plot is not None:
            self.plot_widget.removeItem(self.extra_plot)
            self.extra_plot = None
        for key in self._extras:
            self._curves.pop(key, None)
            self._drawn.pop(key, None)
        if family:
            self._redraw(all_at_once=True)

    def extra_keys(self) -> list[str]:
        """The learning rule's own metrics shown in the bottom plot, in order of appearance."""
        return list(self._extras)

    def _plot_of(self, style: _SeriesStyle) -> pg.PlotItem:
        if style.plot == "extra":
            if self.extra_plot is None:
                self.extra_plot = self.plot_widget.addPlot(row=0, col=2, axisItems=step_axis())
                label, log = _FAMILY_AXES.get(self.shown_family(), (self.shown_family(), False))
                self.extra_plot.setLabel("left", label)
                self.extra_plot.setLogMode(y=log)
                self.extra_plot.setLabel("bottom", "step (batches)")
                self.extra_plot.setXLink(self.loss_plot)
                # Its steps follow the loss plot's: left to fit its own first point (one epoch
                # end), it would push that narrow range onto the linked plots for the whole run.
                self.extra_plot.enableAutoRange(axis="x", enable=False)
                self.extra_plot.setXRange(*self.loss_plot.viewRange()[0], padding=0)
                self.extra_plot.setDownsampling(auto=True, mode="peak")
                self.extra_plot.setClipToView(True)
                self.extra_plot.addLegend(offset=(-10, 10))
            return self.extra_plot
        return self.accuracy_plot if style.plot == "accuracy" else self.loss_plot

    def clear(self) -> None:
        """Forget every series (call when a new run starts)."""
        self._redraw_timer.stop()
        # The standard curves stay (emptied) with their legend entries: they are the same for
        # every run, and making them again cost the GUI thread tens of ms mid-run.
        for key in list(self._curves):
            if key in self._extras:
                del self._curves[key]
            else:
                self._curves[key].setData([], [])
        if self.extra_plot is not None:
            self.plot_widget.removeItem(self.extra_plot)
            self.extra_plot = None
        self.loss_plot.enableAutoRange(axis="x", enable=True)  # a past run: fit its steps
        self._data = {}
        self._last_epoch = None
        self._note = ""
        self._extras = {}
        self._drawn: dict[str, int] = {}  # key -> the points its curve holds
        self.family_box.blockSignals(True)
        self.family_box.clear()
        self.family_box.blockSignals(False)
        self.family_box.setVisible(False)
        self.title_label.clear()
        self._stack.show_hint("No metrics yet — train the network to see loss and accuracy")

    def expect_steps(self, total: int) -> None:
        """Start a run of ``total`` steps: the step axes span the whole run from the start, so
        the curves grow towards the right edge as training goes on.

        A fixed span is also cheaper: with the step axes following each new point, every
        redraw regenerated all four axes' ticks, ~half of a 20-40 ms repaint."""
        self.clear()
        if total > 0:
            self.loss_plot.setXRange(0, total, padding=0.02)  # the other plots are linked
            self._stack.show_plot()

    def flush(self) -> None:
        """Draw pending samples now instead of on the timer."""
        self._redraw_timer.stop()
        self._redraw(all_at_once=True)

    def show_history(self, samples: Iterable[MetricSample], note: str) -> None:
        """Show a past run's curves at once (a reopened project's last training run), headed
        by ``note`` ("from the last run, …") until the next :meth:`clear`."""
        self.clear()
        for sample in samples:
            self.add_sample(sample)
        self._note = note
        self.flush()

    def note(self) -> str:
        """Where the curves shown come from ("" for the current session's runs)."""
        return self._note

    # -- what the user sees --------------------------------------------------------------------
    def point_count(self) -> int:
        """Points drawn over all curves (pending samples are drawn first)."""
        if self._redraw_timer.isActive():
            self.flush()
        return sum(len(curve.xData) for curve in self._curves.values()
                   if curve.xData is not None)

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """key -> ``(steps, values)``; accuracies as fractions in [0, 1], as reported."""
        return {key: (np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64))
                for key, (steps, _epochs, values) in self._data.items()}

    # -- drawing -------------------------------------------------------------------------------
    def _on_redraw_timer_timeout(self) -> None:
        self._redraw()

    def _redraw(self, *, all_at_once: bool = False) -> None:
        made = False
        shown = self.shown_family()
        for style in self._styles():
            if style.key not in self._data:
                continue
            if style.plot == "extra" and metric_family(style.key) != shown:
                continue  # another family: drawn when the user picks it
            steps, _epochs, values = self._data[style.key]
            if self._drawn.get(style.key) == len(values):
                continue  # unchanged: re-setting a curve's data re-renders it for nothing
            if made and not all_at_once and style.key not in self._curves:
                # A curve and its legend entry cost ~10-20 ms to make; the epoch series all
                # appear at the end of epoch 1, and made together (then painted) they froze
                # the GUI ~70 ms. One new curve per turn of the event loop; the rest next turn.
                self._redraw_timer.start(0)
                break
            made = made or style.key not in self._curves
            self._drawn[style.key] = len(values)
            y = np.asarray(values, dtype=np.float64)
            if style.plot == "accuracy":
                y = y * 100.0
            elif style.plot == "loss" or (style.plot == "extra" and
                                          _FAMILY_AXES.get(shown, ("", False))[1]):
                # the log axis has no place for a loss of 0 (or a negative one from a custom
                # rule): such points are left out rather than drawn at -inf
                y = np.where(y > 0, y, np.nan)
            self._curve(style).setData(np.asarray(steps, dtype=np.float64), y)
        self._fit_flat_extra()
        if self._data:
            self._stack.show_plot()
        self.title_label.setText(" · ".join(part for part in (self._note, self._summary())
                                            if part))

    def _fit_flat_extra(self) -> None:
        """Give a flat series on the rule's linear axis a span of ±10 % around its value.

        A surrogate-gradient rule's backward events equal the dense count at every epoch; fitted
        to that one value (±0.5), the axis printed the same 1.76579e+07 at every tick."""
        plot = self.extra_plot
        if plot is None or plot.ctrl.logYCheck.isChecked():
            return  # a log axis already spans a decade around a constant
        values = [c.yData[np.isfinite(c.yData)] for c in plot.listDataItems()
                  if c.yData is not None]
        values = np.concatenate(values) if values else np.array([])
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if high - low > 1e-6 * max(abs(high), 1.0):
            plot.enableAutoRange(axis="y", enable=True)
            return
        margin = 0.1 * abs(high) or 1.0
        plot.setYRange(low - margin, high + margin, padding=0)  # turns y auto-range off

    def _curve(self, style: _SeriesStyle) -> pg.PlotDataItem:
        """The series' curve, made (with its legend entry) the first time it has data."""
        curve = self._curves.get(style.key)
        if curve is None:
            plot = self._plot_of(style)
            pen = pg.mkPen(style.colour, width=1 if style.symbol is None else 2)
            curve = plot.plot(pen=pen, name=style.label, symbol=style.symbol, symbolSize=6,
                              symbolBrush=pg.mkBrush(style.colour), symbolPen=None)
            # Clipping and downsampling re-run setData on every change of the view range,
            # i.e. on every paint while the axes follow a run: worth it for the batch loss
            # (thousands of points in a long run), a cost for a few epoch markers.
            many = style.symbol is None
            curve.setDownsampling(auto=many, method="peak")
            curve.setClipToView(many)
            self._curves[style.key] = curve
        return curve

    def _summary(self) -> str:
        parts = []
        if self._last_epoch is not None:
            parts.append(f"epoch {self._last_epoch}")
        for key, label, percent in (("loss", "loss", False), ("train_loss", "train loss", False),
                                    ("train_accuracy", "train acc", True),
                                    ("test_accuracy", "test acc", True)):
            if key in self._data:
                value = self._data[key][2][-1]
                parts.append(f"{label} {value:.1%}" if percent else f"{label} {value:.4g}")
        for key in self._extras:
            if key in self._data:
                parts.append(f"{key.replace('_', ' ')} {self._data[key][2][-1]:.4g}")
        return " · ".join(parts)

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        rows = ((key, epoch, step, value) for key, (steps, epochs, values) in self._data.items()
                for step, epoch, value in zip(steps, epochs, values, strict=True))
        return ["series", "epoch", "step", "value"], rows
