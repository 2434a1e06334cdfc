"""Run ▸ Sweep… (or "Sweep this setting…" on an inspector field): which settings to vary and
their values, where the trials train (here, or a runner plugin such as a Ray cluster) and for how
many epochs.

Each axis is a setting and its values ("0.001, 0.003, 0.01"); *Fill* writes evenly or
logarithmically spaced values into the axis last edited. The line under the axes says how many
trials that makes and where they go, or what is wrong with a value (then Run is disabled): the
values are checked by the same core function the run uses
(:func:`workbench.core.runs.sweep.check_axes`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import Project
from workbench.core.model.setting_paths import Setting, settings
from workbench.core.model.specs import RunnerSpec, SpecLookup
from workbench.core.runs.sweep import (
    SweepAxis,
    check_axes,
    parse_values,
    spaced,
    sweep_name,
    trial_values,
)
from workbench.gui.dialogs.run_on_dialog import run_buttons, runner_form
from workbench.gui.panels.param_form import ParamForm

#: what a new axis varies first, when the project has it and it is not varied yet
FIRST_CHOICES = ("training.rule.params.lr", "time_steps")
#: the "where" entry for training the trials in this app
HERE = "This computer (one trial at a time)"


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class AxisRow(QWidget):
    """One axis: the setting and its values."""

    def __init__(self, choices: list[Setting], path: str, on_change: Any,
                 on_remove: Any) -> None:
        super().__init__()
        self.setting = QComboBox()
        self.setting.setObjectName("sweep_setting")
        for item in choices:
            self.setting.addItem(item.title, item)
        index = next((i for i, item in enumerate(choices) if item.path == path), 0)
        self.setting.setCurrentIndex(index)
        self.values = QLineEdit()
        self.values.setObjectName("sweep_values")
        self.values.setPlaceholderText("values, e.g. 0.001, 0.003, 0.01")
        remove = QPushButton("Remove")
        remove.setToolTip("Do not vary this setting")
        remove.clicked.connect(lambda: on_remove(self))
        self.remove_button = remove
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.setting, 2)
        row.addWidget(self.values, 3)
        row.addWidget(remove)
        self.setting.currentIndexChanged.connect(lambda _i: self._suggest(on_change))
        self.values.textChanged.connect(lambda _t: on_change(self))
        self._suggest(on_change)

    @property
    def current(self) -> Setting:
        return self.setting.currentData()

    def _suggest(self, on_change: Any) -> None:
        """A starting point: the choices of a choice, both values of a switch, else the value
        the setting has now."""
        param, value = self.current.param, self.current.value
        value = param.default if value is None else value
        if param.kind == "choice":
            self.values.setText(", ".join(_value_text(c) for c in param.choices))
        elif param.kind == "bool":
            self.values.setText("false, true")
        else:
            self.values.setText(_value_text(value))
        on_change(self)

    def axis(self) -> SweepAxis:
        return SweepAxis(self.current.path,
                         parse_values(self.values.text(), where=self.current.path))


class SweepDialog(QDialog):
    """Choose the axes, the runner and the epochs; :meth:`choice` after it was accepted."""

    def __init__(self, project: Project, lookup: SpecLookup, runners: list[RunnerSpec],
                 remembered: dict[str, Any], *, path: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sweep")
        self.setObjectName("sweep_dialog")
        self.setMinimumWidth(620)
        self.project, self.lookup = project, lookup
        self._remembered = remembered
        self.choices = settings(project, lookup)
        self.rows: list[AxisRow] = []
        self._current: AxisRow | None = None
        self._axes_box = QVBoxLayout()
        add = QPushButton("Add a setting")
        add.setObjectName("sweep_add")
        add.setToolTip("Vary another setting too: the trials are every combination")
        add.clicked.connect(lambda: self.add_axis(""))
        self.add_button = add

        # Fill: spaced values into the axis last edited
        self.fill_from, self.fill_to = QDoubleSpinBox(), QDoubleSpinBox()
        for spin in (self.fill_from, self.fill_to):
            spin.setDecimals(6)
            spin.setRange(-1e9, 1e9)
        self.fill_count = QSpinBox()
        self.fill_count.setRange(2, 64)
        self.fill_count.setValue(4)
        self.fill_log = QCheckBox("log")
        self.fill_log.setToolTip("Geometric spacing (each value a fixed factor above the last)")
        fill = QPushButton("Fill")
        fill.setObjectName("sweep_fill")
        fill.setToolTip("Write these values into the setting last edited")
        fill.clicked.connect(self.fill)
        self.fill_button = fill
        fill_row = QHBoxLayout()
        for widget in (QLabel("From"), self.fill_from, QLabel("to"), self.fill_to,
                       QLabel("count"), self.fill_count, self.fill_log, fill):
            fill_row.addWidget(widget)

        self.where = QComboBox()
        self.where.setObjectName("sweep_where")
        self.where.addItem(HERE, None)
        for spec in runners:
            self.where.addItem(spec.display_name, spec)
        self.runner_doc = QLabel()
        self.runner_doc.setWordWrap(True)
        self.form: ParamForm | None = None
        self._form_box = QVBoxLayout()
        self._form_box.setContentsMargins(0, 0, 0, 0)
        self.parallel = QSpinBox()
        self.parallel.setObjectName("sweep_parallel")
        self.parallel.setRange(1, 64)
        self.parallel.setToolTip("Jobs on the cluster at once")
        self.epochs = QSpinBox()
        self.epochs.setObjectName("sweep_epochs")
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(max(1, project.training.epochs))
        self.epochs.setToolTip("Epochs each trial trains for, from fresh weights")
        self.preview = QLabel()
        self.preview.setObjectName("sweep_preview")
        self.preview.setWordWrap(True)

        self.buttons = buttons = run_buttons(self)

        where_form = QFormLayout()
        where_form.addRow("Train on", self.where)
        where_form.addRow(self.runner_doc)
        rest = QFormLayout()
        rest.addRow("Jobs at once", self.parallel)
        rest.addRow("Epochs per trial", self.epochs)
        column = QVBoxLayout(self)
        column.addWidget(QLabel("Each trial is a variant of the project trained from fresh "
                                "weights; compare them in the Variants view."))
        column.addLayout(self._axes_box)
        column.addWidget(add)
        column.addLayout(fill_row)
        column.addLayout(where_form)
        column.addLayout(self._form_box)
        column.addLayout(rest)
        column.addWidget(self.preview)
        column.addWidget(buttons)
        index = next((i for i in range(1, self.where.count())
                      if self.where.itemData(i).id == remembered.get("id")), 0)
        self.where.setCurrentIndex(index)
        self.where.currentIndexChanged.connect(lambda _i: self._show_runner())
        self._show_runner()
        self.add_axis(path)

    # -- axes --------------------------------------------------------------------------------
    def add_axis(self, path: str) -> AxisRow:
        if not self.choices:
            raise WorkbenchError("this project has no setting a sweep can vary")
        taken = {row.current.path for row in self.rows}
        if not path:  # the learning rate first (the usual first sweep), then the next one free
            free = [s.path for s in self.choices if s.path not in taken]
            path = next((p for p in FIRST_CHOICES if p in free), free[0] if free else "")
        row = AxisRow(self.choices, path, self._axis_changed, self.remove_axis)
        self.rows.append(row)
        self._axes_box.addWidget(row)
        self._axis_changed(row)
        return row

    def remove_axis(self, row: AxisRow) -> None:
        if len(self.rows) == 1:
            return  # a sweep varies at least one setting
        self.rows.remove(row)
        row.deleteLater()
        if self._current is row:
            self._current = self.rows[-1]
        self._update()

    def _axis_changed(self, row: AxisRow) -> None:
        self._current = row
        for item in self.rows:
            item.remove_button.setEnabled(len(self.rows) > 1)
        param = row.current.param
        numeric = param.kind in ("int", "float")
        for widget in (self.fill_from, self.fill_to, self.fill_count, self.fill_log,
                       self.fill_button):
            widget.setEnabled(numeric)
        self._update()

    def fill(self) -> None:
        """Spaced values from *From* to *To* into the axis last edited."""
        row = self._current or self.rows[-1]
        param = row.current.param
        try:
            values = spaced(self.fill_from.value(), self.fill_to.value(),
                            self.fill_count.value(), log=self.fill_log.isChecked(),
                            integer=param.kind == "int")
        except WorkbenchError as exc:
            self.preview.setText(f"Fill: {exc.message}")
            return
        row.values.setText(", ".join(_value_text(v) for v in values))

    # -- the runner ----------------------------------------------------------------------------
    @property
    def runner(self) -> RunnerSpec | None:
        return self.where.currentData()

    def _show_runner(self) -> None:
        if self.form is not None:
            self.form.deleteLater()
            self.form = None
        spec = self.runner
        self.parallel.setEnabled(spec is not None)
        if spec is None:
            self.parallel.setValue(1)
            self.runner_doc.setText("The trials train in this app, one after another.")
            return
        self.runner_doc.setText(spec.doc)
        self.form = runner_form(spec, self._remembered)
        self._form_box.addWidget(self.form)

    # -- the result ----------------------------------------------------------------------------
    def axes(self) -> list[SweepAxis]:
        """The axes as checked by the core; raises :class:`WorkbenchError` naming a bad one."""
        return check_axes(self.project, self.lookup, [row.axis() for row in self.rows])

    def _update(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            axes = self.axes()
        except WorkbenchError as exc:
            self.preview.setText(f"<span style='color:#c0392b'>{exc}</span>")
            ok.setEnabled(False)
            return
        count = len(trial_values(axes))
        name = sweep_name(self.project.folder, axes) if self.project.folder else "sweep"
        last = f" … {name}-t{count:02d}" if count > 1 else ""
        self.preview.setText(f"{count} trial{'s' if count != 1 else ''}, saved as variants/"
                             f"{name}-t01{last}")
        ok.setEnabled(True)

    def choice(self) -> dict[str, Any]:
        """``{"axes", "runner", "params", "parallel", "epochs"}`` as the dialog shows them."""
        spec = self.runner
        params = ({p.name: self.form.value(p.name) for p in spec.params}
                  if spec is not None and self.form is not None else {})
        return {"axes": self.axes(), "runner": spec.id if spec is not None else None,
                "params": params, "parallel": self.parallel.value(),
                "epochs": self.epochs.value()}
