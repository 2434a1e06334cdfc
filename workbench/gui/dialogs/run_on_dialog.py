"""Run ▸ Run on…: where to send the training (a runner plugin: a Ray cluster, …), its
parameters (the cluster's address) and the epochs.

The dialog only chooses; :meth:`~workbench.gui.run_actions.RunActions.run_on` starts the core's
:func:`~workbench.core.runs.catalog.submit` as a training run, so the training panel and the
views show it as they show a local one, and Stop stops the job. The last choice is kept in the
settings (``run_on``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.specs import RunnerSpec
from workbench.gui.panels.param_form import ParamForm


def run_buttons(dialog: QDialog) -> QDialogButtonBox:
    """Run and Cancel, answering ``dialog``."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def runner_form(spec: RunnerSpec, remembered: dict[str, Any]) -> ParamForm:
    """The runner's parameters, at the values last used with it (``remembered``: the
    settings' ``run_on``), else its defaults."""
    same = remembered.get("id") == spec.id
    values = {**spec.defaults(), **(remembered.get("params", {}) if same else {})}
    return ParamForm(spec.params, values, lambda _name, _value: None)


class RunOnDialog(QDialog):
    """Pick a runner and its parameters; :meth:`choice` after it was accepted."""

    def __init__(self, runners: list[RunnerSpec], remembered: dict[str, Any], epochs: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run on")
        self.setObjectName("run_on_dialog")
        self._remembered = remembered
        self.runner = QComboBox()
        self.runner.setObjectName("runner")
        for spec in runners:
            self.runner.addItem(spec.display_name, spec)
        self.doc = QLabel()
        self.doc.setWordWrap(True)
        self.epochs = QSpinBox()
        self.epochs.setObjectName("epochs")
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(epochs)
        self.form: ParamForm | None = None
        self._form_box = QVBoxLayout()
        self._form_box.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        top.addRow("Runner", self.runner)
        top.addRow(self.doc)
        self.buttons = buttons = run_buttons(self)
        rest = QFormLayout()
        rest.addRow("Epochs", self.epochs)
        column = QVBoxLayout(self)
        column.addLayout(top)
        column.addLayout(self._form_box)
        column.addLayout(rest)
        column.addWidget(QLabel("The cluster trains the saved project; its weights come back "
                                "into the project when the job succeeds."))
        column.addWidget(buttons)
        index = next((i for i, spec in enumerate(runners) if spec.id == remembered.get("id")),
                     0)
        self.runner.setCurrentIndex(index)
        self.runner.currentIndexChanged.connect(lambda _i: self._show_runner())
        self._show_runner()

    @property
    def spec(self) -> RunnerSpec:
        return self.runner.currentData()

    def _show_runner(self) -> None:
        if self.form is not None:
            self.form.deleteLater()
        spec = self.spec
        self.doc.setText(spec.doc)
        self.form = runner_form(spec, self._remembered)
        self._form_box.addWidget(self.form)

    def choice(self) -> dict[str, Any]:
        """``{"id", "params", "epochs"}`` as the dialog shows them (what the settings keep)."""
        assert self.form is not None
        params = {p.name: self.form.value(p.name) for p in self.spec.params}
        return {"id": self.spec.id, "params": params, "epochs": self.epochs.value()}
