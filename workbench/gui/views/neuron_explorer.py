"""The neuron explorer: what the selected neuron does on its own, redrawn as it is edited.

Selecting a neuron in the palette (its defaults) or a node in the editor (a neuron node, or a
spiking block's neuron) shows three plots: the membrane under a step current and under a ramp
(threshold line, spike markers, the input dashed) and the f–I curve (firing rate against a
constant input, the onset marked). The numbers come from
:func:`workbench.core.build.neuron_response.neuron_response`, which drives the real module the
neuron's spec builds; see that module for the current range and the units.

An edit in the inspector changes the document; the explorer redraws 100 ms after the last one
(a spin box's arrows held down are one redraw, not one per step). It computes only while shown:
hidden behind another tab it remembers that it is stale and catches up when raised. Computing
is a few hundred steps of one small batch (tens of ms), done on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

from workbench.core.build.neuron_response import NeuronResponse, Trace, neuron_response
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.specs import NeuronSpec
from workbench.gui.probe_feed import on_screen
from workbench.gui.views._common import PlotViewMixin, assemble_view, step_axis
from workbench.gui.views.export import ExportMixin

log = logging.getLogger(__name__)

#: the redraw waits this long after the last parameter change
DEBOUNCE_MS = 100
EMPTY_HINT = ("Select a neuron in the palette, or a neuron node (or a spiking block) in the "
              "network editor, to see its step and ramp responses and its f–I curve")
_MEMBRANE_PEN = (70, 150, 255)
_INPUT_PEN = (150, 150, 150)
_SPIKE_BRUSH = (214, 39, 40)


class _TracePlot:
    """One response plot: the membrane, the input (dashed), the threshold line, spike markers."""

    def __init__(self, plot: pg.PlotItem, legend: bool) -> None:
        self.plot = plot
        plot.setLabel("bottom", "time step")
        plot.showGrid(x=True, y=True, alpha=0.15)
        if legend:  # one legend serves both plots; the step's top left is full of spikes
            plot.addLegend(offset=(5, 5))
        self.membrane = plot.plot(pen=pg.mkPen(_MEMBRANE_PEN, width=1.5), name="membrane")
        self.current = plot.plot(pen=pg.mkPen(_INPUT_PEN, width=1, style=Qt.PenStyle.DashLine),
                                 name="input")
        self.spikes = pg.ScatterPlotItem(symbol="t1", size=9, pen=None,
                                         brush=pg.mkBrush(*_SPIKE_BRUSH), name="spike")
        plot.addItem(self.spikes)  # named: a legend lists it
        self.threshold = pg.InfiniteLine(
            angle=0, pen=pg.mkPen((128, 128, 128), width=1, style=Qt.PenStyle.DotLine),
            label="threshold", labelOpts={"position": 0.08})
        plot.addItem(self.threshold)

    def show(self, trace: Trace, threshold: float) -> None:
        steps = np.arange(trace.current.size)
        self.current.setData(steps, trace.current)
        self.threshold.setValue(threshold)
        fired = trace.spike_steps
        if trace.membrane is not None:
            self.membrane.setData(steps, trace.membrane)
            heights = trace.membrane[fired]
        else:  # a neuron that records no membrane: the spikes sit on the threshold line
            self.membrane.setData([], [])
            heights = np.full(fired.size, threshold)
        # +1 points up, −1 (a ternary neuron's negative spike) points down
        symbols = ["t1" if trace.spikes[t] > 0 else "t" for t in fired]
        self.spikes.setData(x=fired, y=heights, symbol=symbols)

    def clear(self) -> None:
        for curve in (self.membrane, self.current):
            curve.setData([], [])
        self.spikes.setData([], [])


class NeuronExplorerView(QWidget, PlotViewMixin, ExportMixin):
    """Step and ramp responses and the f–I curve of the selected neuron."""

    def __init__(self, doc: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        #: what is shown: ("spec", spec_id) from the palette, ("node", node_id, param) from
        #: the editor (param is "" for a neuron node, else the block's neuron parameter)
        self._target: tuple[str, ...] | None = None
        self._drawn_key: tuple[Any, ...] | None = None
        self._stale = False
        self.response: NeuronResponse | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.redraw_now)
        doc.changed.connect(self._on_doc_changed)

        self.title_label = QLabel()
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout = QLabel()
        self.readout.setObjectName("neuron_explorer_readout")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self._make_export_button())

        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setMinimumHeight(200)
        self.step_plot = _TracePlot(self.plot_widget.addPlot(
            row=0, col=0, title="Step current", axisItems=step_axis()), legend=False)
        self.ramp_plot = _TracePlot(self.plot_widget.addPlot(
            row=0, col=1, title="Ramp current", axisItems=step_axis()), legend=True)
        self.fi_plot = self.plot_widget.addPlot(row=0, col=2, title="f–I curve")
        self.fi_plot.showGrid(x=True, y=True, alpha=0.15)
        self.fi_curve = self.fi_plot.plot(pen=pg.mkPen(_MEMBRANE_PEN, width=1.5), symbol="o",
                                          symbolSize=4, symbolBrush=pg.mkBrush(*_MEMBRANE_PEN))
        self.onset_line = pg.InfiniteLine(
            angle=90, pen=pg.mkPen(_SPIKE_BRUSH, width=1, style=Qt.PenStyle.DashLine),
            label="onset", labelOpts={"position": 0.9})
        self.fi_plot.addItem(self.onset_line, ignoreBounds=True)

        self._stack = assemble_view(self, header, self.readout)
        self._stack.show_hint(EMPTY_HINT)

    # -- what is shown -----------------------------------------------------------------------
    def set_document(self, doc: Any) -> None:
        """A project switch: follow the new document; a node of the old one is no more."""
        self.doc.changed.disconnect(self._on_doc_changed)
        self.doc = doc
        doc.changed.connect(self._on_doc_changed)
        if self._target and self._target[0] == "node":
            self._show_nothing()

    def show_spec(self, spec_id: str, kind: str = "neuron") -> None:
        """A palette pick: a neuron is shown with its default parameters; other kinds are
        ignored (the explorer keeps what it shows)."""
        if kind == "neuron" and isinstance(self.doc.registry.get(spec_id), NeuronSpec):
            self._set_target(("spec", spec_id))

    def show_node(self, node_id: str) -> None:
        """An editor pick: a neuron node, or a block with a neuron parameter (its first one).
        Other nodes, and an empty selection, leave the explorer as it is."""
        target = self._node_target(node_id) if node_id else None
        if target is not None:
            self._set_target(target)

    @property
    def onset_current(self) -> float | None:
        """The first current of the drawn f–I curve that fires (None: none, or nothing drawn)."""
        return self.response.onset_current if self.response is not None else None

    def readout_text(self) -> str:
        return self.readout.text()

    # -- redrawing ---------------------------------------------------------------------------
    def redraw_now(self) -> None:
        """Compute and draw the current target now (the debounce timer calls this)."""
        self._timer.stop()
        self._stale = False
        resolved = self._resolve()
        if resolved is None:
            return
        spec, params, where = resolved
        key = (spec.id, repr(sorted(params.items())))
        self._drawn_key = key
        try:
            response = neuron_response(spec, params)
        except WorkbenchError as exc:
            self._show_problem(str(exc), where)
            return
        except Exception as exc:  # a plugin bug: one line here, the traceback in the log
            log.exception("neuron explorer: %s", spec.id)
            self._show_problem(f"{spec.display_name}: internal error ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})", where)
            return
        self._draw(response, spec, where)

    def _set_target(self, target: tuple[str, ...]) -> None:
        if target != self._target:
            self._target = target
            self._drawn_key = None
        self._schedule()

    def _schedule(self) -> None:
        # isVisible() stays true behind another dock's tab: redraw only what can be seen
        if on_screen(self):
            self._timer.start()
        else:
            self._stale = True

    def catch_up(self) -> None:
        """Draw what changed while hidden (the window calls this when the tab is shown)."""
        if self._stale:
            self._timer.start()

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        # shown on its own (floated, a test); a tab brought to the front of a dock group gets
        # no show event, so the window calls catch_up on the dock's visibilityChanged too
        super().showEvent(event)
        self.catch_up()

    def _on_doc_changed(self) -> None:
        if not self._target or self._target[0] != "node":
            return
        resolved = self._resolve(quiet=True)
        if resolved is None:
            if self._target[1] not in self.doc.project.graph.ids():
                self._show_nothing()  # the node was deleted
            return
        spec, params, _where = resolved
        if (spec.id, repr(sorted(params.items()))) != self._drawn_key:
            self._schedule()

    def _node_target(self, node_id: str) -> tuple[str, ...] | None:
        graph = self.doc.project.graph
        if node_id not in graph.ids():
            return None
        node = graph.node(node_id)
        spec = self.doc.registry.get(node.spec)
        if spec is None or node.placeholder:
            return None
        if isinstance(spec, NeuronSpec):
            return ("node", node_id, "")
        neuron_param = next((p.name for p in spec.params if p.kind == "neuron"), None)
        return ("node", node_id, neuron_param) if neuron_param else None

    def _resolve(self, quiet: bool = False) -> tuple[NeuronSpec, dict[str, Any], str] | None:
        """The target's spec, parameters and a description of where it comes from."""
        target = self._target
        if target is None:
            return None
        registry = self.doc.registry
        if target[0] == "spec":
            spec = registry.get(target[1])
            return (spec, {}, "the palette: default parameters") \
                if isinstance(spec, NeuronSpec) else None
        node_id, param = target[1], target[2]
        graph = self.doc.project.graph
        if node_id not in graph.ids():
            if not quiet:
                self._show_nothing()
            return None
        node = graph.node(node_id)
        if not param:
            spec = registry.get(node.spec)
            return (spec, dict(node.params), f"node {node_id!r}") \
                if isinstance(spec, NeuronSpec) else None
        block = registry.get(node.spec)
        p = block.param(param) if block is not None else None
        if p is None:
            return None
        try:
            choice = p.coerce(node.params.get(param, p.default))
        except ValueError as exc:
            if not quiet:
                self._show_problem(f"node {node_id!r}.{param}: {exc}", f"node {node_id!r}")
            return None
        spec = registry.get(choice["id"])
        if not isinstance(spec, NeuronSpec):
            if not quiet:
                self._show_problem(f"{choice['id']!r} is not an installed neuron",
                                   f"node {node_id!r}")
            return None
        return spec, dict(choice["params"]), f"node {node_id!r}, its neuron ({param})"

    # -- drawing -----------------------------------------------------------------------------
    def _show_nothing(self) -> None:
        self._target = None
        self._drawn_key = None
        self.response = None
        self.title_label.clear()
        self.readout.clear()
        self._stack.show_hint(EMPTY_HINT)

    def _show_problem(self, text: str, where: str) -> None:
        self.response = None
        self.title_label.setText(where)
        self.readout.clear()
        for plot in (self.step_plot, self.ramp_plot):
            plot.clear()
        self.fi_curve.setData([], [])
        self._stack.show_hint(text)

    def _draw(self, response: NeuronResponse, spec: NeuronSpec, where: str) -> None:
        self.response = response
        self.title_label.setText(f"<b>{spec.display_name}</b> — {where}")
        unit = response.input_unit
        level = f"({unit})" if unit else "(threshold units)"
        for plot, trace in ((self.step_plot, response.step), (self.ramp_plot, response.ramp)):
            plot.plot.setLabel("left", f"membrane, input {level}")
            plot.show(trace, response.threshold)
        self.fi_plot.setLabel("bottom", f"constant input {level}")
        if response.rate_unit == "Hz":
            self.fi_plot.setLabel("left", "firing rate", units="Hz")
        else:
            # units="" too: pyqtgraph keeps the last units (Hz) when none are given
            self.fi_plot.setLabel("left", f"firing rate ({response.rate_unit})", units="")
        self.fi_curve.setData(response.currents, response.rates)
        onset = response.onset_current
        self.onset_line.setVisible(onset is not None)
        if onset is not None:
            self.onset_line.setValue(onset)
        parts = [f"threshold {response.threshold:.4g}",
                 f"onset {onset:.4g}" if onset is not None else "no firing in the range",
                 f"top rate {response.rates.max():.3g} {response.rate_unit}"]
        no_membrane = response.step.membrane is None
        if no_membrane:
            parts.append("this neuron records no membrane: spikes are drawn on the threshold")
        if response.note:
            parts.append(response.note)
        self.readout.setText(" · ".join(parts))
        self._stack.show_plot()

    # -- export ------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        header = ["series", "time_step", "input", "membrane", "spike", "rate"]
        response = self.response
        if response is None:
            return header, []
        rows: list[list[Any]] = []
        for name, trace in (("step", response.step), ("ramp", response.ramp)):
            for t, current in enumerate(trace.current):
                membrane = "" if trace.membrane is None else float(trace.membrane[t])
                rows.append([name, t, float(current), membrane, float(trace.spikes[t]), ""])
        series = f"f-I ({response.rate_unit})"
        rows += [[series, "", float(c), "", "", float(r)]
                 for c, r in zip(response.currents, response.rates, strict=True)]
        return header, rows
