"""Helpers shared by the plot views: tensor conversion, the empty-state hint, buffer polling."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QSizePolicy,
    QStackedWidget,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.runs.buffers import LatestBuffer

#: the entry of a layer combo that shows every layer at once
ALL_LAYERS = "All layers"
#: characters a layer chooser shows: "block1.attention.proj.neuron" whole; longer names are
#: elided in the middle (their ends tell layers apart) and shown whole in the list and tooltip
LAYER_CHOOSER_CHARS = 28


class StepAxis(pg.AxisItem):
    """An axis of time steps (or batches): ticks only at whole numbers.

    pyqtgraph's default spacing puts ticks at 0.5 on a short axis (T = 4), a time step that
    does not exist; finer levels are dropped here and the labels are written as integers.
    """

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        levels = super().tickSpacing(minVal, maxVal, size)
        whole = [(spacing, offset) for spacing, offset in levels if spacing >= 1]
        return whole or [(1.0, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [str(round(float(value) * scale)) for value in values]


def step_axis() -> dict[str, pg.AxisItem]:
    """``axisItems`` for a plot whose x axis counts time steps: ``PlotWidget(axisItems=...)``."""
    return {"bottom": StepAxis(orientation="bottom")}


class LayerComboBox(QComboBox):
    """A layer chooser of fixed width that shows a long name elided in the middle.

    A fixed width keeps a project switch from moving the docks; the middle of a layer name is
    the least telling part (``bestformer.blocks.0.attention.q.neuron``), so it gives way.
    """

    def __init__(self, tip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tip = tip
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(LAYER_CHOOSER_CHARS)
        self.currentTextChanged.connect(self._on_current_text_changed)
        self._on_current_text_changed("")

    def shown_text(self) -> str:
        """The text as drawn in the closed box (elided when it does not fit)."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        return self.fontMetrics().elidedText(self.currentText(), Qt.TextElideMode.ElideMiddle,
                                             max(field.width(), 0))

    def paintEvent(self, _event: Any) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = self.shown_text()
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def fit_list_to_items(self) -> None:
        """The drop-down list as wide as its longest name (it may be wider than the box)."""
        metrics = self.view().fontMetrics()
        widest = max((metrics.horizontalAdvance(self.itemText(i)) for i in range(self.count())),
                     default=0)
        self.view().setMinimumWidth(widest + 4 * metrics.averageCharWidth())

    def _on_current_text_changed(self, text: str) -> None:
        # the whole name, since the box may show it elided
        self.setToolTip("\n".join(part for part in (text, self._tip) if part))


def to_numpy(values: Any) -> np.ndarray:
    """A NumPy view of a torch tensor (or anything array-like), converted only when drawn.

    Records come from the run thread as detached CPU tensors, but a caller may hand us one that
    still needs grad or lives on a device; both would make ``.numpy()`` raise.
    """
    if hasattr(values, "detach"):
        tensor = values.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:  # NumPy has no bfloat16 (nor torch's other exotic dtypes)
            return tensor.float().numpy()
    return np.asarray(values)


def sample_matrix(values: Any, sample: int = 0) -> np.ndarray:
    """``[T, samples, ...]`` -> ``[T, neurons]`` of one sample (trailing dims flattened).

    A ``sample`` past the recorded ones shows the last one rather than failing: the probe may
    keep fewer samples than the view was asked for.
    """
    array = to_numpy(values)
    if array.ndim == 0:
        return np.zeros((0, 0), dtype=array.dtype)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    steps, samples = array.shape[:2]
    if samples == 0:
        return np.zeros((steps, 0), dtype=array.dtype)
    return array[:, min(max(sample, 0), samples - 1)].reshape(steps, -1)


def layer_rates(values: Any) -> np.ndarray:
    """Per-neuron firing rate: mean over time steps and samples of ``|spike|``.

    The absolute value makes a ternary spike (-1) count as a spike, as the energy ledger does.
    """
    array = to_numpy(values)
    if array.ndim < 2 or array.shape[0] * array.shape[1] == 0:
        return np.zeros(0)
    flat = np.abs(array.reshape(array.shape[0] * array.shape[1], -1).astype(np.float64))
    return flat.mean(axis=0)


class HintStack(QStackedWidget):
    """The plot, or a centred hint in its place when there is nothing to draw."""

    def __init__(self, plot: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hint = QLabel()
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        # the palette's placeholder colour reads as "nothing here" in light and dark themes
        self._hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.addWidget(plot)
        self.addWidget(self._hint)

    def show_hint(self, text: str) -> None:
        self._hint.setText(text)
        self.setCurrentIndex(1)

    def show_plot(self) -> None:
        self._hint.clear()
        self.setCurrentIndex(0)

    def hint_text(self) -> str:
        """The hint on screen, or "" while the plot is shown."""
        return self._hint.text() if self.currentIndex() == 1 else ""


class BufferPoller(QObject):
    """Polls a :class:`LatestBuffer` on a GUI-thread timer and hands new items to a callback.

    Polling (not a signal per probe) is the data plane's contract: a view that falls behind
    skips frames, and redraws happen at most ``fps`` times a second however fast the run goes.
    """

    def __init__(self, on_item: Callable[[Any], None], on_cleared: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_item = on_item
        self._on_cleared = on_cleared
        self._buffer: LatestBuffer | None = None
        self._last_seq = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_timeout)

    def attach(self, buffer: LatestBuffer, fps: float = 30) -> None:
        self._buffer = buffer
        # seq 0 means "nothing seen": the buffer's current item, if any, is drawn at once
        self._last_seq = 0
        self._timer.start(max(1, round(1000 / max(fps, 0.1))))

    def detach(self) -> None:
        self._timer.stop()
        self._buffer = None

    def poll(self) -> None:
        """Take whatever is new now (the timer calls this; tests may too)."""
        self._on_timeout()

    def _on_timeout(self) -> None:
        if self._buffer is None:
            return
        seq, item, _run_id = self._buffer.take(self._last_seq)
        if seq == self._last_seq:
            return
        self._last_seq = seq
        if item is None:  # a newer seq with no item: the buffer was cleared
            self._on_cleared()
        else:
            self._on_item(item)


def probe_title(item: dict[str, Any]) -> str:
    """"Sample #12 — label 3, predicted 5" from a probe buffer item."""
    parts = []
    if item.get("index") is not None:
        parts.append(f"Sample #{item['index']}")
    facts = []
    if item.get("label") is not None:
        facts.append(f"label {item['label']}")
    if item.get("predicted") is not None:
        facts.append(f"predicted {item['predicted']}")
    if facts:
        parts.append(", ".join(facts))
    return " — ".join(parts)


def fill_layer_combo(combo: Any, layers: list[str], *, with_all: bool) -> bool:
    """Refill a layer combo, keeping the current choice when it still exists.

    Returns True when the items changed. Signals are blocked so refilling never counts as a
    user pick; the caller redraws once afterwards.
    """
    wanted = ([ALL_LAYERS] if with_all else []) + layers
    current = [combo.itemText(i) for i in range(combo.count())]
    if current == wanted:
        return False
    chosen = combo.currentText()
    blocked = combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItems(wanted)
        if chosen in wanted:
            combo.setCurrentIndex(wanted.index(chosen))
    finally:
        combo.blockSignals(blocked)
    if isinstance(combo, LayerComboBox):
        combo.fit_list_to_items()
        combo._on_current_text_changed(combo.currentText())  # signals were blocked
    return True


def si_number(value: float, unit: str = "") -> str:
    """``1.23e6`` -> ``"1.23 M"``: counts of operations span many orders of magnitude."""
    if not math.isfinite(value):
        return f"{value} {unit}".strip()
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}".strip()
    return f"{value:.3g} {unit}".strip()


def assemble_view(view: Any, header: QLayout, *above_plot: QWidget) -> HintStack:
    """Lay a view out the one way all views share: its header row, any widgets given, then the
    plot behind a hint stack (the empty-state text); the plot's menu gets the view's Export."""
    view._add_export_to_plot_menu(view.plot_widget)
    stack = HintStack(view.plot_widget)
    layout = QVBoxLayout(view)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addLayout(header)
    for widget in above_plot:
        layout.addWidget(widget)
    layout.addWidget(stack, 1)
    return stack


def layer_header(view: Any, *extra: QWidget, tip: str = "") -> QHBoxLayout:
    """The header row of a per-layer view: title, "Layer:" chooser, ``extra`` widgets, Export.

    Creates ``view.title_label`` and ``view.layer_combo`` (wired to
    ``view._on_layer_combo_changed``)."""
    view.title_label = QLabel()
    # Neither the title nor a long layer name may widen the dock (a project switch would move
    # every dock): the title gives way, the chooser has a fixed width (LayerComboBox).
    view.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    view.layer_combo = LayerComboBox(tip)
    view.layer_combo.currentIndexChanged.connect(view._on_layer_combo_changed)
    header = QHBoxLayout()
    header.addWidget(view.title_label, 1)
    header.addWidget(QLabel("Layer:"))
    header.addWidget(view.layer_combo)
    for widget in extra:
        header.addWidget(widget)
    header.addWidget(view._make_export_button())
    return header


class PlotViewMixin:
    """What every view shows besides its plot: the title and the empty-state hint."""

    def title_text(self) -> str:
        return self.title_label.text()  # type: ignore[attr-defined]

    def hint_text(self) -> str:
        """The empty-state hint in place of the plot ("" while the plot shows)."""
        return self._stack.hint_text()  # type: ignore[attr-defined]


class ProbeViewMixin(PlotViewMixin):
    """``set_probe`` for views fed by the run controller's probe buffer."""

    def set_probe(self, item: dict[str, Any]) -> None:
        """Show a probe buffer item: ``{"records", "label", "predicted", "index"}``."""
        self.set_records(item.get("records") or {})  # type: ignore[attr-defined]
        self.title_label.setText(probe_title(item))  # type: ignore[attr-defined]
