"""The Variants view: the open project beside its compressed variants.

A variant is a project folder under ``<project folder>/variants/`` whose ``project.json``
records the compression pass that made it (``compression[-1]``: method, params, parent, and the
figures measured ``before`` and ``after``). The view reads those records only — it never builds a
network — so opening it is instant however many variants there are.

The open project's own figures come from its record when it is itself a variant, else from the
``before`` figures of its newest variant (measured on the parent when that variant was made).
Energy figures are cost-table estimates; the table they were priced with is shown per row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.json_text import finite_number
from workbench.core.model.project import PROJECT_FILE, Project
from workbench.core.model.quantity import format_energy_pj
from workbench.core.runs.reports import precision_text
from workbench.core.runs.sweep import RECORD_KEY as SWEEP_RECORD
from workbench.core.runs.sweep import values_text
from workbench.gui.views._common import HintStack, PlotViewMixin
from workbench.gui.views.export import ExportMixin

log = logging.getLogger(__name__)

VARIANTS_DIR = "variants"
EMPTY_HINT = ("No variants yet: compress the project (Network ▸ Compress…) or sweep a "
              "setting (Run ▸ Sweep…) to compare accuracy, size and energy here")
COLUMNS = ["Name", "Method", "Parameters", "Accuracy (%)", "Size (bytes)", "Size (MB)",
           "Params", "Energy per sample", "Energy source", "Quantised layers"]
_CURRENT_BRUSH = (255, 127, 14)
_VARIANT_BRUSH = (70, 150, 255)
#: the plots' floor: below ~200 px their titles, axis labels and point names crowd out the data
MIN_PLOTS_HEIGHT = 220


@dataclass
class VariantRow:
    """One line of the table and one point of each scatter plot."""

    name: str
    folder: str
    method: str = ""
    params: str = ""
    accuracy: float | None = None  # fraction, 0..1
    size_bytes: float | None = None
    n_params: int | None = None
    energy_pj: float | None = None
    energy_table: str = ""
    current: bool = False
    #: which layers the compression quantised and which stayed at full precision
    precision: str = ""

    def cells(self) -> list[str]:
        """The table's texts ("—" for a figure nobody measured)."""
        def fmt(value: Any, spec: str) -> str:
            return "—" if value is None else format(value, spec)

        return [self.name + ("  (open)" if self.current else ""), self.method or "original",
                self.params, fmt(None if self.accuracy is None else 100 * self.accuracy, ".2f"),
                fmt(self.size_bytes, ",.0f"),
                fmt(None if self.size_bytes is None else self.size_bytes / 1e6, ".4f"),
                fmt(self.n_params, ","),
                "—" if self.energy_pj is None else format_energy_pj(self.energy_pj),
                f"estimate — {self.energy_table}" if self.energy_table else "",
                self.precision]


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _figures(row: VariantRow, figures: dict[str, Any]) -> None:
    row.accuracy = finite_number(figures.get("accuracy"))
    row.size_bytes = finite_number(figures.get("model_size_bytes"))
    n_params = figures.get("params")
    row.n_params = int(n_params) if isinstance(n_params, (int, float)) else None
    row.energy_pj = finite_number(figures.get("total_pj_per_sample"))


def read_variant(folder: Path) -> tuple[VariantRow, dict[str, Any]]:
    """The row of the project in ``folder`` and its last compression record ({} when none).

    Raises ``OSError`` or ``ValueError`` (bad JSON) for a file that cannot be read."""
    data = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("project.json does not hold an object")
    passes = data.get("compression") or []
    record = passes[-1] if passes and isinstance(passes[-1], dict) else {}
    energy = data.get("energy") if isinstance(data.get("energy"), dict) else {}
    trial = _sweep_record(data)
    if trial is not None and not record:  # a sweep's trial: its values, trained and measured
        row = VariantRow(str(data.get("name", folder.name)), str(folder),
                         str(trial.get("sweep") or "sweep"),
                         values_text(trial.get("values") or {}),
                         energy_table=str(energy.get("table", "")))
        _figures(row, trial.get("after") or {})
        return row, {}
    row = VariantRow(str(data.get("name", folder.name)), str(folder),
                     str(record.get("method", "")), _params_text(record.get("params") or {}),
                     energy_table=str(energy.get("table", "")) if record else "",
                     precision=_precision(record))
    _figures(row, record.get("after") or {})
    return row, record


def _sweep_record(data: dict[str, Any]) -> dict[str, Any] | None:
    extras = data.get("extras")
    record = extras.get(SWEEP_RECORD) if isinstance(extras, dict) else None
    return record if isinstance(record, dict) else None


def _precision(record: dict[str, Any]) -> str:
    """The record's "quantised 1 of 3 layers to 4 bits: …" line ("" for older records)."""
    split = record.get("precision")
    return precision_text(split) if isinstance(split, dict) else ""


def collect_variants(project: Project | None, extra: Iterable[str | Path] = ()
                     ) -> tuple[list[VariantRow], list[str]]:
    """Rows for ``project`` and every variant under its folder (plus ``extra`` folders), and
    notes on the folders that could not be read. The open project comes first."""
    if project is None:
        return [], []
    rows: list[VariantRow] = []
    notes: list[str] = []
    own = Path(project.folder).resolve() if project.folder is not None else None
    parent = _parent_folder(project)
    # An opened variant is compared with its parent and its siblings, not only with its own
    # variants: the family is everything under the parent's variants/ folder.
    folders = [f for root in (parent, own) if root is not None for f in _variant_folders(root)]
    seen = {own} if own is not None else set()
    unique: list[Path] = []
    for folder in [*folders, *(Path(item) for item in extra)]:
        if (folder / PROJECT_FILE).exists() and folder.resolve() not in seen:
            seen.add(folder.resolve())
            unique.append(folder)
    folders = unique
    trial = _sweep_record({"extras": project.extras})
    if parent is not None:
        record = project.compression[-1] if project.compression else (trial or {})
        origin = VariantRow(str(record.get("parent") or parent.name),
                            str(parent), energy_table=project.energy.table)
        _figures(origin, record.get("before") or {})
        rows.append(origin)
    parent_figures: dict[str, Any] = {}
    for folder in folders:
        try:
            row, record = read_variant(folder)
        except (OSError, ValueError) as exc:
            notes.append(f"{folder}: cannot read {PROJECT_FILE} ({exc})")
            log.warning("variants: cannot read %s: %s", folder / PROJECT_FILE, exc)
            continue
        rows.append(row)
        if record.get("before"):
            parent_figures = record["before"]  # folders are oldest first: the newest wins

    current = VariantRow(project.name, str(project.folder or ""), current=True,
                         energy_table=project.energy.table)
    if project.compression:
        record = project.compression[-1]
        current.method = str(record.get("method", ""))
        current.params = _params_text(record.get("params") or {})
        current.precision = _precision(record)
        _figures(current, record.get("after") or {})
    elif trial is not None:
        current.method = str(trial.get("sweep") or "sweep")
        current.params = values_text(trial.get("values") or {})
        _figures(current, trial.get("after") or {})
    elif parent_figures:
        _figures(current, parent_figures)
    else:
        current.energy_table = ""
    return [current, *rows], notes


def _parent_folder(project: Project) -> Path | None:
    """The folder of the project this variant was compressed (or swept) from, when it still
    exists."""
    if project.compression:
        recorded = project.compression[-1].get("parent_folder")
    else:
        recorded = (_sweep_record({"extras": project.extras}) or {}).get("parent_folder")
    if not recorded or not (Path(recorded) / PROJECT_FILE).exists():
        return None
    return Path(recorded).resolve()


def _variant_folders(root: Path) -> list[Path]:
    """Project folders under ``root/variants``, oldest first."""
    base = root / VARIANTS_DIR
    if not base.is_dir():
        return []
    return sorted((p.parent for p in base.glob(f"*/{PROJECT_FILE}")),
                  key=lambda p: (p / PROJECT_FILE).stat().st_mtime)


class VariantsView(QWidget, PlotViewMixin, ExportMixin):
    """Table of the project and its variants; accuracy against size and against energy.

    ``open_requested(folder)`` when a variant's row is double-clicked or "Open" is pressed.
    """

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._extra: list[str] = []
        self._rows: list[VariantRow] = []

        self.title_label = QLabel("Variants")
        # a long project name in the title must not widen the dock (it moved on every open)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the variants folder again")
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the selected variant")
        self.open_button.clicked.connect(self._open_selected)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.refresh_button)
        header.addWidget(self.open_button)
        header.addWidget(self._make_export_button())
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header_view = self.table.horizontalHeader()
        header_view.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # every parameter of a method makes a long line: a fixed width, the full text as tooltip
        header_view.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header_view.resizeSection(2, 280)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._open_row(r))

        self.plot_widget = pg.GraphicsLayoutWidget()
        self.size_plot = self.plot_widget.addPlot(row=0, col=0, title="Accuracy against size")
        self.energy_plot = self.plot_widget.addPlot(row=0, col=1,
                                                    title="Accuracy against energy (estimate)")
        for plot, (label, units) in ((self.size_plot, ("model size", "B")),
                                     (self.energy_plot, ("energy per sample", "J"))):
            plot.setLabel("left", "accuracy", units="%")
            plot.setLabel("bottom", label, units=units)  # SI prefixes: kB, nJ, µJ
            plot.showGrid(x=True, y=True, alpha=0.2)
        self._scatters = {"size": pg.ScatterPlotItem(size=11, pen=pg.mkPen(None)),
                          "energy": pg.ScatterPlotItem(size=11, pen=pg.mkPen(None))}
        self.size_plot.addItem(self._scatters["size"])
        self.energy_plot.addItem(self._scatters["energy"])
        self._labels: list[tuple[Any, pg.TextItem]] = []
        self._add_export_to_plot_menu(self.plot_widget)

        self._stack = HintStack(self.plot_widget)
        self._stack.setMinimumHeight(MIN_PLOTS_HEIGHT)  # the splitter shrinks the table first
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self._stack)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.note_label)
        layout.addWidget(splitter, 1)
        self.refresh()

    # -- data in ---------------------------------------------------------------------------------
    def set_project(self, project: Project | None) -> None:
        """Show ``project`` and its variants (variants made elsewhere are forgotten)."""
        self._project = project
        self._extra = []
        self.refresh()

    def add_variant(self, folder: str | Path) -> None:
        """A variant was just written to ``folder`` (which may lie outside ``variants/``)."""
        folder = str(folder)
        if folder not in self._extra:
            self._extra.append(folder)
        self.refresh()

    def refresh(self) -> None:
        """Read the variants again and redraw."""
        self._rows, notes = collect_variants(self._project, self._extra)
        name = self._project.name if self._project is not None else ""
        count = len(self._rows) - 1 if self._rows else 0
        self.title_label.setText(f"{name}: {count} variant(s)" if name else "Variants")
        self.note_label.setText("\n".join(notes))
        self.note_label.setVisible(bool(notes))
        self._fill_table()
        self._draw()

    # -- drawing ---------------------------------------------------------------------------------
    def _fill_table(self) -> None:
        self.table.setRowCount(len(self._rows))
        for r, row in enumerate(self._rows):
            for c, text in enumerate(row.cells()):
                item = QTableWidgetItem(text)
                if c >= 3 and c <= 7:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if row.current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                # parameters and quantised layers make long lines: their text as tooltip
                item.setToolTip(text if c in (2, len(COLUMNS) - 1) else row.folder)
                self.table.setItem(r, c, item)

    def _draw(self) -> None:
        for plot, label in self._labels:
            plot.removeItem(label)
        self._labels = []
        measured = [r for r in self._rows if r.accuracy is not None]
        if len(self._rows) <= 1:
            self._scatters["size"].setData([], [])
            self._scatters["energy"].setData([], [])
            self._stack.show_hint(EMPTY_HINT)
            return
        self._stack.show_plot()
        for key, plot, value in (("size", self.size_plot, lambda r: r.size_bytes),
                                 ("energy", self.energy_plot,
                                  lambda r: None if r.energy_pj is None else r.energy_pj * 1e-12)):
            points = [(value(r), 100 * r.accuracy, r) for r in measured if value(r) is not None]
            spots = [{"pos": (x, y), "data": row.name,
                      "brush": pg.mkBrush(*(_CURRENT_BRUSH if row.current else _VARIANT_BRUSH))}
                     for x, y, row in points]
            self._scatters[key].setData(spots)
            if not points:
                continue
            xs = np.array([p[0] for p in points])
            ys = np.array([p[1] for p in points])
            bottom, top = max(0.0, float(ys.min()) - 5), min(100.0, float(ys.max()) + 3) + 2
            plot.setXRange(0, float(xs.max()) * 1.15 or 1.0, padding=0)
            plot.setYRange(bottom, top, padding=0)
            right, high = float(xs.max()) / 2, bottom + 0.8 * (top - bottom)
            for x, y, row in points:
                # the theme's foreground: TextItem's default grey vanishes on a light plot;
                # names of points in the right half run leftwards and those near the top hang
                # below their point, so none is cut at the plot's edge
                label = pg.TextItem(row.name, anchor=(1 if x > right else 0, 0 if y > high else 1),
                                    color=pg.mkColor(pg.getConfigOption("foreground")))
                label.setPos(x, y)
                plot.addItem(label)
                self._labels.append((plot, label))

    # -- opening ---------------------------------------------------------------------------------
    def _open_row(self, r: int) -> None:
        if 0 <= r < len(self._rows) and not self._rows[r].current and self._rows[r].folder:
            self.open_requested.emit(self._rows[r].folder)

    def _open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self._open_row(rows[0].row())

    # -- what the user sees ------------------------------------------------------------------------
    def rows(self) -> list[VariantRow]:
        """The rows shown, the open project first."""
        return list(self._rows)

    def table_texts(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def point_labels(self) -> dict[str, list[str]]:
        """The labelled points of each scatter plot: ``{"size": [...], "energy": [...]}``."""
        return {key: [str(p.data()) for p in scatter.points()]
                for key, scatter in self._scatters.items()}

    # -- export ----------------------------------------------------------------------------------
    def _export_target(self) -> Any:
        return self.plot_widget

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        header = ["name", "folder", "method", "params", "accuracy", "model_size_bytes",
                  "model_size_mb", "params_count", "pj_per_sample", "energy_source", "open",
                  "quantised_layers"]
        rows = ([r.name, r.folder, r.method, r.params, r.accuracy, r.size_bytes,
                 None if r.size_bytes is None else r.size_bytes / 1e6, r.n_params, r.energy_pj,
                 f"estimate: {r.energy_table}" if r.energy_table else "", r.current,
                 r.precision]
                for r in self._rows)
        return header, rows
