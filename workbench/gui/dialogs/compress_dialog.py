"""The Compress dialog: choose a method, set its parameters, run it, compare before and after.

Non-modal: the run goes through the window's :class:`RunController` on a worker thread, so the
dialog can be moved aside while a fine-tune runs. The dialog never builds a model or touches the
session itself; it only starts :func:`workbench.core.runs.catalog.compress` and shows its events.
Whether a run may start at all (a saved, trained project) is decided by
:func:`~workbench.gui.run_owner.run_readiness`, which the Deploy panel shares.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.specs import CompressionSpec
from workbench.core.runs import catalog
from workbench.core.runs.events import (
    Log,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
)
from workbench.core.runs.reports import comparison_rows, precision_text
from workbench.gui.panels.param_form import ParamForm
from workbench.gui.run_owner import Launch, RunContext, RunOwner, one_line

log = logging.getLogger(__name__)

#: how the method chooser groups methods, in this order (``CompressionSpec.kind``)
METHOD_KINDS = {"quantize": "Quantize", "prune": "Prune", "binarize": "Binarize",
                "distill": "Distill"}
VARIANTS_DIR = "variants"
_SPEC_ROLE = Qt.ItemDataRole.UserRole


class CompressDialog(RunOwner, QDialog):
    """Compress the open project into a variant.

    ``variant_created(folder)`` after a variant was saved; ``open_variant_requested(folder)``
    when the user asks to open it.
    """

    variant_created = Signal(str)
    open_variant_requested = Signal(str)

    def __init__(self, registry: Any, controller: Any, launch: Launch,
                 context: Callable[[], RunContext], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compress")
        self.setModal(False)
        self.resize(900, 680)
        self.registry = registry
        self.controller = controller
        self._launch = launch
        self._context = context
        self._values: dict[str, dict[str, Any]] = {}
        self._run_id = ""
        self._result_folder = ""
        self._name_touched = False
        self._folder_touched = False
        self.form: ParamForm | None = None

        # -- method chooser and its description -------------------------------------------
        self.methods = QTreeWidget()
        self.methods.setHeaderLabels(["Method", "Plugin"])
        self.methods.setRootIsDecorated(True)
        self.methods.currentItemChanged.connect(lambda *_: self._on_method_changed())
        self.method_doc = QLabel()
        self.method_doc.setWordWrap(True)
        self.method_doc.setTextFormat(Qt.TextFormat.RichText)
        self.method_doc.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.params_box = QGroupBox("Parameters")
        self.params_layout = QVBoxLayout(self.params_box)
        self.no_params = QLabel("This method has no parameters.")
        self.params_layout.addWidget(self.no_params)
        params_scroll = QScrollArea()
        params_scroll.setWidgetResizable(True)
        params_scroll.setWidget(self.params_box)

        # -- where the variant goes ---------------------------------------------------------
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("variant_name")
        self.name_edit.textEdited.connect(self._on_name_edited)
        self.folder_edit = QLineEdit()
        self.folder_edit.setObjectName("variant_folder")
        self.folder_edit.textEdited.connect(self._on_folder_edited)
        browse = QPushButton("…")
        browse.setToolTip("Choose the folder the variant is saved into")
        browse.clicked.connect(self._browse_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        where = QFormLayout()
        where.addRow("Variant name", self.name_edit)
        where.addRow("Output folder", folder_row)

        # -- run controls, progress, log, results -------------------------------------------
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #c0392b;")
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the compression within one batch")
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open variant")
        self.open_button.setToolTip("Open the compressed project in this window")
        self.open_button.clicked.connect(self._open_variant)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for widget in (self.start_button, self.cancel_button, self.open_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(close)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.step_label = QLabel("Ready")
        self.step_label.setWordWrap(True)
        # which layers were quantised and which kept at full precision (not only in the log)
        self.precision_label = QLabel()
        self.precision_label.setObjectName("precision_summary")
        self.precision_label.setWordWrap(True)
        self.precision_label.setVisible(False)
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("Log lines of the run")
        self.results = QTableWidget(0, 4)
        self.results.setHorizontalHeaderLabels(["", "Before", "After", "Change"])
        self.results.verticalHeader().setVisible(False)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.results.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.methods, 2)
        left_layout.addWidget(self.method_doc, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(params_scroll, 1)
        right_layout.addLayout(where)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(right)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.log_view)
        bottom.addWidget(self.results)
        layout = QVBoxLayout(self)
        layout.addWidget(top, 3)
        layout.addWidget(self.reason_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.step_label)
        layout.addWidget(self.precision_label)
        layout.addWidget(bottom, 2)

        controller.run_event.connect(self._on_run_event)
        controller.run_finished.connect(self._on_run_finished)
        controller.state_changed.connect(lambda _state: self.refresh())
        self._fill_methods()
        self.refresh()

    # -- methods and parameters ------------------------------------------------------------------
    def _fill_methods(self) -> None:
        specs = [s for s in self.registry.of_kind("compression") if isinstance(s, CompressionSpec)]
        kinds = list(METHOD_KINDS) + sorted({s.kind for s in specs} - set(METHOD_KINDS))
        first: QTreeWidgetItem | None = None
        for kind in kinds:
            members = sorted((s for s in specs if s.kind == kind),
                             key=lambda s: s.display_name.lower())
            if not members:
                continue
            group = QTreeWidgetItem([METHOD_KINDS.get(kind, kind.capitalize()), ""])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for spec in members:
                item = QTreeWidgetItem([spec.display_name, self.registry.provider(spec.id)])
                item.setData(0, _SPEC_ROLE, spec.id)
                item.setToolTip(0, f"<b>{spec.display_name}</b><br><code>{spec.id}</code>")
                group.addChild(item)
                first = first or item
            self.methods.addTopLevelItem(group)
            group.setExpanded(True)
        self.methods.resizeColumnToContents(0)
        if first is not None:
            self.methods.setCurrentItem(first)
        else:
            self.method_doc.setText("No compression method is installed (see Help ▸ Plugins).")

    def method_ids(self) -> list[str]:
        """Every method offered, in the chooser's order."""
        ids = []
        for g in range(self.methods.topLevelItemCount()):
            group = self.methods.topLevelItem(g)
            ids += [group.child(c).data(0, _SPEC_ROLE) for c in range(group.childCount())]
        return ids

    def select_method(self, spec_id: str) -> bool:
        """Choose a method by id, as a click in the chooser would; False when not offered."""
        for g in range(self.methods.topLevelItemCount()):
            group = self.methods.topLevelItem(g)
            for c in range(group.childCount()):
                if group.child(c).data(0, _SPEC_ROLE) == spec_id:
                    self.methods.setCurrentItem(group.child(c))
                    return True
        return False

    def current_spec(self) -> CompressionSpec | None:
        item = self.methods.currentItem()
        spec_id = item.data(0, _SPEC_ROLE) if item is not None else None
        spec = self.registry.get(spec_id) if spec_id else None
        return spec if isinstance(spec, CompressionSpec) else None

    def params(self) -> dict[str, Any]:
        """The chosen method's parameter values (defaults overridden by the user's edits)."""
        spec = self.current_spec()
        if spec is None:
            return {}
        return {**spec.defaults(), **self._values.get(spec.id, {})}

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter through its editor (what typing into the form does)."""
        spec = self.current_spec()
        if spec is None or self.form is None or name not in self.form.editors:
            raise KeyError(f"the chosen method has no parameter {name!r}")
        self._values.setdefault(spec.id, {})[name] = value
        self.form.set_values(self.params())

    def _on_method_changed(self) -> None:
        spec = self.current_spec()
        if self.form is not None:
            self.params_layout.removeWidget(self.form)
            self.form.deleteLater()
            self.form = None
        if spec is None:
            self.method_doc.setText("Choose a method.")
            self.no_params.setVisible(False)
            self.refresh()
            return
        kind = METHOD_KINDS.get(spec.kind, spec.kind)
        self.method_doc.setText(f"<b>{spec.display_name}</b> <i>({kind}, <code>{spec.id}</code>)"
                                f"</i><br>{spec.doc or 'No description.'}")
        self.no_params.setVisible(not spec.params)
        if spec.params:
            self.form = ParamForm(spec.params, self.params(), self._on_param_changed)
            self.params_layout.addWidget(self.form)
        if not self._name_touched:
            self.name_edit.setText(self._default_name())
        self._follow_name()
        self.refresh()

    def _on_param_changed(self, name: str, value: Any) -> None:
        spec = self.current_spec()
        if spec is not None:
            self._values.setdefault(spec.id, {})[name] = value

    # -- name and folder -------------------------------------------------------------------------
    def _variants_dir(self) -> Path | None:
        folder = self._context().project.folder
        return Path(folder) / VARIANTS_DIR if folder is not None else None

    def _default_name(self) -> str:
        """``<project>-<method>``, numbered when a variant of that name exists."""
        spec = self.current_spec()
        project = self._context().project
        stem = f"{project.name}-{spec.id.rpartition('.')[2] if spec else 'variant'}"
        stem = re.sub(r"[^\w.-]+", "_", stem)
        base = self._variants_dir()
        name, n = stem, 2
        while base is not None and (base / name).exists():
            name, n = f"{stem}-{n}", n + 1
        return name

    def _follow_name(self) -> None:
        base = self._variants_dir()
        if not self._folder_touched:
            name = self.name_edit.text().strip()
            self.folder_edit.setText(str(base / name) if base is not None and name else "")

    def _on_name_edited(self, _text: str) -> None:
        self._name_touched = True
        self._follow_name()
        self.refresh()

    def _on_folder_edited(self, _text: str) -> None:
        self._folder_touched = True
        self.refresh()

    def _browse_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Save the variant into folder",
                                                  self.folder_edit.text())
        if chosen:
            self._folder_touched = True
            self.folder_edit.setText(chosen)
            self.refresh()

    def reset_destination(self) -> None:
        """Default name and folder again (after a run, or for another project)."""
        self._name_touched = self._folder_touched = False
        self.name_edit.setText(self._default_name())
        self._follow_name()
        self.refresh()

    # -- state -----------------------------------------------------------------------------------
    def _show_status(self, text: str) -> None:
        self.step_label.setText(text)

    def blocking_reason(self) -> str:
        """Why Start is disabled ("" when it is enabled)."""
        if self.running:
            return "The compression is running."
        reason = self._context().reason
        if reason:
            return reason
        if self.current_spec() is None:
            return "Choose a compression method."
        if self.controller.busy:
            return "Another run is in progress: wait for it to finish or stop it."
        if not self.name_edit.text().strip():
            return "Give the variant a name."
        folder = self.folder_edit.text().strip()
        if not folder:
            return "Choose the output folder of the variant."
        path = Path(folder)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            return f"{path} already exists and is not empty: choose another name or folder."
        return ""

    def refresh(self) -> None:
        """Re-check what may start (the project, its weights, other runs) and show why not."""
        reason = self.blocking_reason()
        self.start_button.setEnabled(not reason)
        self.start_button.setToolTip(reason or "Compress the project into a new variant")
        shown = "" if self.running else reason
        self.reason_label.setText(shown)
        self.reason_label.setVisible(bool(shown))
        self.cancel_button.setEnabled(self.running)
        self.open_button.setEnabled(bool(self._result_folder) and not self.running)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self.running and not self._name_touched:
            self.name_edit.setText(self._default_name())
            self._follow_name()
        self.refresh()

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> str:
        """Start the compression; returns the run id ("" when it cannot start)."""
        reason = self.blocking_reason()
        if reason:
            self.refresh()
            return ""
        spec = self.current_spec()
        assert spec is not None  # blocking_reason() checked it
        session, params = self._context().session, self.params()
        out, name = Path(self.folder_edit.text().strip()), self.name_edit.text().strip()
        self._result_folder = ""
        self.results.setRowCount(0)
        self._show_precision("")
        self.log_view.clear()
        self.step_label.setText(f"Starting {spec.display_name}…")
        return self._launch_run(lambda: catalog.compress(session, method=spec.id, params=params,
                                                         out=out, name=name), "compressing")

    def _on_run_event(self, event: RunEvent) -> None:
        if not self._run_id or event.run_id != self._run_id:
            return
        if isinstance(event, RunStarted):
            self.step_label.setText("Measuring the model before compression…")
        elif isinstance(event, Progress):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            step = event.message or "working"
            self.step_label.setText(f"{step} — epoch {event.epoch}" if event.epoch else step)
        elif isinstance(event, MetricSample) and event.epoch_end:
            values = ", ".join(f"{k} {v:.4g}" for k, v in event.values.items())
            self.log_view.appendPlainText(f"epoch {event.epoch}: {values}")
        elif isinstance(event, Log):
            self.log_view.appendPlainText(f"[{event.level}] {event.message}")
            self.step_label.setText(event.message)
        elif isinstance(event, RunFinished):
            self._on_finished_event(event)

    def _on_finished_event(self, event: RunFinished) -> None:
        self.progress.setRange(0, 1)
        summary = event.summary or {}
        if event.status == "ok":
            self.progress.setValue(1)
            self._show_results(summary.get("before", {}), summary.get("after", {}))
            text = precision_text(summary.get("precision"))
            self._show_precision(text[:1].upper() + text[1:])
            self._result_folder = str(summary.get("project", ""))
            before, after = summary.get("before", {}), summary.get("after", {})
            self.step_label.setText(
                f"Done in {summary.get('seconds', 0):.1f} s: accuracy "
                f"{100 * before.get('accuracy', 0):.1f} % → {100 * after.get('accuracy', 0):.1f} %"
                f", size {before.get('model_size_bytes', 0):,.0f} B → "
                f"{after.get('model_size_bytes', 0):,.0f} B"
                + (f"; saved to {self._result_folder}" if self._result_folder else ""))
        elif event.status == "cancelled":
            self.progress.setValue(0)
            self.step_label.setText("Cancelled: no variant was written.")
        else:
            self.progress.setValue(0)
            self.step_label.setText(f"Failed: {one_line(event.error)}")
            self.log_view.appendPlainText(f"[error] {one_line(event.error)}")

    def _on_run_finished(self, run_id: str, status: str) -> None:
        if run_id != self._run_id:
            return
        self._run_id = ""
        if status == "ok" and self._result_folder:
            self._name_touched = self._folder_touched = False
            self.variant_created.emit(self._result_folder)
            self.name_edit.setText(self._default_name())
            self._follow_name()
        self.refresh()

    def _show_results(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        rows = comparison_rows(before, after)
        self.results.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.results.setItem(r, c, QTableWidgetItem(text))

    def _show_precision(self, text: str) -> None:
        self.precision_label.setText(text)
        self.precision_label.setVisible(bool(text))

    def precision_text(self) -> str:
        """"Quantised 1 of 3 layers to 4 bits: …" after a quantising run ("" otherwise)."""
        return self.precision_label.text()

    def result_rows(self) -> list[tuple[str, ...]]:
        """The before/after table as text rows (what the user reads)."""
        return [tuple(self.results.item(r, c).text() for c in range(self.results.columnCount()))
                for r in range(self.results.rowCount())]

    def result_folder(self) -> str:
        """The folder of the variant the last run wrote ("" when none)."""
        return self._result_folder

    def _open_variant(self) -> None:
        if self._result_folder:
            self.open_variant_requested.emit(self._result_folder)
