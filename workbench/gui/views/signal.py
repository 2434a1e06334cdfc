"""The Signal view: a sequence sample as each signal encoder sees it.

One row per encoder (the project's first): the raw waveform of the chosen channel, the
encoder's reconstruction over it, the threshold band (the last reconstructed value ± the
threshold in force, for encoders that say their threshold: the signal leaving the band is what
fires a delta encoder) and, below, the ternary spike train (+1 and −1 in the raster's two
colours). Each row's title gives the encoder's figures over the sample's own length (see
:mod:`workbench.core.runs.signal`, which computes them).

The encodings depend on the sample and the encoders, not on the network's weights: a live probe
of the same sample during training changes only the title, and costs no encoding or redraw. A new
sample is encoded on a worker thread (a long signal takes seconds through a per-step encoder:
~1.7–2.6 s for 4000 steps through four encoders), so the window never waits for it.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.errors import WorkbenchError
from workbench.gui.views._common import HintStack, PlotViewMixin, StepAxis, probe_title
from workbench.gui.views.export import ExportMixin

if TYPE_CHECKING:  # the core module loads torch; the GUI imports it when it first computes
    from workbench.core.runs.signal import EncodedSignal

log = logging.getLogger(__name__)

EMPTY_HINT = "No signal yet — probe a test sample"
#: how often the view looks for the worker's encodings
POLL_MS = 50
#: the signal plot and the spike strip of one encoder get at least this much height
ROW_MIN_HEIGHT = 230
SPIKE_STRIP_HEIGHT = 76
#: a longer threshold band is drawn as the envelope of this many bins (filling a band of 4000
#: steps took ~160 ms of a 220 ms repaint of four rows)
MAX_BAND_POINTS = 600
#: left axes of equal width, so every row's time steps line up
AXIS_WIDTH = 60
Y_LABEL = "value (data units)"
# mid-tones that read on the light and the dark plot background; spikes in the raster's colours
_RAW_COLOUR = (44, 160, 44)
_RECONSTRUCTION_COLOUR = (148, 103, 189)
_BAND_COLOUR = (128, 128, 128)
_UP_COLOUR = (70, 150, 255)
_DOWN_COLOUR = (240, 110, 50)


def figures_text(encoded: EncodedSignal) -> str:
    """"37 spikes · 771.0 spikes/ch/1000 samples · MSE 0.0123 · SNR 18.2 dB"."""
    parts = [f"{encoded.spike_count} spikes",
             f"{encoded.spikes_per_channel_per_1000:.1f} spikes/ch/1000 samples"]
    if encoded.mse is None:
        parts.append("no reconstruction")
    else:
        parts += [f"MSE {encoded.mse:.3g}", f"SNR {_decibels(encoded.snr_db)}"]
    return " · ".join(parts)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _decibels(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "— dB"
    return "∞ dB" if math.isinf(value) and value > 0 else f"{value:.1f} dB"


def threshold_band(reconstruction: np.ndarray, thresholds: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: the value reconstructed before each step ± the threshold in force at it
    (step 0 has no step before it: its own value)."""
    before = np.concatenate([reconstruction[:1], reconstruction[:-1]])
    steps = min(before.size, thresholds.size)
    return before[:steps] - thresholds[:steps], before[:steps] + thresholds[:steps]


def band_envelope(low: np.ndarray, high: np.ndarray, max_points: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, low, high)`` with at most ``max_points`` points: past that, each bin of
    consecutive steps keeps its lowest low and highest high (the band's outline survives)."""
    size = max(1, math.ceil(low.size / max_points))
    if size == 1:
        return np.arange(low.size, dtype=np.float64), low, high
    pad = (-low.size) % size  # the last bin may be short: pad it with its own edge values
    lows = np.pad(low, (0, pad), mode="edge").reshape(-1, size).min(axis=1)
    highs = np.pad(high, (0, pad), mode="edge").reshape(-1, size).max(axis=1)
    return np.arange(lows.size, dtype=np.float64) * size, lows, highs


def _banded(encoded: EncodedSignal) -> bool:
    """Whether a row draws a band: it needs the reconstruction and the thresholds."""
    return encoded.thresholds is not None and encoded.reconstruction is not None


def _band_pen() -> Any:
    return pg.mkPen(_BAND_COLOUR, width=1, style=Qt.PenStyle.DashLine)


def _pairs(values: np.ndarray, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertical ticks ``(t, 0) -> (t, sign)`` at the steps whose spike is ``sign``."""
    steps = np.flatnonzero(values == sign).astype(np.float64)
    x = np.repeat(steps, 2)
    y = np.zeros(x.size)
    y[1::2] = sign
    return x, y


@functools.cache
def _encoding_pool() -> ThreadPoolExecutor:
    """One worker thread for every Signal view: encodings queue rather than compete for the
    cores a training run uses."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="signal-view")


def _on_a_light_thread(job: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        from workbench.core.build.compute import keep_calling_thread_light

        keep_calling_thread_light()  # one torch thread: a training run keeps the cores
        return job()

    return run


@dataclass
class _Row:
    """The plot items of one encoder, built once and refilled with ``setData``."""

    plot: pg.PlotItem
    strip: pg.PlotItem
    raw: pg.PlotDataItem
    reconstruction: pg.PlotDataItem
    band_low: pg.PlotDataItem
    band_high: pg.PlotDataItem
    band: pg.FillBetweenItem
    up: pg.PlotCurveItem
    down: pg.PlotCurveItem
    figures: str = ""


class SignalView(QWidget, PlotViewMixin, ExportMixin):
    """Raw signal, reconstruction, threshold band and spikes of every signal encoder, for one
    channel of the probed test sample.

    ``session`` returns the open project's session (the window's); the view encodes the probed
    sample with :func:`~workbench.core.runs.signal.compare_encoders`. Scripts and tests may
    also hand it encodings with :meth:`set_encodings`.
    """

    def __init__(self, session: Callable[[], Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._encodings: list[EncodedSignal] = []
        self._rows: list[_Row] = []
        self._row_key: list[str] = []
        self._probe_key: tuple[Any, ...] | None = None
        self._pending: Future | None = None  # the worker's encodings of self._probe_key
        self._collect_timer = QTimer(self, interval=POLL_MS)
        self._collect_timer.timeout.connect(self._collect)
        self._band_key = pg.PlotDataItem(pen=_band_pen())  # the legend's sample, never drawn

        self.title_label = QLabel()
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.channel_spin = QSpinBox(minimum=0, maximum=0)
        self.channel_spin.setToolTip("Which channel of the signal to show")
        self.channel_spin.valueChanged.connect(self._on_channel_spin_value_changed)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(QLabel("Channel:"))
        header.addWidget(self.channel_spin)
        header.addWidget(self._make_export_button())

        self.plot_widget = pg.GraphicsLayoutWidget()
        self._add_export_to_plot_menu(self.plot_widget)
        # many encoders scroll rather than squeeze each row below readability
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.plot_widget)
        self._stack = HintStack(scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self._stack, 1)
        self._stack.show_hint(EMPTY_HINT)

    # -- data in -------------------------------------------------------------------------------
    def set_probe(self, item: dict[str, Any]) -> None:
        """A probe buffer item: encode its sample with every signal encoder, on the worker
        thread, when the sample or the project's dataset or encoder changed since the last."""
        self.title_label.setText(probe_title(item))
        session = self._session() if self._session is not None else None
        index = item.get("index")
        if session is None or index is None:
            return
        project = session.project
        key = (id(session), int(index), repr(project.dataset), repr(project.encoder))
        if key == self._probe_key:
            return  # the same sample through the same encoders: nothing new to draw
        self._probe_key = key
        from workbench.core.runs.signal import prepare_comparison  # torch is loaded by now

        if self._pending is not None:
            self._pending.cancel()  # superseded (a no-op once it runs: its result is dropped)
        try:
            job = prepare_comparison(session, int(index))
        except WorkbenchError as exc:
            self._pending = None
            self._show_hint(_sentence(exc.message))
            return
        if not self._encodings:
            self._stack.show_hint(f"Encoding test sample {index}…")
        self._pending = _encoding_pool().submit(_on_a_light_thread(job))
        self._collect_timer.start()

    def wait_for_encodings(self, timeout: float = 30.0) -> None:
        """Block until the sample being encoded is drawn (for scripts and tests)."""
        if self._pending is not None:
            self._pending.exception(timeout)  # waits; raises TimeoutError if it is too slow
            self._collect()

    def set_encodings(self, encodings: Sequence[EncodedSignal]) -> None:
        """Draw these encodings of one sample (the same signal in each), the first on top."""
        self._encodings = list(encodings)
        if not self._encodings:
            self._show_hint(EMPTY_HINT)
            return
        channels = self._encodings[0].signal.shape[0]
        blocked = self.channel_spin.blockSignals(True)
        self.channel_spin.setMaximum(channels - 1)  # clamps the value
        self.channel_spin.blockSignals(blocked)
        key = [f"{e.encoder}{'*' if e.is_project else ''}" for e in self._encodings]
        if key != self._row_key:
            self._build_rows()
            self._row_key = key
        self._redraw()
        self._stack.show_plot()

    def clear(self) -> None:
        self.title_label.clear()
        self._probe_key = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._show_hint(EMPTY_HINT)

    def _collect(self) -> None:
        """Draw the worker's encodings once they are done."""
        future = self._pending
        if future is None:
            self._collect_timer.stop()
            return
        if not future.done():
            return
        self._pending = None
        self._collect_timer.stop()
        if future.cancelled():
            return
        try:
            encodings = future.result()
        except WorkbenchError as exc:  # a plugin's encoder failed: its message names it
            self._show_hint(_sentence(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not take the view down
            log.error("the signal view could not encode the sample: %s", exc)
            self._show_hint(f"Could not encode the sample: {exc}")
            return
        self.set_encodings(encodings)

    # -- what the user sees --------------------------------------------------------------------
    def channel(self) -> int:
        return self.channel_spin.value()

    def set_channel(self, channel: int) -> None:
        self.channel_spin.setValue(channel)

    def encoders(self) -> list[str]:
        """The encoder ids of the rows, top to bottom."""
        return [encoded.encoder for encoded in self._encodings]

    def figures(self, row: int) -> str:
        """The figures printed in row ``row``'s title."""
        return self._rows[row].figures

    def row_title(self, row: int) -> str:
        """Row ``row``'s title as drawn: the encoder's name and its figures."""
        return self._rows[row].plot.titleLabel.text

    def curve(self, row: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` drawn in row ``row``: ``"raw"``, ``"reconstruction"``, ``"band_low"``,
        ``"band_high"``, ``"spikes_up"`` or ``"spikes_down"`` (the tick pairs)."""
        items = {"spikes_up": "up", "spikes_down": "down"}
        x, y = getattr(self._rows[row], items.get(name, name)).getData()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    # -- drawing -------------------------------------------------------------------------------
    def _show_hint(self, text: str) -> None:
        self._encodings = []
        self._stack.show_hint(text)

    def _on_channel_spin_value_changed(self, _value: int) -> None:
        if self._encodings:
            self._redraw()

    def _build_rows(self) -> None:
        """One signal plot and one spike strip per encoder, all on the top plot's time axis."""
        layout = self.plot_widget.ci
        layout.clear()
        self._rows = []
        first: pg.PlotItem | None = None
        for i, _encoded in enumerate(self._encodings):
            plot = layout.addPlot(row=2 * i, col=0)
            strip = layout.addPlot(row=2 * i + 1, col=0,
                                   axisItems={"bottom": StepAxis("bottom")})
            first = first or plot
            for item in (plot, strip):
                item.getAxis("left").setWidth(AXIS_WIDTH)
                item.setDownsampling(auto=True, mode="peak")
                if item is not first:
                    item.setXLink(first)
            plot.setLabel("left", Y_LABEL)
            plot.hideAxis("bottom")  # the strip below counts the steps
            if i == len(self._encodings) - 1:  # one axis title for all: the x axes are one
                strip.setLabel("bottom", "time step")
            # the ticks say what the strip is; a title would collide with the plot's above
            strip.getAxis("left").setTicks([[(-1, "\u22121"), (1, "+1")]])
            strip.setYRange(-1.3, 1.3, padding=0)
            strip.setMouseEnabled(y=False)
            strip.setFixedHeight(SPIKE_STRIP_HEIGHT)
            self._rows.append(self._row_items(plot, strip, legend=i == 0))
        self.plot_widget.setMinimumHeight(ROW_MIN_HEIGHT * len(self._encodings))

    def _row_items(self, plot: pg.PlotItem, strip: pg.PlotItem, *, legend: bool) -> _Row:
        if legend:  # one key, on the top row: the rows below draw the same curves
            plot.addLegend(offset=(-10, 5), colCount=5)  # one line
        band_low = pg.PlotDataItem(pen=_band_pen())
        band_high = pg.PlotDataItem(pen=_band_pen())
        band = pg.FillBetweenItem(band_low, band_high, brush=pg.mkBrush(*_BAND_COLOUR, 50))
        raw = pg.PlotDataItem(pen=pg.mkPen(_RAW_COLOUR, width=1.5), name="raw signal")
        reconstruction = pg.PlotDataItem(pen=pg.mkPen(_RECONSTRUCTION_COLOUR, width=1.5),
                                         name="reconstruction")
        for item in (band, band_low, band_high, raw, reconstruction):
            plot.addItem(item)
        up = pg.PlotCurveItem(pen=pg.mkPen(_UP_COLOUR, width=2), connect="pairs")
        down = pg.PlotCurveItem(pen=pg.mkPen(_DOWN_COLOUR, width=2), connect="pairs")
        strip.addItem(up)
        strip.addItem(down)
        if legend and plot.legend is not None:
            plot.legend.addItem(up, "+1 spike")
            plot.legend.addItem(down, "\u22121 spike")
        return _Row(plot, strip, raw, reconstruction, band_low, band_high, band, up, down)

    def _redraw(self) -> None:
        channel = min(self.channel(), self._encodings[0].signal.shape[0] - 1)
        length = self._encodings[0].signal.shape[1]
        steps = np.arange(length)
        empty = np.zeros(0)
        for row, encoded in zip(self._rows, self._encodings, strict=True):
            row.raw.setData(steps, encoded.signal[channel].astype(np.float64))
            rebuilt = encoded.reconstruction
            row.reconstruction.setData(*((steps, rebuilt[channel].astype(np.float64))
                                         if rebuilt is not None else (empty, empty)))
            if rebuilt is not None and encoded.thresholds is not None:
                low, high = threshold_band(rebuilt[channel].astype(np.float64),
                                           encoded.thresholds[:, channel].astype(np.float64))
                # a fill's cost grows with its outline: a long band is drawn as its envelope
                at, low, high = band_envelope(low, high, MAX_BAND_POINTS)
                row.band_low.setData(at, low)
                row.band_high.setData(at, high)
            else:
                row.band_low.setData(empty, empty)
                row.band_high.setData(empty, empty)
            for item in (row.band, row.band_low, row.band_high):
                item.setVisible(_banded(encoded))
            spikes = encoded.spikes[:, channel]
            row.up.setData(*_pairs(spikes, 1))
            row.down.setData(*_pairs(spikes, -1))
            owner = " (project)" if encoded.is_project else ""
            row.figures = figures_text(encoded)
            row.plot.setTitle(f"{encoded.name}{owner}: {row.figures}", size="9pt")
            row.plot.setToolTip(self._channel_figures(encoded, channel))
        self._rows[0].plot.setXRange(0, max(length - 1, 1), padding=0.01)  # the rows follow
        self._sync_band_key(any(_banded(encoded) for encoded in self._encodings))

    def _sync_band_key(self, banded: bool) -> None:
        """The band's key in the top row's legend while any row draws a band. It stands for
        every row's band, so it is an item of its own: keyed to a row's hidden band, it would
        show pyqtgraph's "hidden" sample."""
        legend = self._rows[0].plot.legend
        if legend is None:
            return
        listed = legend.getLabel(self._band_key) is not None
        if banded and not listed:
            legend.addItem(self._band_key, "threshold band")
        elif not banded and listed:
            legend.removeItem(self._band_key)

    @staticmethod
    def _channel_figures(encoded: EncodedSignal, channel: int) -> str:
        spikes = int(np.count_nonzero(encoded.spikes[:, channel]))
        text = f"{encoded.encoder}, channel {channel}: {spikes} spikes"
        if encoded.mse_per_channel is not None and encoded.snr_db_per_channel is not None:
            text += (f", MSE {encoded.mse_per_channel[channel]:.3g}, "
                     f"SNR {_decibels(float(encoded.snr_db_per_channel[channel]))}")
        return text

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        from workbench.core.runs.signal import CSV_HEADER, signal_rows

        return list(CSV_HEADER), signal_rows(self._encodings, channels=[self.channel()])
