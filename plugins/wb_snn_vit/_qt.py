"""The attention view: where a spiking transformer looks, per head and time step.

Two kinds of attention node feed it (docs/snn_vit.md describes both):

* ``"sssa"`` — Saccadic Spike Self-Attention: a binary saccade mask ``S`` and the salience
  ``P``, both ``[T, B, h, N]``. Row 1 of the grid tints the tokens the head looks at on the
  probed input image; row 2 is the salience as a heat map.
* ``"ssa"`` — Spikformer's spiking self-attention: an ``N x N`` map per head and step,
  ``[T, B, h, N, N]``. One row: the attention of the chosen query token over all key tokens.

Tokens form a square grid (``side = isqrt(N)``, row-major); a non-square N is laid out as one
row of N tokens. A colour bar beside the heat maps gives their value range; over each head's
column an SSSA layer reads "k of N tokens selected" at the step shown. Drawing: every map is an ``ImageItem`` with fixed
levels (per layer, over all steps and heads, so frames compare) and a colormap LUT. The view
redraws only when asked (a probe, the slider, the timer at ~3 steps/s), well under 10 Hz.

This module is the plugin's only Qt code; it imports nothing from the rest of the plugin so
the plugin's model code stays importable without Qt.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QIODevice, QRectF, Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from workbench.gui.kit import (
    BufferPoller,
    ExportMixin,
    LatestBuffer,
    PlotViewMixin,
    assemble_view,
    export_plot,
    layer_header,
    probe_title,
    to_numpy,
)

log = logging.getLogger(__name__)

__all__ = ["EMPTY_HINT", "AttentionView"]

EMPTY_HINT = "No attention maps — add an SSSA or SSA block and probe a sample"
#: time between two frames while playing, in ms (~3 steps/s; also the GIF frame duration)
FRAME_INTERVAL_MS = 300
#: colormap of the heat maps (salience, attention)
COLORMAP = "viridis"
#: colour and opacity of a selected token drawn over the input image (an orange that reads
#: on black, white and grey pixels alike)
MASK_TINT = np.array([255.0, 140.0, 0.0])
MASK_ALPHA = 0.55
#: the overlay canvas is the lcm of image and token-grid sides, unless that grows past this
_MAX_CANVAS_SIDE = 512
#: an unshown view has no laid-out size; grabbing it at 0 px gives an empty picture
_FALLBACK_SIZE = (900, 520)
_EXPORT_FILTERS = ("PNG image (*.png);;Animated GIF (*.gif);;SVG image (*.svg);;"
                   "CSV data (*.csv)")
_QUERY_PEN = pg.mkPen((230, 40, 40), width=2)


class MapsError(ValueError):
    """A node's maps that cannot be drawn; the message is shown as the view's hint."""


@dataclass
class _Layer:
    """One attention node's maps, as NumPy arrays of the probed sample (batch dim dropped)."""

    node_id: str
    kind: str  # "sssa" or "ssa"
    steps: int
    heads: int
    tokens: int
    rows: int  # token grid
    cols: int
    mask: np.ndarray | None = None  # [T, h, N] 0/1 (sssa)
    salience: np.ndarray | None = None  # [T, h, N] (sssa)
    attention: np.ndarray | None = None  # [T, h, N, N] (ssa)
    levels: tuple[float, float] = (0.0, 1.0)  # of the heat maps, fixed over t and heads
    error: str = ""
    notes: list[str] = field(default_factory=list)


def token_grid(n_tokens: int) -> tuple[int, int]:
    """``(rows, cols)`` of the token grid: a square when N is one, else one row of N."""
    side = math.isqrt(max(n_tokens, 0))
    if side * side == n_tokens and side > 0:
        return side, side
    return 1, max(n_tokens, 0)


def _shape(array: np.ndarray) -> str:
    return "[" + ", ".join(str(d) for d in array.shape) + "]"


def _as_float(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(to_numpy(values), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MapsError(f"{what} is not an array ({type(values).__name__}): {exc}") from exc
    return np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)


def _drop_batch(array: np.ndarray, ndim: int, what: str, expected: str) -> np.ndarray:
    """``[T, B, ...]`` -> ``[T, ...]`` of the first sample; ``[T, ...]`` is taken as is."""
    if array.ndim == ndim:
        if array.shape[1] == 0:
            raise MapsError(f"{what} has no sample: shape {_shape(array)}")
        return array[:, 0]
    if array.ndim == ndim - 1:
        return array
    raise MapsError(f"{what} has shape {_shape(array)}, expected {expected}")


def _levels(array: np.ndarray) -> tuple[float, float]:
    if array.size == 0:
        return 0.0, 1.0
    low, high = float(array.min()), float(array.max())
    if not high > low:  # a constant map would divide by zero in the LUT
        high = low + 1.0
    return low, high


def parse_maps(node_id: str, maps: Any) -> _Layer:
    """Check and convert one node's maps; raises :class:`MapsError` naming what is wrong."""
    if not isinstance(maps, dict):
        raise MapsError(f"maps of {node_id} must be a dict, got {type(maps).__name__}")
    kind = str(maps.get("kind", "")).lower()
    if not kind:  # infer it from the keys, as a hand-made item may omit it
        kind = "ssa" if "attention" in maps else "sssa" if "mask" in maps else ""
    if kind == "sssa":
        if maps.get("mask") is None:
            raise MapsError(f"SSSA maps of {node_id} have no 'mask'")
        mask_given = _as_float(maps["mask"], f"mask of {node_id}")
        mask = _drop_batch(mask_given, 4, f"mask of {node_id}", "[T, B, h, N]")
        steps, heads, tokens = mask.shape
        notes = []
        if maps.get("salience") is None:
            salience = np.zeros_like(mask)
            notes.append("no salience given")
        else:
            given = _as_float(maps["salience"], f"salience of {node_id}")
            salience = _drop_batch(given, 4, f"salience of {node_id}", "[T, B, h, N]")
            if salience.shape != mask.shape:
                raise MapsError(f"salience of {node_id} has shape {_shape(given)}, "
                                f"but its mask has {_shape(mask_given)}")
        if steps * heads * tokens == 0:
            raise MapsError(f"mask of {node_id} is empty: shape {_shape(mask_given)}")
        rows, cols = token_grid(tokens)
        return _Layer(node_id, "sssa", steps, heads, tokens, rows, cols,
                      mask=(mask > 0.5).astype(np.float64), salience=salience,
                      levels=_levels(salience), notes=notes)
    if kind == "ssa":
        if maps.get("attention") is None:
            raise MapsError(f"SSA maps of {node_id} have no 'attention'")
        given = _as_float(maps["attention"], f"attention of {node_id}")
        attention = _drop_batch(given, 5, f"attention of {node_id}", "[T, B, h, N, N]")
        steps, heads, queries, keys = attention.shape
        if queries != keys:
            raise MapsError(f"attention of {node_id} has shape {_shape(given)}: "
                            "its last two dims (query, key) differ")
        if steps * heads * keys == 0:
            raise MapsError(f"attention of {node_id} is empty: shape {_shape(given)}")
        rows, cols = token_grid(keys)
        return _Layer(node_id, "ssa", steps, heads, keys, rows, cols, attention=attention,
                      levels=_levels(attention))
    raise MapsError(f"maps of {node_id} have kind {maps.get('kind')!r}; "
                    "expected 'sssa' or 'ssa'")


def input_gray(values: Any) -> np.ndarray:
    """The probe input ``[C, H, W]`` (or ``[H, W]``, ``[1, C, H, W]``) as gray ``[H, W]`` in [0, 1].

    Channels are averaged; values outside [0, 1] are rescaled to it. Raises ``ValueError``
    for any other shape.
    """
    array = _as_float(values, "input")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        array = array.mean(axis=0) if array.shape[0] else np.zeros(array.shape[1:])
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"input has shape {_shape(array)}, expected [C, H, W]")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return array


def _canvas_side(image: int, tokens: int) -> int:
    """Pixels along one side of the overlay: both the image and the token grid fit evenly."""
    both = image * tokens // math.gcd(image, tokens)
    return both if both <= _MAX_CANVAS_SIDE else max(image, tokens)


def _resample(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Nearest-neighbour resampling of a 2-D array to ``rows x cols``."""
    r = (np.arange(rows) * array.shape[0]) // rows
    c = (np.arange(cols) * array.shape[1]) // cols
    return array[r][:, c]


def mask_overlay(gray: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """RGBA uint8 picture: ``gray`` (or black) with the tokens of ``mask`` tinted.

    ``mask`` is the token grid ``[rows, cols]``; it is upsampled to the image (or the image to
    it) so each token covers its patch.
    """
    if gray is None:
        gray = np.zeros(mask.shape)
    rows = _canvas_side(gray.shape[0], mask.shape[0])
    cols = _canvas_side(gray.shape[1], mask.shape[1])
    rgb = np.repeat(_resample(gray, rows, cols)[..., None] * 255.0, 3, axis=2)
    selected = _resample(mask, rows, cols) > 0.5
    rgb[selected] = (1.0 - MASK_ALPHA) * rgb[selected] + MASK_ALPHA * MASK_TINT
    rgba = np.empty((rows, cols, 4), dtype=np.uint8)
    rgba[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    rgba[..., 3] = 255
    return rgba


@dataclass
class _Panel:
    """The pictures of one head's column."""

    main: pg.ImageItem
    salience: pg.ImageItem | None = None
    marker: pg.ScatterPlotItem | None = None


class AttentionView(QWidget, PlotViewMixin, ExportMixin):
    """Saccade masks and salience (SSSA) or attention rows (SSA) of the probed sample.

    Parameters
    ----------
    frame_interval_ms : int
        Time between two steps while playing, in ms; also each GIF frame's duration.
    """

    def __init__(self, parent: QWidget | None = None, *,
                 frame_interval_ms: int = FRAME_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.frame_interval_ms = int(frame_interval_ms)
        self._layers: dict[str, _Layer] = {}
        self._errors: dict[str, str] = {}
        self._gray: np.ndarray | None = None
        self._structure: tuple[Any, ...] | None = None
        self._panels: list[_Panel] = []
        self._shown: list[np.ndarray] = []
        self._shown_salience: list[np.ndarray] = []
        self._title = ""
        self._notes: list[str] = []
        self._lut = pg.colormap.get(COLORMAP).getLookupTable(0.0, 1.0, 256)
        self._poller = BufferPoller(self.set_probe, self.clear, self)
        self._timer = QTimer(self)
        self._timer.setInterval(self.frame_interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)

        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Step through the time steps, looping")
        self.play_button.toggled.connect(self._on_play_button_toggled)
        self.step_slider = QSlider(Qt.Orientation.Horizontal)
        self.step_slider.setRange(0, 0)
        self.step_slider.setPageStep(1)
        self.step_slider.setMinimumWidth(120)
        self.step_slider.setToolTip("Time step (0-based)")
        self.step_slider.valueChanged.connect(self._on_step_slider_changed)
        self.step_label = QLabel("t = 0 / 0")
        self.query_label = QLabel("Query:")
        self.query_spin = QSpinBox()
        self.query_spin.setRange(0, 0)
        self.query_spin.setToolTip("Query token whose attention row is shown (row-major)")
        self.query_spin.valueChanged.connect(self._on_query_spin_changed)
        header = layer_header(self, self.play_button, self.step_slider, self.step_label,
                              self.query_label, self.query_spin, tip="Attention node to show")
        self.export_action.setToolTip("Save the view as PNG, SVG or an animated GIF over all "
                                      "time steps, or its maps as CSV")

        self._colour_bar: pg.ColorBarItem | None = None
        # each head's column title; an SSSA one says "head 0: 5 of 16 tokens selected" (in
        # the grid, not a widget row: a row appearing would resize the dock on a project open)
        self._head_labels: list[pg.LabelItem] = []

        self.plot_widget = pg.GraphicsLayoutWidget()
        self._stack = assemble_view(self, header)
        self.clear()

    # -- data in -------------------------------------------------------------------------------
    def set_probe(self, item: Any) -> None:
        """Show a probe item: ``{"input", "maps", "label", "predicted", "index"}``.

        Never raises: maps that cannot be drawn put a hint naming the problem in their place.
        """
        try:
            self._set_probe(item)
        except Exception as exc:  # an odd item must not take the window down
            log.warning("attention view cannot show a probe item: %s", exc, exc_info=True)
            self._show_hint(f"Cannot show the attention maps: {exc}")

    def _set_probe(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.clear()
            self._show_hint(f"Cannot show the attention maps: the probe item is a "
                            f"{type(item).__name__}, not a dict")
            return
        maps = item.get("maps")
        notes = []
        self._gray = None
        if item.get("input") is not None:
            try:
                self._gray = input_gray(item["input"])
            except ValueError as exc:
                notes.append(f"input not shown: {exc}")
        self._title = probe_title(item)
        self._layers, self._errors = {}, {}
        if isinstance(maps, dict):
            for node_id, node_maps in maps.items():
                name = str(node_id)
                try:
                    self._layers[name] = parse_maps(name, node_maps)
                except MapsError as exc:
                    self._errors[name] = str(exc)
        elif maps is not None:
            self._errors[""] = (f"maps must be a dict of node id -> maps, "
                                f"got {type(maps).__name__}")
        self._notes = notes
        self._fill_layer_combo()
        self._redraw()

    def clear(self) -> None:
        """Forget the maps and show the empty-state hint."""
        self.pause()
        self._layers, self._errors, self._notes = {}, {}, []
        self._gray = None
        self._title = ""
        self._fill_layer_combo()
        self._redraw()

    # -- live updates --------------------------------------------------------------------------
    def attach(self, buffer: LatestBuffer, fps: float = 5) -> None:
        """Poll ``buffer`` (a probe buffer carrying attention maps) ``fps`` times a second."""
        self._poller.attach(buffer, fps)

    def detach(self) -> None:
        self._poller.detach()

    # -- what the user sees --------------------------------------------------------------------
    def layers(self) -> list[str]:
        """Node ids of the attention maps, in the combo's order."""
        return [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())]

    def layer(self) -> str:
        """The node shown now ("" when none)."""
        return self.layer_combo.currentText()

    def set_layer(self, node_id: str) -> None:
        index = self.layer_combo.findText(str(node_id))
        if index >= 0:
            self.layer_combo.setCurrentIndex(index)

    def kind(self) -> str:
        """``"sssa"``, ``"ssa"``, or "" when no drawable layer is shown."""
        layer = self._current()
        return layer.kind if layer else ""

    def step(self) -> int:
        return int(self.step_slider.value())

    def set_step(self, t: int) -> None:
        """Show time step ``t`` (clamped to 0..T-1)."""
        self.step_slider.setValue(int(t))

    def n_steps(self) -> int:
        """T of the current layer (0 when none)."""
        layer = self._current()
        return layer.steps if layer else 0

    def frame_count(self) -> int:
        """Frames of the animation: one per time step of the current layer."""
        return self.n_steps()

    def n_heads(self) -> int:
        layer = self._current()
        return layer.heads if layer else 0

    def grid_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the current layer's token grid."""
        layer = self._current()
        return (layer.rows, layer.cols) if layer else (0, 0)

    def query(self) -> int:
        return int(self.query_spin.value())

    def set_query(self, token: int) -> None:
        """Show the attention row of query ``token`` (SSA; clamped to 0..N-1)."""
        self.query_spin.setValue(int(token))

    def levels(self) -> tuple[float, float]:
        """The fixed levels of the current layer's heat maps (salience or attention)."""
        layer = self._current()
        return layer.levels if layer else (0.0, 1.0)

    def colour_bar_range(self) -> tuple[float, float] | None:
        """The value range the colour bar beside the heat maps shows (None: no bar)."""
        if self._colour_bar is None or self._stack.currentIndex() != 0:
            return None
        low, high = self._colour_bar.levels()
        return float(low), float(high)

    def selected_counts(self) -> list[tuple[int, int]]:
        """``(k, N)`` per head: tokens the saccade mask selects at the step shown (SSSA)."""
        layer = self._current()
        if layer is None or layer.mask is None:
            return []
        t = min(max(self.step(), 0), layer.steps - 1)
        return [(int(layer.mask[t, head].sum()), layer.tokens) for head in range(layer.heads)]

    def selection_text(self) -> str:
        """The heads' "k of N tokens selected" readouts, joined by " · " ("" when none)."""
        if self._stack.currentIndex() != 0 or not self.selected_counts():
            return ""
        return " · ".join(label.text for label in self._head_labels)

    def current_mask(self, head: int) -> np.ndarray:
        """The saccade mask ``[rows, cols]`` shown now for ``head`` (SSSA; empty otherwise)."""
        layer = self._current()
        if layer is None or layer.mask is None or not 0 <= head < layer.heads:
            return np.zeros((0, 0))
        return layer.mask[self.step(), head].reshape(layer.rows, layer.cols).copy()

    def current_salience(self, head: int) -> np.ndarray:
        """The salience ``[rows, cols]`` shown now for ``head`` (SSSA; empty otherwise)."""
        if 0 <= head < len(self._shown_salience):
            return self._shown_salience[head].copy()
        return np.zeros((0, 0))

    def current_image(self, head: int) -> np.ndarray:
        """The array in ``head``'s main panel now: RGBA uint8 (SSSA) or the float query row
        ``[rows, cols]`` (SSA)."""
        if 0 <= head < len(self._shown):
            return self._shown[head].copy()
        return np.zeros((0, 0))

    def play(self) -> None:
        """Step through the time steps on a timer, looping."""
        if self.frame_count() > 0:
            self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    def is_playing(self) -> bool:
        return self._timer.isActive()

    # -- slots ---------------------------------------------------------------------------------
    def _on_layer_combo_changed(self, _index: int) -> None:
        self._redraw()

    def _on_step_slider_changed(self, _value: int) -> None:
        self._update_step_label()
        self._draw_frame()

    def _on_query_spin_changed(self, _value: int) -> None:
        self._draw_frame()

    def _on_play_button_toggled(self, checked: bool) -> None:
        if checked and self.frame_count() > 0:
            self._timer.start()
        else:
            self._timer.stop()
            if checked:  # nothing to play: the button springs back
                blocked = self.play_button.blockSignals(True)
                self.play_button.setChecked(False)
                self.play_button.blockSignals(blocked)
        self.play_button.setText("Pause" if self._timer.isActive() else "Play")

    def _on_timer_timeout(self) -> None:
        steps = self.frame_count()
        if steps <= 0:
            self.pause()
            return
        self.set_step((self.step() + 1) % steps)

    # -- drawing -------------------------------------------------------------------------------
    def _current(self) -> _Layer | None:
        return self._layers.get(self.layer_combo.currentText())

    def _fill_layer_combo(self) -> None:
        wanted = [name for name in [*self._layers, *self._errors] if name]
        current = self.layers()
        if current == wanted:
            return
        chosen = self.layer_combo.currentText()
        blocked = self.layer_combo.blockSignals(True)
        try:
            self.layer_combo.clear()
            self.layer_combo.addItems(wanted)
            # keep the user's choice; else prefer a drawable layer over a broken one
            if chosen in wanted:
                self.layer_combo.setCurrentIndex(wanted.index(chosen))
            elif self._layers:
                self.layer_combo.setCurrentIndex(wanted.index(next(iter(self._layers))))
        finally:
            self.layer_combo.blockSignals(blocked)

    def _show_hint(self, text: str) -> None:
        self._stack.show_hint(text)
        self._shown, self._shown_salience = [], []

    def _redraw(self) -> None:
        """Rebuild the grid for the current layer when its layout changed, then draw a frame."""
        layer = self._current()
        self._set_title()
        is_ssa = layer is not None and layer.kind == "ssa"
        self.query_label.setVisible(is_ssa)
        self.query_spin.setVisible(is_ssa)
        self._set_ranges(layer)
        if layer is None:
            self.pause()
            error = self._errors.get(self.layer_combo.currentText()) or self._errors.get("")
            self._show_hint(f"Cannot show the attention maps: {error}" if error
                            else EMPTY_HINT)
            return
        structure = (layer.kind, layer.heads, layer.rows, layer.cols, layer.levels)
        if structure != self._structure:
            self._build_grid(layer)
            self._structure = structure
        self._stack.show_plot()
        self._draw_frame()

    def _set_title(self) -> None:
        layer = self._current()
        notes = list(self._notes)
        if layer is not None:
            notes += layer.notes
        parts = [self._title] if self._title else []
        if notes:
            parts.append("(" + "; ".join(notes) + ")")
        self.title_label.setText(" ".join(parts))

    def _set_ranges(self, layer: _Layer | None) -> None:
        """Slider and query ranges for ``layer``, keeping the step and query where they fit.

        Signals are blocked: the caller draws once afterwards.
        """
        for widget, top in ((self.step_slider, layer.steps - 1 if layer else 0),
                            (self.query_spin, layer.tokens - 1 if layer else 0)):
            blocked = widget.blockSignals(True)
            widget.setRange(0, max(top, 0))
            widget.blockSignals(blocked)
        self._update_step_label()

    def _update_step_label(self) -> None:
        self.step_label.setText(f"t = {self.step()} / {self.n_steps()}")

    def _build_grid(self, layer: _Layer) -> None:
        """One column per head: the mask over the input and the salience (SSSA), or the query
        row (SSA); every panel in token coordinates, row 0 at the top."""
        grid = self.plot_widget
        grid.clear()
        self._panels = []
        self._colour_bar = None
        self._head_labels = []
        low, high = layer.levels
        if layer.kind == "sssa":
            row_names = ["saccade mask", f"salience  [{low:.3g}, {high:.3g}]"]
        else:
            row_names = [f"attention of the query  [{low:.3g}, {high:.3g}]"]
        for row, name in enumerate(row_names, start=1):
            grid.addLabel(name, row=row, col=0, angle=-90)
        rect = QRectF(0, 0, layer.cols, layer.rows)
        for head in range(layer.heads):
            self._head_labels.append(grid.addLabel(f"head {head}", row=0, col=head + 1))
            items = []
            for row in range(len(row_names)):
                box = grid.addViewBox(row=row + 1, col=head + 1, lockAspect=True,
                                      invertY=True, enableMouse=False)
                image = pg.ImageItem(axisOrder="row-major")
                box.addItem(image)
                box.setRange(rect, padding=0.02)
                items.append((box, image))
            main_box, main = items[0]
            panel = _Panel(main=main)
            if layer.kind == "sssa":
                panel.salience = items[1][1]
                panel.salience.setLookupTable(self._lut)
            else:
                main.setLookupTable(self._lut)
                panel.marker = pg.ScatterPlotItem(symbol="s", size=0.9, pxMode=False,
                                                  pen=_QUERY_PEN, brush=None)
                panel.marker.setZValue(10)
                main_box.addItem(panel.marker)
            self._panels.append(panel)
        self._add_colour_bar(layer, len(row_names))

    def _add_colour_bar(self, layer: _Layer, heat_row: int) -> None:
        """A colour bar with the heat maps' value range, right of their row. Not interactive:
        the levels are fixed per layer so the frames compare."""
        low, high = layer.levels
        bar = pg.ColorBarItem(values=(low, high), colorMap=COLORMAP, interactive=False,
                              width=14, rounding=(high - low) / 1000, colorMapMenu=False,
                              label="salience" if layer.kind == "sssa" else "attention")
        bar.setImageItem([panel.salience if layer.kind == "sssa" else panel.main
                          for panel in self._panels])
        self.plot_widget.addItem(bar, row=heat_row, col=layer.heads + 1)
        self._colour_bar = bar

    def _draw_frame(self) -> None:
        layer = self._current()
        if layer is None or not self._panels:
            return
        t = min(max(self.step(), 0), layer.steps - 1)
        rect = QRectF(0, 0, layer.cols, layer.rows)
        shown, shown_salience = [], []
        for head, panel in enumerate(self._panels[:layer.heads]):
            if layer.kind == "sssa":
                assert layer.mask is not None and layer.salience is not None
                mask = layer.mask[t, head].reshape(layer.rows, layer.cols)
                picture = mask_overlay(self._gray, mask)
                panel.main.setImage(picture, autoLevels=False, levels=(0, 255))
                salience = layer.salience[t, head].reshape(layer.rows, layer.cols)
                assert panel.salience is not None
                panel.salience.setImage(salience, autoLevels=False, levels=layer.levels)
                panel.salience.setRect(rect)
                shown_salience.append(salience)
            else:
                assert layer.attention is not None and panel.marker is not None
                query = min(self.query(), layer.tokens - 1)
                picture = layer.attention[t, head, query].reshape(layer.rows, layer.cols)
                panel.main.setImage(picture, autoLevels=False, levels=layer.levels)
                panel.marker.setData([query % layer.cols + 0.5], [query // layer.cols + 0.5])
            panel.main.setRect(rect)
            shown.append(picture)
        self._shown, self._shown_salience = shown, shown_salience
        self._update_selection()

    def _update_selection(self) -> None:
        counts = self.selected_counts()
        for head, label in enumerate(self._head_labels):
            if head < len(counts):
                label.setText(f"head {head}: {counts[head][0]} of {counts[head][1]} tokens "
                              "selected")
            else:
                label.setText(f"head {head}")

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _grab(self) -> Any:
        """The whole view (header and grid) as a QImage, laid out even when never shown."""
        if not self.isVisible() and (self.width() < 50 or self.height() < 50
                                     or not self.testAttribute(Qt.WidgetAttribute.WA_Resized)):
            self.resize(*_FALLBACK_SIZE)
        layout = self.layout()
        if layout is not None:
            layout.activate()
        return self.grab().toImage()

    def export_image(self, path: str | Path) -> Path:
        """The whole view as PNG (a grab of the widget); ``.svg`` writes the grid as vectors."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            return export_plot(self.plot_widget, path)
        if suffix != ".png":
            raise ValueError(f"cannot export an image as {suffix or 'a file without suffix'!r}; "
                             "use .png, .svg or .gif")
        if not self._grab().save(str(path), "PNG"):
            raise OSError(5, f"cannot write {path}: the PNG writer failed", str(path))
        return path

    def export_gif(self, path: str | Path) -> Path:
        """An animated GIF over all time steps of the current layer, looping forever.

        Raises ``ValueError`` when there is nothing to animate and ``OSError`` naming the path
        when the file cannot be written.
        """
        from PIL import Image  # only exporting needs Pillow

        path = Path(path)
        steps = self.frame_count()
        if steps <= 0:
            raise ValueError("no attention maps to animate")
        was_playing, step = self.is_playing(), self.step()
        self.pause()
        frames = []
        try:
            for t in range(steps):
                self.set_step(t)
                buffer = QBuffer()
                buffer.open(QIODevice.OpenModeFlag.WriteOnly)
                self._grab().save(buffer, "PNG")
                frame = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
                frames.append(frame)
        finally:
            self.set_step(step)
            if was_playing:
                self.play()
        try:
            # disposal=1 and distinct frames: Pillow merges identical consecutive frames, but
            # the "t = k / T" label differs on every one, so the GIF keeps T frames
            frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                           duration=self.frame_interval_ms, loop=0, disposal=1)
        except OSError as exc:
            raise OSError(exc.errno or 5, f"cannot write {path}: {exc.strerror or exc}",
                          str(path)) from exc
        return path

    def export(self, path: str | Path) -> Path:
        """Export by suffix: ``.csv`` the maps, ``.gif`` the animation, else the picture."""
        if Path(path).suffix.lower() == ".gif":
            return self.export_gif(path)
        return super().export(path)

    def _on_export_triggered(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export", "", _EXPORT_FILTERS)
        if not path:
            return
        if not Path(path).suffix:
            lowered = chosen.lower()
            path += next((s for s in (".csv", ".gif", ".svg") if s[1:] in lowered), ".png")
        try:
            self.export(path)
        except (OSError, ValueError) as exc:
            log.warning("export failed: %s", exc)
            QMessageBox.warning(self, "Export failed", str(exc))

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        """Every step, head and token of the current layer: mask and salience (SSSA), or the
        chosen query's attention row (SSA, kind ``attention[q=K]``)."""
        header = ["layer", "kind", "t", "head", "token", "value"]
        layer = self._current()
        if layer is None:
            return header, []
        if layer.kind == "sssa":
            assert layer.mask is not None and layer.salience is not None
            series = [("mask", layer.mask), ("salience", layer.salience)]
        else:
            assert layer.attention is not None
            query = min(self.query(), layer.tokens - 1)
            series = [(f"attention[q={query}]", layer.attention[:, :, query])]
        rows = ((layer.node_id, name, t, head, token,
                 int(values[t, head, token]) if name == "mask" else float(values[t, head, token]))
                for name, values in series
                for t in range(layer.steps)
                for head in range(layer.heads)
                for token in range(layer.tokens))
        return header, rows
