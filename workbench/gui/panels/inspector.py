"""The inspector: the selected node's parameters, or the project's settings when no node is
selected (dataset, encoder and time steps, training, compute, energy ledger). Every edit is an
undoable command on the document."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMenu,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.model.project import DEVICES, KERNELS, PRECISIONS, SEED_MAX, Component
from workbench.core.model.setting_paths import PROJECT_FIELDS, SWEEPABLE_KINDS
from workbench.gui.document import ProjectDocument
from workbench.gui.panels.param_form import ParamForm


class InspectorPanel(QScrollArea):
    """``sweep_requested(path)``: "Sweep this setting…" chosen on a field's context menu."""

    sweep_requested = Signal(str)

    def __init__(self, doc: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.doc = doc
        self.node_id = ""
        self._key: tuple[Any, ...] | None = None
        self.forms: dict[str, ParamForm] = {}
        self.fields: dict[str, QWidget] = {}
        doc.changed.connect(self.refresh)
        self.refresh()

    def set_document(self, doc: ProjectDocument) -> None:
        self.doc.changed.disconnect(self.refresh)
        self.doc = doc
        doc.changed.connect(self.refresh)
        self.node_id = ""
        self._key = None
        self.refresh()

    def show_node(self, node_id: str) -> None:
        self.node_id = node_id
        self.refresh()

    # -- building ----------------------------------------------------------------------------------
    def _current_key(self) -> tuple[Any, ...]:
        p = self.doc.project
        if self.node_id and self.node_id in p.graph.ids():
            node = p.graph.node(self.node_id)
            return ("node", node.id, node.spec, node.placeholder)
        return ("project", p.dataset.id, p.encoder.id, p.training.rule.id, p.energy.table)

    def refresh(self) -> None:
        key = self._current_key()
        if key != self._key:
            self._key = key
            self._build(key)
        self._update_values()

    def _build(self, key: tuple[Any, ...]) -> None:
        self.forms.clear()
        self.fields.clear()
        body = QWidget()
        layout = QVBoxLayout(body)
        if key[0] == "node":
            self._build_node(layout)
        else:
            self._build_project(layout)
        layout.addStretch(1)
        self.setWidget(body)
        self._offer_sweeps()

    # -- sweeps ------------------------------------------------------------------------------------
    def setting_editors(self) -> dict[str, QWidget]:
        """The editor of each setting shown, by its path (``training.rule.params.lr``,
        ``nodes.fc1.bits``, ``time_steps``)."""
        editors = {path: widget for path, widget in self.fields.items()
                   if path in PROJECT_FIELDS}
        for key, form in self.forms.items():
            prefix = f"nodes.{self.node_id}." if key == "node" else f"{key}.params."
            editors.update({prefix + p.name: form.editors[p.name] for p in form.params
                            if p.kind in SWEEPABLE_KINDS and p.name in form.editors})
        return editors

    def _offer_sweeps(self) -> None:
        """Each sweepable field's context menu gains "Sweep this setting…" (a text field
        keeps its own entries above it)."""
        for path, editor in self.setting_editors().items():
            editor.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            editor.customContextMenuRequested.connect(
                lambda pos, p=path, e=editor: self.context_menu(p, e).exec(e.mapToGlobal(pos)))

    def context_menu(self, path: str, editor: QWidget) -> QMenu:
        line = editor.lineEdit() if isinstance(editor, QAbstractSpinBox) else None
        menu = line.createStandardContextMenu() if line is not None else QMenu(editor)
        menu.setParent(editor, menu.windowFlags())
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if not menu.isEmpty():
            menu.addSeparator()
        sweep = menu.addAction("Sweep this setting…")
        sweep.setObjectName("sweep_setting_action")
        sweep.triggered.connect(lambda: self.sweep_requested.emit(path))
        return menu

    def _build_node(self, layout: QVBoxLayout) -> None:
        node = self.doc.project.graph.node(self.node_id)
        spec = self.doc.registry.get(node.spec)
        title = QLabel(f"<b>{node.id}</b> — {spec.display_name if spec else node.spec}")
        title.setObjectName("inspector_title")
        layout.addWidget(title)
        if spec is None or node.placeholder:
            hint = QLabel(f"<code>{node.spec}</code> comes from a plugin that is not installed. "
                          "Its parameters are kept and saved unchanged; install the plugin to "
                          "edit or train this node.")
            hint.setWordWrap(True)
            layout.addWidget(hint)
            return
        layout.addWidget(QLabel(f"<code>{spec.id}</code> · {self.doc.registry.provider(spec.id)}"))
        if spec.doc:
            doc = QLabel(spec.doc)
            doc.setWordWrap(True)
            layout.addWidget(doc)
        node_id = node.id
        form = ParamForm(spec.params, node.params,
                         lambda name, value: self.doc.set_node_param(node_id, name, value),
                         self.doc.neuron_specs())
        self.forms["node"] = form
        layout.addWidget(form)

    def _component_group(self, title: str, kind: str, path: str, component: Component,
                         extra: list[tuple[str, QWidget]] = ()) -> QGroupBox:
        box = QGroupBox(title)
        form_layout = QFormLayout(box)
        combo = QComboBox()
        combo.setObjectName(f"{path}_choice")
        for spec in self.doc.registry.of_kind(kind):
            combo.addItem(spec.display_name, spec.id)
        if combo.findData(component.id) < 0:
            combo.addItem(f"{component.id} (not installed)", component.id)
        combo.setCurrentIndex(combo.findData(component.id))
        combo.activated.connect(lambda i, c=combo: self.doc.set_setting(
            path, Component(c.itemData(i)), f"Choose {c.itemText(i)}"))
        form_layout.addRow(combo)
        for label, widget in extra:
            form_layout.addRow(label, widget)
        spec = self.doc.registry.get(component.id)
        if spec is not None and spec.params:
            form = ParamForm(spec.params, component.params,
                             lambda name, value: self.doc.set_setting(f"{path}.params.{name}", value,
                                                                      f"Set {name}"),
                             self.doc.neuron_specs())
            self.forms[path] = form
            form_layout.addRow(form)
        return box

    def _spin(self, name: str, path: str, low: int, high: int, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        spin.valueChanged.connect(lambda v: self.doc.set_setting(path, int(v)))
        self.fields[path] = spin
        return spin

    def _seed_field(self) -> QDoubleSpinBox:
        """The training seed over the core's whole range, 0 to 2**32 - 1: a QSpinBox stops at
        2**31 - 1 (a C int), so a seed the CLI accepts crashed it. A double holds every integer
        up to 2**53 exactly; with no decimals it reads and edits as a whole number."""
        spin = QDoubleSpinBox()
        spin.setObjectName("seed")
        spin.setDecimals(0)
        spin.setRange(0, SEED_MAX)
        spin.setKeyboardTracking(False)
        spin.setToolTip("Seeds weights and shuffling: the same seed, the same run")
        spin.valueChanged.connect(lambda v: self.doc.set_setting("training.seed", round(v)))
        self.fields["training.seed"] = spin
        return spin

    def _build_project(self, layout: QVBoxLayout) -> None:
        p = self.doc.project
        title = QLabel("<b>Project settings</b> — select a node to edit its parameters")
        title.setObjectName("inspector_title")
        title.setWordWrap(True)
        layout.addWidget(title)
        general = QGroupBox("Project")
        general_form = QFormLayout(general)
        name = QLineEdit()
        name.setObjectName("project_name")
        name.editingFinished.connect(lambda: self.doc.set_setting("name", name.text(), "Rename"))
        self.fields["name"] = name
        general_form.addRow("Name", name)
        description = QLineEdit()
        description.editingFinished.connect(
            lambda: self.doc.set_setting("description", description.text(), "Edit description"))
        self.fields["description"] = description
        general_form.addRow("Description", description)
        layout.addWidget(general)

        layout.addWidget(self._component_group("Dataset", "dataset", "dataset", p.dataset))
        steps = self._spin("time_steps", "time_steps", 1, 10_000,
                           "Time steps T each sample is presented for")
        layout.addWidget(self._component_group("Encoder", "encoder", "encoder", p.encoder,
                                               [("Time steps (T)", steps)]))
        extra = [
            ("Epochs", self._spin("epochs", "training.epochs", 0, 100_000, "Passes over the data")),
            ("Batch size", self._spin("batch_size", "training.batch_size", 1, 65_536,
                                      "Samples per optimiser step")),
            ("Seed", self._seed_field()),
        ]
        layout.addWidget(self._component_group("Training", "learning_rule", "training.rule",
                                               p.training.rule, extra))
        layout.addWidget(self._compute_group())
        layout.addWidget(self._energy_group())

    def _choice(self, name: str, path: str, items: list[tuple[str, str]], tip: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.setToolTip(tip)
        for text, value in items:
            combo.addItem(text, value)
        combo.activated.connect(lambda i: self.doc.set_setting(path, combo.itemData(i)))
        self.fields[path] = combo
        return combo

    def _compute_group(self) -> QGroupBox:
        """Where and how every run of the project computes (``project.compute``): the CLI and
        the GUI read the same settings from the project file."""
        box = QGroupBox("Compute")
        form = QFormLayout(box)
        device_text = {"auto": "auto (CUDA, then MPS, then CPU)", "cpu": "CPU",
                       "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}
        form.addRow("Device", self._choice(
            "compute_device", "compute.device", [(device_text.get(d, d), d) for d in DEVICES],
            "Where training, evaluation and the other runs compute; a device this machine "
            "lacks is reported when a run starts"))
        precision_text = {"fp32": "fp32 (full)", "bf16": "bf16 (mixed)",
                          "fp16": "fp16 (mixed, GPU)"}
        form.addRow("Precision", self._choice(
            "compute_precision", "compute.precision",
            [(precision_text.get(p, p), p) for p in PRECISIONS],
            "The arithmetic of forward passes: bf16/fp16 run under automatic mixed precision"))
        form.addRow("Threads", self._spin("compute_threads", "compute.threads", 0, 1024,
                                          "CPU threads a run uses (0 = the idle cores: the "
                                          "cores minus the machine's current load)"))
        self.fields["compute.threads"].setSpecialValueText("0 (auto)")
        kernel_text = {"auto": "auto (fused for large layers)", "eager": "eager (Python loop)",
                       "fused": "fused (compiled)"}
        form.addRow("Neuron kernels", self._choice(
            "compute_kernels", "compute.kernels", [(kernel_text[k], k) for k in KERNELS],
            "How spiking neurons run their time loop: fused kernels compile it once (seconds "
            "to a minute) and then run several times faster"))
        compile_box = QCheckBox("Compile the network for training")
        compile_box.setObjectName("compute_compile")
        compile_box.setToolTip("torch.compile the whole network: the first training step "
                               "compiles (shown as a step), later steps run faster")
        compile_box.toggled.connect(lambda v: self.doc.set_setting("compute.compile", bool(v)))
        self.fields["compute.compile"] = compile_box
        form.addRow(compile_box)
        return box

    def _energy_group(self) -> QGroupBox:
        box = QGroupBox("Energy ledger")
        form = QFormLayout(box)
        table = QComboBox()
        table.setObjectName("energy_table")
        for spec in self.doc.registry.of_kind("energy_model"):
            table.addItem(spec.display_name, spec.id)
            table.setItemData(table.count() - 1, spec.source, Qt.ItemDataRole.ToolTipRole)
        table.addItem("User-defined (energy.custom)", "custom")
        table.activated.connect(lambda i: self.doc.set_setting("energy.table", table.itemData(i),
                                                               "Choose cost table"))
        self.fields["energy.table"] = table
        form.addRow("Cost table", table)
        once = QCheckBox("Count a repeated input once")
        once.setToolTip("Direct encoding repeats the same input at every step; the first layer's "
                        "MACs then count once per sample (the literature's convention)")
        once.toggled.connect(lambda v: self.doc.set_setting("energy.encode_once", bool(v)))
        self.fields["energy.encode_once"] = once
        form.addRow(once)
        counting = QComboBox()
        counting.addItem("exact (per spike)", "exact")
        counting.addItem("rate × dense MACs", "rate")
        counting.activated.connect(lambda i: self.doc.set_setting("energy.sop_counting",
                                                                  counting.itemData(i)))
        self.fields["energy.sop_counting"] = counting
        form.addRow("SOP counting", counting)
        return box

    # -- values ------------------------------------------------------------------------------------
    def _update_values(self) -> None:
        p = self.doc.project
        if self._key and self._key[0] == "node":
            if "node" in self.forms:
                self.forms["node"].set_values(p.graph.node(self.node_id).params)
            return
        for path, component in (("dataset", p.dataset), ("encoder", p.encoder),
                                ("training.rule", p.training.rule)):
            if path in self.forms:
                self.forms[path].set_values(component.params)
        values = {"name": p.name, "description": p.description, "time_steps": p.time_steps,
                  "training.epochs": p.training.epochs,
                  "training.batch_size": p.training.batch_size, "training.seed": p.training.seed,
                  "energy.table": p.energy.table, "energy.encode_once": p.energy.encode_once,
                  "energy.sop_counting": p.energy.sop_counting,
                  "compute.device": p.compute.device, "compute.precision": p.compute.precision,
                  "compute.threads": p.compute.threads, "compute.kernels": p.compute.kernels,
                  "compute.compile": p.compute.compile}
        for path, value in values.items():
            widget = self.fields.get(path)
            if widget is None:
                continue
            widget.blockSignals(True)
            if isinstance(widget, QLineEdit):
                widget.setText(value)
            elif isinstance(widget, QSpinBox):
                widget.setValue(value)
            elif isinstance(widget, QDoubleSpinBox):  # the seed: a whole number past 2**31
                widget.setValue(float(value))
            elif isinstance(widget, QCheckBox):
                widget.setChecked(value)
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex(max(0, widget.findData(value)))
            widget.blockSignals(False)
        steps = self.fields.get("time_steps")
        if isinstance(steps, QSpinBox):
            # An encoder that sets T from the data (a signal becomes one step per sample point)
            # ignores the project's T: say so rather than offer a setting that does nothing.
            encoder = self.doc.registry.get(p.encoder.id)
            sets_steps = bool(getattr(encoder, "sets_time_steps", False))
            steps.setEnabled(not sets_steps)
            steps.setToolTip("This encoder sets T from the data (one step per sample point)"
                             if sets_steps else "Time steps T each sample is presented for")
