"""Forms generated from :class:`ParamSpec` tuples: the same description drives the project file
and the GUI, so a plugin's parameters get an editor without any Qt code of its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from workbench.core.model.specs import NeuronSpec, ParamSpec

OnChange = Callable[[str, Any], None]


def _tooltip(p: ParamSpec) -> str:
    parts = [f"<b>{p.title}</b> <code>{p.name}</code>"]  # the name --param takes
    if p.doc:
        parts.append(p.doc)
    bounds = []
    if p.low is not None:
        bounds.append(f"min {p.low:g}")
    if p.high is not None:
        bounds.append(f"max {p.high:g}")
    if bounds:
        parts.append(", ".join(bounds) + (f" {p.unit}" if p.unit else ""))
    parts.append(f"default {p.default!r}")
    return "<br>".join(parts)


def _decimals(p: ParamSpec) -> int:
    values = [abs(v) for v in (p.default, p.low, p.high) if isinstance(v, (int, float)) and v]
    smallest = min(values) if values else 1.0
    return max(2, min(8, 2 - int(math.floor(math.log10(smallest))) if smallest < 1 else 3))


class ParamForm(QWidget):
    """Editors for ``params``; ``on_change(name, value)`` after each committed edit.

    ``set_values`` refreshes the editors in place (signals blocked), so an undo updates the
    form without rebuilding it under the user's cursor.
    """

    def __init__(self, params: tuple[ParamSpec, ...], values: dict[str, Any], on_change: OnChange,
                 neuron_specs: list[NeuronSpec] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = params
        self.on_change = on_change
        self.neuron_specs = {s.id: s for s in neuron_specs}
        self.editors: dict[str, QWidget] = {}
        self._values: dict[str, Any] = {}
        self._neuron_forms: dict[str, ParamForm] = {}
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for p in params:
            editor = self._make_editor(p)
            editor.setToolTip(_tooltip(p))
            editor.setObjectName(f"param_{p.name}")
            self.editors[p.name] = editor
            label = p.label_with_unit
            self.layout_.addRow(label, editor)
        self.set_values(values)

    # -- editors ---------------------------------------------------------------------------------
    def _make_editor(self, p: ParamSpec) -> QWidget:
        if p.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda v, n=p.name: self.on_change(n, bool(v)))
            return box
        if p.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(p.low) if p.low is not None else -(2**31),
                          int(p.high) if p.high is not None else 2**31 - 1)
            spin.setKeyboardTracking(False)  # commit on Enter/focus-out, not per keystroke
            spin.valueChanged.connect(lambda v, n=p.name: self.on_change(n, int(v)))
            return spin
        if p.kind == "float":
            spin = QDoubleSpinBox()
            spin.setDecimals(_decimals(p))
            spin.setRange(p.low if p.low is not None else -1e12, p.high if p.high is not None else 1e12)
            spin.setSingleStep(10 ** -min(spin.decimals(), 3))
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, n=p.name: self.on_change(n, float(v)))
            return spin
        if p.kind == "choice":
            combo = QComboBox()
            for choice in p.choices:
                combo.addItem(str(choice), choice)
            combo.activated.connect(lambda i, n=p.name, c=combo: self.on_change(n, c.itemData(i)))
            return combo
        if p.kind == "neuron":
            return self._neuron_editor(p)
        line = QLineEdit()
        line.editingFinished.connect(lambda n=p.name, e=line: self.on_change(n, e.text()))
        if p.kind not in ("path", "file"):
            return line
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(line)
        browse = QPushButton("…")
        browse.setToolTip("Choose a file or folder")
        browse.clicked.connect(lambda _=False, p=p, e=line: self._browse(p, e))
        row.addWidget(browse)
        holder.line_edit = line  # type: ignore[attr-defined]
        return holder

    def _browse(self, p: ParamSpec, line: QLineEdit) -> None:
        if p.kind == "file":
            chosen, _ = QFileDialog.getOpenFileName(self, f"Choose {p.title.lower()}", line.text())
        else:
            chosen = QFileDialog.getExistingDirectory(self, f"Choose {p.title.lower()}",
                                                      line.text())
        if chosen:
            line.setText(chosen)
            self.on_change(p.name, chosen)

    def _neuron_editor(self, p: ParamSpec) -> QWidget:
        holder = QWidget()
        layout = QFormLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        combo = QComboBox()
        for spec in self.neuron_specs.values():
            combo.addItem(spec.display_name, spec.id)
        combo.activated.connect(
            lambda i, n=p.name, c=combo: self.on_change(n, {"id": c.itemData(i), "params": {}}))
        layout.addRow(combo)
        holder.combo = combo  # type: ignore[attr-defined]
        holder.form_layout = layout  # type: ignore[attr-defined]
        return holder

    # -- values ----------------------------------------------------------------------------------
    def set_values(self, values: dict[str, Any]) -> None:
        self._values = dict(values)
        for p in self.params:
            value = values.get(p.name, p.default)
            editor = self.editors[p.name]
            editor.blockSignals(True)
            try:
                self._set_value(p, editor, value)
            finally:
                editor.blockSignals(False)

    def _set_value(self, p: ParamSpec, editor: QWidget, value: Any) -> None:
        if p.kind == "bool":
            editor.setChecked(bool(value))
        elif p.kind in ("int", "float"):
            editor.setValue(value)
        elif p.kind == "choice":
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif p.kind == "neuron":
            self._set_neuron(p, editor, value)
        elif p.kind in ("path", "file"):
            editor.line_edit.setText(str(value))
        else:
            editor.setText(str(value))

    def _set_neuron(self, p: ParamSpec, editor: QWidget, value: Any) -> None:
        choice = p.coerce(value)
        combo = editor.combo
        combo.blockSignals(True)
        combo.setCurrentIndex(max(0, combo.findData(choice["id"])))
        combo.blockSignals(False)
        spec = self.neuron_specs.get(choice["id"])
        form = self._neuron_forms.get(p.name)
        if form is not None and (spec is None or form.params != spec.params):
            editor.form_layout.removeRow(form)
            form = None
        if spec is not None and form is None:
            def changed(name: str, v: Any, p=p) -> None:
                current = p.coerce(self._values.get(p.name, p.default))
                self.on_change(p.name, {"id": current["id"],
                                        "params": {**current["params"], name: v}})

            form = ParamForm(spec.params, choice["params"], changed)
            editor.form_layout.addRow(form)
        if form is not None:
            form.set_values(choice["params"])
        self._neuron_forms[p.name] = form

    def value(self, name: str) -> Any:
        p = next(p for p in self.params if p.name == name)
        editor = self.editors[name]
        if p.kind == "bool":
            return editor.isChecked()
        if p.kind in ("int", "float"):
            return editor.value()
        if p.kind == "choice":
            return editor.currentData()
        if p.kind == "neuron":
            return editor.combo.currentData()
        if p.kind in ("path", "file"):
            return editor.line_edit.text()
        return editor.text()

