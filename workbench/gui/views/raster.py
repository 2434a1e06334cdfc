"""The spike raster: which neuron fired at which time step, for one probed sample.

Drawing follows pyqtgraph's fast path: every spike is a vertical tick ``(t, n) -> (t, n + 0.8)`` and
all ticks are ONE ``PlotCurveItem(connect="pairs")``, so Qt draws a single path instead of one
item per spike. Past ``dense_threshold`` spikes even that path is too slow to pan, and the
raster becomes an ``ImageItem`` of a ``[neurons, steps]`` uint8 array with fixed levels.

Ternary spikes (−1, from ternary neurons or a delta encoder) are drawn in a second colour: one
more pairs curve (image value 2), and a legend says which colour is which polarity. A binary
raster shows neither the second curve nor the legend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from workbench.core.runs.buffers import LatestBuffer
from workbench.gui.views._common import (
    ALL_LAYERS,
    BufferPoller,
    ProbeViewMixin,
    assemble_view,
    fill_layer_combo,
    layer_header,
    probe_title,
    sample_matrix,
    step_axis,
)
from workbench.gui.views.export import ExportMixin

#: spikes above which the raster is drawn as an image (past that an image is cheaper to draw than one tick per spike)
DENSE_THRESHOLD = 200_000
#: the image is binned down to at most this many rows and columns (a screen has fewer pixels)
MAX_IMAGE_SIDE = 4096
#: tick height in neuron rows; the gap keeps neighbouring rows apart
TICK_LENGTH = 0.8  # of a time step
# mid-tones that read on both the light and the dark plot background
_SPIKE_COLOUR = (70, 150, 255)
_NEGATIVE_COLOUR = (240, 110, 50)  # −1 spikes: orange against the blue of +1


#: the raster's name for the encoder's output spikes
INPUT_LAYER = "input (encoder)"


class SpikeRasterView(QWidget, ProbeViewMixin, ExportMixin):
    """Raster of the probed sample's spikes, layers stacked bottom to top.

    Parameters
    ----------
    dense_threshold : int
        Spike count above which the raster switches from ticks to an image.
    """

    def __init__(self, parent: QWidget | None = None, *,
                 dense_threshold: int = DENSE_THRESHOLD) -> None:
        super().__init__(parent)
        self.dense_threshold = dense_threshold
        self._records: dict[str, Any] = {}
        self._sample = 0
        self._times = np.zeros(0, dtype=np.int64)
        self._neurons = np.zeros(0, dtype=np.int64)
        self._values = np.zeros(0, dtype=np.int8)  # +1 or −1 per spike
        # (layer, first row, rows) of what is drawn, for the labels and the CSV export
        self._segments: list[tuple[str, int, int]] = []
        self._mode = "ticks"
        self._separators: list[pg.InfiniteLine] = []
        self._separator_key: list[tuple[str, int]] = []  # (layer, first row) of the lines
        self._poller = BufferPoller(self.set_probe, self.clear, self)

        header = layer_header(self, tip="Show one layer, or all layers stacked")

        self.plot_widget = pg.PlotWidget(axisItems=step_axis())  # ticks at whole steps
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("bottom", "time step")
        plot.setLabel("left", "neuron")
        plot.setClipToView(True)
        plot.showGrid(x=False, y=False)
        self._curve = self._pairs_curve(_SPIKE_COLOUR)  # +1 spikes (all of a binary raster)
        self._negative_curve = self._pairs_curve(_NEGATIVE_COLOUR)  # −1 spikes
        plot.addItem(self._curve)
        plot.addItem(self._negative_curve)
        self._image = pg.ImageItem(axisOrder="row-major")
        # transparent where no spike, so the image sits on either theme's background
        self._image.setLookupTable(np.array([[0, 0, 0, 0], [*_SPIKE_COLOUR, 255],
                                             [*_NEGATIVE_COLOUR, 255]], np.uint8))
        self._image.setVisible(False)
        plot.addItem(self._image)
        self._legend = pg.LegendItem(offset=(-10, 10))
        self._legend.setParentItem(plot.vb)
        self._legend.addItem(self._curve, "+1")
        self._legend.addItem(self._negative_curve, "\u22121")
        self._legend.setVisible(False)

        self._stack = assemble_view(self, header)
        self.clear()

    # -- data in -------------------------------------------------------------------------------
    def set_probe(self, item: dict[str, Any]) -> None:
        """A probe item; the encoder's own spikes (``input_spikes``, e.g. the ±1 events of a
        signal encoder) are drawn as the first layer, so the user sees what the network got."""
        records = dict(item.get("records") or {})
        spikes = item.get("input_spikes")
        if spikes is not None:
            # imported here: torch loads after the window shows (a probe item means it has)
            from workbench.core.build.probes import ProbeRecord

            records = {INPUT_LAYER: ProbeRecord(spikes=spikes[:, :1]), **records}
        self.set_records(records)
        self.title_label.setText(probe_title(item))

    def set_records(self, records: dict[str, Any], sample: int = 0) -> None:
        """Show ``records`` (layer -> ProbeRecord with ``spikes`` ``[T, samples, ...]``)."""
        self._records = dict(records)
        self._sample = sample
        self.title_label.setText(f"Sample {sample}" if records else "")
        fill_layer_combo(self.layer_combo, list(self._records), with_all=True)
        self._redraw()

    def set_spikes(self, times: np.ndarray, neurons: np.ndarray, n_steps: int,
                   n_neurons: int, values: np.ndarray | None = None) -> None:
        """Draw spikes at ``(times[i], neurons[i])`` on a raster of ``n_steps`` by ``n_neurons``;
        ``values[i]`` is each spike's sign (+1 when omitted; −1 draws in the second colour)."""
        self._segments = [("", 0, int(n_neurons))]
        self._set_separators([])
        times = np.asarray(times)
        signs = np.ones(times.size, np.int8) if values is None else np.sign(values).astype(np.int8)
        self._draw(times, np.asarray(neurons), int(n_steps), int(n_neurons), signs)

    def clear(self) -> None:
        """Forget the records and show the empty-state hint."""
        self._records = {}
        self.title_label.clear()
        fill_layer_combo(self.layer_combo, [], with_all=True)
        self._segments = []
        self._set_separators([])
        self._draw(np.zeros(0, np.int64), np.zeros(0, np.int64), 0, 0, np.zeros(0, np.int8))
        self._stack.show_hint("No spikes yet — train, or probe a test sample")

    # -- live updates --------------------------------------------------------------------------
    def attach(self, buffer: LatestBuffer, fps: float = 30) -> None:
        """Poll ``buffer`` (the run controller's probe buffer) ``fps`` times a second."""
        self._poller.attach(buffer, fps)

    def detach(self) -> None:
        self._poller.detach()

    # -- what the user sees --------------------------------------------------------------------
    def spike_count(self) -> int:
        return int(self._times.size)

    def negative_count(self) -> int:
        """How many of the drawn spikes are −1 (ternary)."""
        return int((self._values < 0).sum())

    def legend_visible(self) -> bool:
        """The polarity legend shows (only while −1 spikes are drawn)."""
        return self._legend.isVisible()

    def mode(self) -> str:
        """``"ticks"`` or ``"image"``."""
        return self._mode

    def layers(self) -> list[str]:
        """Layers drawn now, bottom to top."""
        return [name for name, _first, _rows in self._segments if name]

    # -- drawing -------------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _index: int) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self._records:
            self.clear()
            return
        chosen = self.layer_combo.currentText()
        names = list(self._records) if chosen in ("", ALL_LAYERS) else [chosen]
        times, neurons, values, segments = [], [], [], []
        first, n_steps = 0, 0
        for name in names:
            matrix = sample_matrix(self._records[name].spikes, self._sample)
            t, n = np.nonzero(matrix)
            times.append(t)
            neurons.append(n + first)
            values.append(np.sign(matrix[t, n]).astype(np.int8))
            segments.append((name, first, matrix.shape[1]))
            first += matrix.shape[1]
            n_steps = max(n_steps, matrix.shape[0])
        self._segments = segments
        self._set_separators(segments if len(segments) > 1 else [])
        self._draw(np.concatenate(times), np.concatenate(neurons), n_steps, first,
                   np.concatenate(values))

    @staticmethod
    def _pairs_curve(colour: tuple[int, int, int]) -> pg.PlotCurveItem:
        pen = pg.mkPen(colour, width=1)
        pen.setCosmetic(True)
        return pg.PlotCurveItem(connect="pairs", skipFiniteCheck=True, pen=pen)

    @staticmethod
    def _set_ticks(curve: pg.PlotCurveItem, times: np.ndarray, neurons: np.ndarray) -> None:
        # Each spike is a short dash along time inside its (step, neuron) cell: with few
        # time steps (T = 4 is common) vertical ticks would merge into one line per step,
        # while dashes keep every neuron's row readable; with many steps they are dots.
        xs = np.empty(2 * times.size, dtype=np.float64)
        xs[0::2] = times
        xs[1::2] = times + TICK_LENGTH
        ys = np.repeat(neurons.astype(np.float64) + 0.5, 2)
        curve.setData(xs, ys, connect="pairs", skipFiniteCheck=True)
        curve.setVisible(times.size > 0)

    def _draw(self, times: np.ndarray, neurons: np.ndarray, n_steps: int,
              n_neurons: int, values: np.ndarray) -> None:
        self._times, self._neurons, self._values = times, neurons, values
        negative = values < 0
        self._legend.setVisible(bool(negative.any()))
        if times.size > self.dense_threshold:
            self._mode = "image"
            for curve in (self._curve, self._negative_curve):
                curve.setData(np.zeros(0), np.zeros(0), connect="pairs")
                curve.setVisible(False)
            self._draw_image(times, neurons, n_steps, n_neurons, negative)
        else:
            self._mode = "ticks"
            self._image.clear()
            self._image.setVisible(False)
            # one curve per polarity: still one path each, however many spikes
            self._set_ticks(self._curve, times[~negative], neurons[~negative])
            self._curve.setVisible(True)
            self._set_ticks(self._negative_curve, times[negative], neurons[negative])
        if n_steps and n_neurons:
            self.plot_widget.getPlotItem().setRange(xRange=(0, n_steps), yRange=(0, n_neurons),
                                                    padding=0.02)
        if n_neurons:
            self._stack.show_plot()

    def _draw_image(self, times: np.ndarray, neurons: np.ndarray, n_steps: int,
                    n_neurons: int, negative: np.ndarray) -> None:
        # bin so neither side exceeds MAX_IMAGE_SIDE; a bin is lit when any spike falls in it
        step_bin = max(1, math.ceil(n_steps / MAX_IMAGE_SIDE))
        neuron_bin = max(1, math.ceil(n_neurons / MAX_IMAGE_SIDE))
        height, width = math.ceil(n_neurons / neuron_bin), math.ceil(n_steps / step_bin)
        # one flat index per spike and one scatter: ~6× faster than image[rows, columns]
        # (500 k spikes must redraw at >= 60 fps, benchmarks/gui_responsiveness.py)
        rows = neurons.astype(np.int64, copy=False)
        columns = times.astype(np.int64, copy=False)
        if neuron_bin > 1:
            rows = rows // neuron_bin
        if step_bin > 1:
            columns = columns // step_bin
        flat = rows * width
        flat += columns
        image = np.zeros(height * width, dtype=np.uint8)
        image[flat] = 1
        if negative.any():
            image[flat[negative]] = 2  # a bin with any −1 spike shows it
        image = image.reshape(height, width)
        self._image.setImage(image, autoLevels=False, levels=(0, 2))
        self._image.setRect(QRectF(0, 0, image.shape[1] * step_bin,
                                   image.shape[0] * neuron_bin))
        self._image.setVisible(True)

    def _set_separators(self, segments: Sequence[tuple[str, int, int]]) -> None:
        # The same layers on every live probe: keep the lines. Rebuilding a labelled
        # InfiniteLine per layer was ~20 % of the GUI thread's time while training.
        key = [(name, first) for name, first, _rows in segments]
        if key == self._separator_key:
            return
        self._separator_key = key
        plot = self.plot_widget.getPlotItem()
        for line in self._separators:
            plot.removeItem(line)
        self._separators = []
        for name, first, _rows in segments:
            line = pg.InfiniteLine(pos=first, angle=0, pen=pg.mkPen((128, 128, 128), width=1),
                                   label=name, labelOpts={"position": 0.98, "anchors": [(1, 1),
                                                                                        (1, 1)]})
            plot.addItem(line)
            self._separators.append(line)

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        ternary = bool((self._values < 0).any())
        # a "value" column (+1 / −1) only when there is a −1 to tell apart
        header = ["layer", "neuron", "time_step"] + (["value"] if ternary else [])
        if not self._segments:
            return header, []
        firsts = np.array([first for _name, first, _rows in self._segments])
        names = [name for name, _first, _rows in self._segments]
        which = np.searchsorted(firsts, self._neurons, side="right") - 1
        order = np.lexsort((self._times, self._neurons))
        rows = ((names[which[i]], int(self._neurons[i] - firsts[which[i]]), int(self._times[i]),
                 *([int(self._values[i])] if ternary else []))
                for i in order)
        return header, rows
