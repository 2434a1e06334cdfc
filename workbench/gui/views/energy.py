"""The energy ledger: energy per sample per layer, with where the figures come from.

Every figure says whether it is an **estimate** (and from which cost table) or a
**measurement** (and from which backend). The provenance line is therefore always on screen,
above the bars, and the view has no state in which figures show without it. The label under the
bar of a quantised layer names the width it was priced at ("INT4"): such a layer costs less.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from workbench.core.model.quantity import format_energy_pj
from workbench.core.runs.reports import format_energy
from workbench.gui.views._common import PlotViewMixin, assemble_view, si_number
from workbench.gui.views.export import ExportMixin

EMPTY_HINT = "Run an evaluation to fill the ledger"
_BAR_COLOUR = (70, 150, 255)
_REAL_INPUT_COLOUR = (255, 127, 14)  # MAC-priced layers stand out from the AC-priced ones

__all__ = ["EMPTY_HINT", "EnergyView"]


class EnergyView(QWidget, PlotViewMixin, ExportMixin):
    """Bar chart of energy per sample per layer, totals, cost table chooser and provenance."""

    #: the id of the cost table the user picked
    table_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._report: dict[str, Any] | None = None
        self._table_ids: list[str] = []

        self.provenance_label = QLabel()
        font = self.provenance_label.font()
        font.setBold(True)
        self.provenance_label.setFont(font)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        self.table_combo = QComboBox()
        self.table_combo.setToolTip("Cost table used to price MACs and accumulates")
        self.table_combo.currentIndexChanged.connect(self._on_table_combo_changed)
        header = QHBoxLayout()
        header.addWidget(self.provenance_label, 1)
        header.addWidget(QLabel("Cost table:"))
        header.addWidget(self.table_combo)
        header.addWidget(self._make_export_button())
        self.totals_label = QLabel()
        self.totals_label.setWordWrap(True)

        self.plot_widget = pg.PlotWidget()
        plot = self.plot_widget.getPlotItem()
        # base units: pyqtgraph picks the prefix (nJ, µJ), never "kpJ"
        plot.setLabel("left", "energy per sample", units="J")
        # the colours say how a layer is priced; without this line they would be decoration
        plot.setLabel("bottom", "layer  (blue: spike input, priced as ACs · "
                                "orange: real-valued input, priced as MACs)")
        plot.showGrid(y=True, alpha=0.2)
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.6)
        plot.addItem(self._bars)

        self._stack = assemble_view(self, header, self.source_label, self.totals_label)
        self.set_report(None)

    # -- data in -------------------------------------------------------------------------------
    def set_tables(self, tables: list[tuple[str, str]], current_id: str) -> None:
        """Fill the chooser with ``(id, name)`` cost tables; selecting one does not emit."""
        blocked = self.table_combo.blockSignals(True)
        try:
            self.table_combo.clear()
            self._table_ids = [table_id for table_id, _name in tables]
            for table_id, name in tables:
                self.table_combo.addItem(name, table_id)
            if current_id in self._table_ids:
                self.table_combo.setCurrentIndex(self._table_ids.index(current_id))
        finally:
            self.table_combo.blockSignals(blocked)
        self._update_labels()

    def set_report(self, report: dict[str, Any] | None) -> None:
        """Show an ``EnergyReport.to_dict()``-shaped report; None clears the ledger."""
        self._report = report
        layers = list(report.get("layers", [])) if report else []
        plot = self.plot_widget.getPlotItem()
        if report is None:
            self._bars.setOpts(x=[], height=[], brushes=None)
            plot.getAxis("bottom").setTicks(None)
            self._stack.show_hint(EMPTY_HINT)
        else:
            heights = [float(layer.get("pj", 0.0)) * 1e-12 for layer in layers]  # pJ -> J
            brushes = [pg.mkBrush(*(_REAL_INPUT_COLOUR if layer.get("input") == "real"
                                    else _BAR_COLOUR), 220) for layer in layers]
            self._bars.setOpts(x=np.arange(len(layers)), height=heights, width=0.6,
                               brushes=brushes)
            plot.getAxis("bottom").setTicks([[(i, _tick(layer)) for i, layer in enumerate(layers)],
                                              []])
            if layers:
                plot.setXRange(-0.5, len(layers) - 0.5, padding=0.02)
                plot.setYRange(0, max(max(heights), 1e-24), padding=0.05)
                self._stack.show_plot()
            else:
                self._stack.show_hint("The report counts no layers (nothing to price)")
        self._update_labels()

    # -- what the user sees --------------------------------------------------------------------
    def bar_values(self) -> list[float]:
        """Heights of the bars in pJ per sample (drawn in J), in the report's order."""
        return [float(h) * 1e12 for h in (self._bars.opts.get("height") or [])]

    def tick_labels(self) -> list[str]:
        """The layer labels under the bars (a quantised layer's with its priced width)."""
        layers = self._report.get("layers", []) if self._report else []
        return [_tick(layer) for layer in layers]

    def provenance_text(self) -> str:
        """The provenance line ("Estimate — <table>", "Measurement — <backend>")."""
        return self.provenance_label.text()

    def source_text(self) -> str:
        return self.source_label.text()

    def totals_text(self) -> str:
        return self.totals_label.text()

    def current_table(self) -> str:
        """Id of the table selected in the chooser ("" when none)."""
        data = self.table_combo.currentData()
        return "" if data is None else str(data)

    # -- drawing -------------------------------------------------------------------------------
    def _on_table_combo_changed(self, index: int) -> None:
        self._update_labels()
        if index >= 0:
            self.table_changed.emit(self._table_ids[index])

    def _update_labels(self) -> None:
        report = self._report
        if report is None:
            chosen = self.table_combo.currentText()
            self.provenance_label.setText("No figures yet")
            self.source_label.setText(f"Estimates will use the cost table “{chosen}”"
                                      if chosen else "")
            self.provenance_label.setToolTip("")
            self.totals_label.setText("")
            return
        if report.get("kind") == "measurement":
            backend = report.get("backend") or report.get("source") or "unknown backend"
            provenance = f"Measurement — {backend}"
        else:
            provenance = f"Estimate — {report.get('table_name') or report.get('table', '?')}"
        source = str(report.get("source", ""))
        details = [f"Source: {source}"] if source else []
        if report.get("kind") != "measurement":
            precision = report.get("precision", "full precision")
            details.append(f"{precision}: E_MAC "
                           f"{format_energy_pj(report.get('e_mac_pj', float('nan')))}, "
                           f"E_AC {format_energy_pj(report.get('e_ac_pj', float('nan')))}"
                           + (f"; {report['pricing']}" if report.get("pricing") else "")
                           + f"; SOP counting: {report.get('sop_counting', '?')}"
                           + ("; encoder layers counted once" if report.get("encode_once")
                              else ""))
            table_id = report.get("table")
            if table_id and self._table_ids and table_id != self.current_table():
                # the chooser moved on but these figures were priced with the report's table
                details.append(f"(priced with “{report.get('table_name', table_id)}”; "
                               "re-evaluate to use the selected table)")
        self.provenance_label.setText(provenance)
        self.provenance_label.setToolTip(source)
        self.source_label.setText(" · ".join(details))
        self.source_label.setToolTip(source)
        self.totals_label.setText(
            f"Total {format_energy(float(report.get('total_pj_per_sample', 0.0)))} per sample"
            f" · {si_number(float(report.get('sops_per_sample', 0.0)))} SOPs"
            f" · {si_number(float(report.get('macs_per_sample', 0.0)))} MACs"
            f" · {si_number(float(report.get('neuron_updates_per_sample', 0.0)))} neuron updates"
            f" · averaged over {int(report.get('samples', 0))} samples")

    # -- export --------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        header = ["layer", "input", "macs", "sops", "pj", "firing_rate", "priced_at"]
        layers = self._report.get("layers", []) if self._report else []
        rows = ([layer.get("name", ""), layer.get("input", ""), layer.get("macs", 0.0),
                 layer.get("sops", 0.0), layer.get("pj", 0.0), layer.get("firing_rate", 0.0),
                 layer.get("priced_at", "")]
                for layer in layers)
        return header, rows


def _tick(layer: dict[str, Any]) -> str:
    """``conv2.conv · INT4`` for a quantised layer (the width it was priced at); a
    full-precision layer is named alone (its prices are the table's, in the source line)."""
    name = str(layer.get("name", ""))
    if layer.get("weight_bits") is None or not layer.get("priced_at"):
        return name
    return f"{name} · {layer['priced_at']}"
