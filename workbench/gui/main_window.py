"""The main window: the network editor in the middle, dockable panels around it."""

from __future__ import annotations

import base64
import logging
import traceback
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.build.energy import CostTable, reprice
from workbench.core.build.report import CompileReport
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component, Project
from workbench.core.persistence.examples import default_project, list_examples
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.weights import load_weights
from workbench.core.runs.events import EnergySample, RunEvent, RunFinished
from workbench.core.runs.session import Session
from workbench.gui import recovery
from workbench.gui.dialogs.about import show_about
from workbench.gui.dialogs.compress_dialog import CompressDialog, RunContext, run_readiness
from workbench.gui.dialogs.plugins_dialog import PluginsDialog
from workbench.gui.document import ProjectDocument
from workbench.gui.editor import NetworkEditor
from workbench.gui.panels.deploy import DeployPanel
from workbench.gui.panels.inspector import InspectorPanel
from workbench.gui.panels.log_panel import LogPanel
from workbench.gui.panels.palette import NODE_KINDS, PalettePanel
from workbench.gui.panels.training import TrainingPanel
from workbench.gui.run_controller import RunController, probe_sample
from workbench.gui.settings import AppSettings
from workbench.gui.theme import apply_theme, icon
from workbench.gui.views import EnergyView, FiringRateView, MembraneView, SpikeRasterView
from workbench.gui.views.compare import VariantsView
from workbench.pluginhost.manager import PluginFailure, PluginHost

log = logging.getLogger(__name__)

APP_NAME = "SNN Workbench"
VALIDATE_DELAY_MS = 150
PROBE_POLL_MS = 100  # the views take new probes at most 10 times a second


def new_project() -> Project:
    """A small starting point: flatten -> spiking linear -> linear on the embedded digits."""
    graph = Graph.chain([Node("flat", "wb_core.flatten"),
                         Node("fc1", "wb_core.spiking_linear", {"out_features": 128}),
                         Node("fc2", "wb_core.linear", {"out_features": 10})])
    return Project("untitled", graph)


class MainWindow(QMainWindow):
    project_opened = Signal(str)

    def __init__(self, host: PluginHost, settings: AppSettings | None = None,
                 project: Project | None = None) -> None:
        super().__init__()
        self.host = host
        self.settings = settings or AppSettings()
        self.controller = RunController(self)
        self.weights_dirty = False
        self.last_message = ""
        self.report: CompileReport | None = None
        self._probe_seq = 0
        self._probe_item: dict[str, Any] | None = None
        self._probe_shown: dict[str, int] = {}
        self._validated_key = ""
        self._energy_report: dict[str, Any] | None = None
        self._side_runs: set[str] = set()  # compress/deploy runs: their dialog shows the events
        self.compress_dialog: CompressDialog | None = None
        self.setWindowIcon(icon("app"))
        self.resize(1400, 900)

        # One undo group: the Edit menu's actions follow whichever document is open.
        self.undo_group = QUndoGroup(self)
        self.doc = ProjectDocument(project or new_project(), host.registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.session = Session(self.doc.project, host.registry)
        self.editor = NetworkEditor(self.doc)
        self.setCentralWidget(self.editor)
        self._build_docks()
        self._build_actions()
        self._build_status_bar()
        self._connect_document()

        self.controller.run_event.connect(self._on_run_event)
        self.controller.run_finished.connect(self._on_run_finished)
        self.controller.state_changed.connect(self._on_state_changed)
        self._validate_timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS)
        self._validate_timer.timeout.connect(self.validate_now)
        self._probe_timer = QTimer(self, interval=PROBE_POLL_MS)
        self._probe_timer.timeout.connect(self._poll_probe)
        self._probe_timer.start()
        self._autosave_timer = QTimer(self, interval=max(5, self.settings.autosave_seconds) * 1000)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self._autosave_timer.start()
        self._restore_layout()
        self._after_open()

    # -- construction --------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea,
              tab_with: QDockWidget | None = None) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState() needs names
        dock.setWidget(widget)
        if tab_with is None:
            self.addDockWidget(area, dock)
        else:
            # Tabify straight away: adding side by side first squeezes wide panels below their
            # minimum width and leaves a stray tab bar behind.
            self.tabifyDockWidget(tab_with, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.palette = PalettePanel(self.host.registry)
        self.palette.spec_activated.connect(self._on_spec_activated)
        self.inspector = InspectorPanel(self.doc)
        self.training = TrainingPanel(self.doc)
        self.raster = SpikeRasterView()
        self.membrane = MembraneView()
        self.rates = FiringRateView()
        self.energy = EnergyView()
        self.energy.set_tables(self._tables(), self.doc.project.energy.table)
        self.energy.table_changed.connect(self._on_table_changed)
        self.log_panel = LogPanel()

        probe_bar = QWidget()
        row = QHBoxLayout(probe_bar)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(QLabel("Test sample"))
        self.sample_spin = QSpinBox(minimum=0, maximum=0)
        self.sample_spin.setToolTip("Which test sample the raster, membranes and rates show; "
                                    "during training this sample is probed live")
        row.addWidget(self.sample_spin)
        show = QPushButton("Show")
        show.clicked.connect(lambda: self.probe_now(self.sample_spin.value()))
        row.addWidget(show)
        row.addStretch(1)
        raster_box = QWidget()
        col = QVBoxLayout(raster_box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(probe_bar)
        col.addWidget(self.raster, 1)

        docks: dict[str, QDockWidget] = {}
        # One tab group only: with PySide6 6.11 a second tabified group leaves a stray copy of
        # its tab bar visible at its first position (seen offscreen).
        docks["training"] = self._dock("Training", "training_dock", self.training, bottom)
        for name, title, widget in (("energy", "Energy ledger", self.energy),
                                    ("raster", "Spike raster", raster_box),
                                    ("membrane", "Membrane traces", self.membrane),
                                    ("rates", "Firing rates", self.rates),
                                    ("log", "Log", self.log_panel)):
            docks[name] = self._dock(title, f"{name}_dock", widget, bottom, docks["training"])
        # -- compression and deployment: the variants comparison and the deploy panel
        self.variants = VariantsView()
        self.variants.open_requested.connect(self.open_project)
        self.variants.set_project(self.doc.project)
        self.deploy_panel = DeployPanel(self.host.registry, self.controller, self.start_run,
                                        self.run_context)
        self.deploy_panel.use_choice(self.doc.project.deploy)
        self.deploy_panel.deployed.connect(self._on_deployed)
        docks["variants"] = self._dock("Variants", "variants_dock", self.variants, bottom,
                                       docks["training"])
        docks["deploy"] = self._dock("Deploy", "deploy_dock", self.deploy_panel, bottom,
                                     docks["training"])
        # -- end compression and deployment
        docks["palette"] = self._dock("Palette", "palette_dock", self.palette, left)
        docks["inspector"] = self._dock("Inspector", "inspector_dock", self.inspector, right)
        self.plugin_views: dict[str, QWidget] = {}
        for spec in self.host.registry.of_kind("view"):
            try:  # plugin code: a view that fails to build is reported, the app carries on
                widget = spec.create()
            except Exception as exc:
                plugin = self.host.registry.provider(spec.id)
                log.error("the view %s of plugin %s failed to open: %s", spec.id, plugin, exc)
                self.host.report.failures.append(PluginFailure(
                    plugin, f"view {spec.id}", f"{type(exc).__name__}: {exc}",
                    traceback.format_exc()))
                continue
            self.plugin_views[spec.id] = widget
            docks[spec.id] = self._dock(spec.display_name, f"{spec.id}_dock", widget, bottom,
                                        docks["training"])
        self.docks = docks
        self.docks["training"].raise_()
        # Side panels ~260 and ~380 px wide; the bottom panels get room for their plots.
        self.resizeDocks([self.docks["palette"], self.docks["inspector"]], [260, 380],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["training"]], [440], Qt.Orientation.Vertical)

        self.training.train_requested.connect(lambda fresh: self.start_training(fresh=fresh))
        self.training.stop_requested.connect(self.stop_run)
        self.training.pause_requested.connect(self.pause_run)
        self.training.evaluate_requested.connect(self.start_evaluation)
        self.training.load_weights_requested.connect(lambda: self.load_weights())

    def _action(self, text: str, slot, shortcut: Any = None, icon_name: str = "",
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon_name:
            action.setIcon(icon(icon_name))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.act_new = self._action("&New", self.new_project, QKeySequence.StandardKey.New, "new")
        self.act_open = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open, "open")
        self.act_save = self._action("&Save", self.save, QKeySequence.StandardKey.Save, "save")
        self.act_save_as = self._action("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        file_menu.addActions([self.act_new, self.act_open])
        self.examples_menu = file_menu.addMenu("Examples")
        for folder in list_examples():
            self.examples_menu.addAction(self._action(folder.name, lambda f=folder: self.open_project(f)))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        file_menu.addSeparator()
        file_menu.addActions([self.act_save, self.act_save_as])
        file_menu.addSeparator()
        self.act_import_nir = self._action("&Import NIR…", self.import_nir_dialog)
        self.act_export_nir = self._action("&Export NIR…", self.export_nir_dialog)
        file_menu.addActions([self.act_import_nir, self.act_export_nir])
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        edit = bar.addMenu("&Edit")
        self.act_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence("Ctrl+Z"))
        self.act_redo = self.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addAction(self._action("Delete selected nodes (Del)", self.delete_selection))
        edit.addAction(self._action("Duplicate selected nodes", self.duplicate_selection,
                                    "Ctrl+D"))
        edit.addAction(self._action("Auto-layout", self.auto_layout, "Ctrl+L"))

        network = bar.addMenu("&Network")
        self.act_compress = self._action("&Compress…", self.show_compress_dialog,
                                         tip="Quantise, prune or binarise the trained network "
                                             "into a variant")
        self.act_deploy = self._action("&Deploy…", self.show_deploy_panel,
                                       tip="Deploy the trained network to a simulator or board")
        self.act_variants = self._action("Compare &variants", self.show_variants,
                                         tip="The project beside its compressed variants")
        network.addActions([self.act_compress, self.act_deploy, self.act_variants])

        run = bar.addMenu("&Run")
        self.act_train = self._action("&Train", self.start_training, "F5", "train",
                                      "Train the network")
        self.act_pause = self._action("&Pause / resume", self.toggle_pause, "F6", "pause")
        self.act_stop = self._action("&Stop", self.stop_run, "Esc", "stop",
                                     "Stop the run within one batch")
        self.act_evaluate = self._action("&Evaluate", self.start_evaluation, "F7", "evaluate",
                                         "Accuracy and energy on the test set")
        run.addActions([self.act_train, self.act_pause, self.act_stop, self.act_evaluate])
        run.addSeparator()
        run.addAction(self._action("Load weights…", self.load_weights))

        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        themes = QActionGroup(self)
        for name in ("light", "dark"):
            act = QAction(f"{name.capitalize()} theme", self, checkable=True)
            act.setChecked(self.settings.theme == name)
            act.triggered.connect(lambda checked=False, n=name: self.set_theme(n))
            themes.addAction(act)
            view.addAction(act)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&Plugins…", self.show_plugins))
        help_menu.addAction(self._action("&About", lambda: show_about(
            self, [p.name for p in self.host.report.plugins])))

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.addActions([self.act_new, self.act_open, self.act_save])
        toolbar.addSeparator()
        toolbar.addActions([self.act_train, self.act_pause, self.act_stop, self.act_evaluate])
        self._on_state_changed("idle")

    def _build_status_bar(self) -> None:
        self.run_state = QLabel("Idle")
        self.statusBar().addPermanentWidget(self.run_state)
        failures = len(self.host.report.failures)
        self.plugin_badge = QPushButton(f"⚠ {failures} plugin failure(s)")
        self.plugin_badge.setFlat(True)
        self.plugin_badge.setVisible(failures > 0)
        self.plugin_badge.clicked.connect(self.show_plugins)
        self.statusBar().addPermanentWidget(self.plugin_badge)

    def _connect_document(self) -> None:
        self.doc.changed.connect(self._validate_timer_start)
        self.doc.changed.connect(self._update_title)
        self.doc.graph_edited.connect(self._on_graph_edited)
        self.doc.dirty_changed.connect(lambda _: self._update_title())
        self.editor.node_selected.connect(self.inspector.show_node)

    # -- document lifecycle --------------------------------------------------------------------
    def set_project(self, project: Project, *, dirty: bool = False) -> None:
        if self.controller.busy:
            self.controller.shutdown()
        old = self.doc
        self.doc = ProjectDocument(project, self.host.registry, self)
        self.undo_group.addStack(self.doc.undo_stack)
        self.undo_group.setActiveStack(self.doc.undo_stack)
        self.undo_group.removeStack(old.undo_stack)
        self.session = Session(project, self.host.registry)
        self.weights_dirty = False
        self.editor = NetworkEditor(self.doc)
        self.setCentralWidget(self.editor)
        self.inspector.set_document(self.doc)
        self.training.set_document(self.doc)
        self._connect_document()
        if dirty:
            self.doc.undo_stack.resetClean()
        old.deleteLater()
        self.energy.set_tables(self._tables(), project.energy.table)
        self.energy.set_report(None)
        self._energy_report = None
        self.training.metrics.clear()
        self.variants.set_project(project)
        self.deploy_panel.use_choice(project.deploy)
        if self.compress_dialog is not None:
            self.compress_dialog.reset_destination()
        self._after_open()

    def _after_open(self) -> None:
        for note in self.doc.notes:
            log.warning(note)
        self._update_title()
        self.validate_now()
        weights = self.doc.project.weights_path
        if weights is not None and weights.exists() and self.report is not None and self.report.ok:
            try:
                self.session.build()
            except WorkbenchError as exc:
                self.show_error("Weights not loaded", str(exc))
            else:
                log.info("loaded %s", weights)
        if self.report is not None and self.report.ok:
            self.probe_now(0)
        if self.doc.project.folder is not None:
            self.project_opened.emit(str(self.doc.project.folder))

    def _update_title(self) -> None:
        project = self.doc.project
        where = f" — {project.folder}" if project.folder else ""
        self.setWindowTitle(f"{project.name}[*]{where} — {APP_NAME}")
        self.setWindowModified(self.doc.dirty or self.weights_dirty)
        self._refresh_compress_deploy()

    @property
    def is_dirty(self) -> bool:
        return self.doc.dirty or self.weights_dirty

    def new_project(self) -> None:
        if self.confirm_discard():
            self.set_project(new_project())

    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project folder")
        if folder:
            self.open_project(folder)

    def open_project(self, path: str | Path, *, ask: bool = True) -> bool:
        if ask and not self.confirm_discard():
            return False
        try:
            project = load_project(path)
        except WorkbenchError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        self.set_project(project)
        self.settings.add_recent(project.folder)
        self.settings.save()
        self._fill_recent()
        return True

    # -- NIR files (through whichever backend plugin speaks the format) ------------------------
    def _nir_backend(self) -> Any | None:
        spec = self.host.registry.backend_for_format("nir")
        if spec is None:
            self.show_error("NIR", "No installed plugin reads or writes NIR files (see Help ▸ "
                                   "Plugins).")
            return None
        return spec.create()

    def import_nir_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a NIR graph", "",
                                              "NIR graphs (*.nir);;All files (*)")
        if path:
            self.import_nir(path)

    def import_nir(self, path: str | Path, folder: str | Path | None = None) -> bool:
        """Turn a NIR file into a project (by default a new folder beside the file, named after
        it) and open it."""
        path = Path(path)
        if folder is None:
            folder = path.with_suffix("")
            n = 2
            while folder.exists():
                folder, n = path.with_name(f"{path.stem}-{n}"), n + 1
        backend = self._nir_backend()
        if backend is None or not self.confirm_discard():
            return False
        try:
            made = backend.import_file(path, folder, self.host.registry)
        except WorkbenchError as exc:
            self.show_error("Cannot import the NIR file", str(exc))
            return False
        if not self.open_project(made, ask=False):
            return False
        self.statusBar().showMessage(f"Imported {path.name} as {made}", 10_000)
        return True

    def export_nir_dialog(self) -> None:
        start = str((self.doc.project.folder or Path.cwd()) / f"{self.doc.project.name}.nir")
        path, _ = QFileDialog.getSaveFileName(self, "Export as a NIR graph", start,
                                              "NIR graphs (*.nir)")
        if path:
            self.export_nir(path)

    def export_nir(self, path: str | Path) -> bool:
        """Write the open project's trained network as a NIR graph."""
        reason = run_readiness(self.doc.project, weights_dirty=self.weights_dirty,
                               weights_match_graph=self.doc.weights_match_graph, verb="export it")
        if reason:
            self.show_error("Cannot export", reason)
            return False
        backend = self._nir_backend()
        if backend is None:
            return False
        session = Session(self.doc.project, self.host.registry)
        try:
            session.build()
            backend.export_file(session, path)
        except WorkbenchError as exc:
            self.show_error("Cannot export to NIR", str(exc))
            return False
        self.statusBar().showMessage(f"Wrote {path}", 10_000)
        return True

    def save(self) -> bool:
        if self.doc.project.folder is None:
            return self.save_as()
        return self._save_to(self.doc.project.folder)

    def save_as(self, folder: str | Path | None = None) -> bool:
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Save project into folder")
            if not folder:
                return False
        return self._save_to(Path(folder))

    def _save_to(self, folder: Path) -> bool:
        project = self.doc.project
        old_recovery = recovery.recovery_file(project)
        try:
            save_project(project, folder)
            if self.session.model is not None and (self.weights_dirty or not
                                                   (folder / "weights.safetensors").exists()):
                self.session.save_weights(folder / "weights.safetensors")
        except (WorkbenchError, OSError) as exc:
            self.show_error("Save failed", f"{exc}\nYour work is still open and unsaved.")
            return False
        old_recovery.unlink(missing_ok=True)
        recovery.discard_recovery(project)
        self.doc.mark_saved()
        self.weights_dirty = False
        self.settings.add_recent(folder)
        self.settings.save()
        self._fill_recent()
        self._update_title()
        self.statusBar().showMessage(f"Saved to {folder}", 5000)
        return True

    def autosave_now(self) -> Path | None:
        """Write the recovery file while there are unsaved edits (timer-driven)."""
        if not self.doc.dirty:
            return None
        try:
            return recovery.write_recovery(self.doc.project)
        except OSError as exc:
            log.warning("autosave failed: %s", exc)
            return None

    def confirm_discard(self) -> bool:
        """True when it is fine to drop the current project (saved, or the user agreed)."""
        if not self.is_dirty:
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        if answer == "discard":
            recovery.discard_recovery(self.doc.project)
            return True
        return False

    def ask_save_changes(self) -> str:
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        answer = QMessageBox.question(self, APP_NAME,
                                      f"Save the changes to {self.doc.project.name}?", buttons)
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(answer, "cancel")

    def ask_restore(self, found: recovery.Recovered) -> bool:
        import time

        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.saved_at))
        answer = QMessageBox.question(
            self, APP_NAME, f"{APP_NAME} did not close cleanly. Restore the unsaved changes to "
                            f"{found.project.name} from {when}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_projects:
            self.recent_menu.addAction(self._action(folder, lambda f=folder: self.open_project(f)))
        self.recent_menu.setEnabled(bool(self.settings.recent_projects))

    def show_error(self, title: str, text: str) -> None:
        """A window-modal message that does not block the event loop (runs keep running)."""
        self.last_message = text
        log.error("%s: %s", title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- editing -------------------------------------------------------------------------------
    def _on_spec_activated(self, spec_id: str, kind: str) -> None:
        if kind in NODE_KINDS:
            node_id = self.doc.add_node(spec_id)
            self.editor.select_node(node_id)
        elif kind == "dataset":
            self.doc.set_setting("dataset", Component(spec_id), "Choose dataset")
        elif kind == "encoder":
            self.doc.set_setting("encoder", Component(spec_id), "Choose encoder")
        elif kind == "learning_rule":
            self.doc.set_setting("training.rule", Component(spec_id), "Choose learning rule")
        elif kind == "energy_model":
            self.doc.set_setting("energy.table", spec_id, "Choose cost table")

    def delete_selection(self) -> None:
        ids = self.editor.selected_node_ids()
        if ids:
            self.doc.remove_nodes(ids)

    def duplicate_selection(self) -> None:
        ids = self.editor.selected_node_ids()
        if ids:
            self.doc.duplicate_nodes(ids)

    def auto_layout(self) -> None:
        from workbench.core.model.layout import layered_layout

        self.doc.set_positions(layered_layout(self.doc.project.graph))

    def _validation_key(self) -> str:
        """What validation depends on: the graph's nodes, params and edges, and the data."""
        p = self.doc.project
        return repr(([(n.id, n.spec, sorted(n.params.items()), n.placeholder)
                      for n in p.graph.nodes], p.graph.edges, p.dataset))

    def _validate_timer_start(self) -> None:
        if self._validation_key() != self._validated_key:  # skip moves and settings edits
            self._validate_timer.start()

    def validate_now(self) -> CompileReport | None:
        self._validated_key = self._validation_key()
        try:
            self.report = self.session.validate()
        except WorkbenchError as exc:
            self.report = None
            self.statusBar().showMessage(str(exc), 10_000)
            log.error("%s", exc)
        self.editor.set_report(self.report)
        if self.report is not None:
            self.sample_spin.setMaximum(max(0, len(self.session.data().test) - 1))
        return self.report

    def _on_graph_edited(self) -> None:
        if not self.controller.busy:
            self.session.model = None  # rebuilt (with fresh weights) on the next run

    # -- runs ----------------------------------------------------------------------------------
    def _prepare_model(self, fresh: bool) -> bool:
        """Build the network if the graph changed; weights from the file only if they fit."""
        if self.session.model is not None and not fresh:
            return True
        try:
            self.session.build(load_saved_weights=not fresh and self.doc.weights_match_graph)
        except WorkbenchError as exc:
            self.show_error("Cannot build the network", str(exc))
            return False
        return True

    def start_training(self, *, fresh: bool = False) -> str:
        """Train on a worker thread; the network is built there too (no GUI stall)."""
        if self.controller.busy:
            return ""
        self.controller.probe_index = self.sample_spin.value()
        self.weights_dirty = True
        self._update_title()
        return self.controller.start_training(
            self.session, fresh=fresh, load_saved_weights=self.doc.weights_match_graph)

    def start_evaluation(self) -> str:
        if self.controller.busy or not self._prepare_model(False):
            return ""
        self.energy.set_report(None)
        return self.controller.start_evaluation(self.session)

    def stop_run(self) -> None:
        self.controller.cancel()

    def pause_run(self, pause: bool) -> None:
        self.controller.pause() if pause else self.controller.resume()

    def toggle_pause(self) -> None:
        self.pause_run(self.controller.state != "paused")

    def load_weights(self, path: str | Path | None = None) -> bool:
        if self.controller.busy:
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load weights", str(
                self.doc.project.folder or ""), "Weights (*.safetensors)")
            if not path:
                return False
        if not self._prepare_model(False):
            return False
        try:
            load_weights(self.session.model, path)
        except WorkbenchError as exc:
            self.show_error("Cannot load weights", str(exc))
            return False
        self.weights_dirty = Path(path) != self.doc.project.weights_path
        self.doc.weights_match_graph = True
        self._update_title()
        self.statusBar().showMessage(f"Loaded {path}", 5000)
        self.probe_now(self.sample_spin.value())
        return True

    def probe_now(self, index: int) -> None:
        """Show test sample ``index`` in the raster, membrane and rate views (when idle)."""
        if self.controller.busy:
            self.controller.probe_index = index  # the live probe switches to it
            return
        try:
            item = probe_sample(self.session, index)
        except WorkbenchError as exc:
            self.statusBar().showMessage(str(exc), 10_000)
            return
        self.controller.probe_buffer.put(item)

    def _poll_probe(self) -> None:
        """Hand the newest probe to the views that are on screen; hidden ones catch up when
        their tab is shown (no CPU spent drawing what nobody sees)."""
        seq, item, _ = self.controller.probe_buffer.take(self._probe_seq)
        if item is not None:
            self._probe_seq = seq
            self._probe_item = item
            self._probe_shown = {}
        if self._probe_item is None:
            return
        views = {"raster": self.raster, "membrane": self.membrane, "rates": self.rates,
                 **self.plugin_views}
        for name, view in views.items():
            if self._probe_shown.get(name) == self._probe_seq or not view.isVisible():
                continue
            self._probe_shown[name] = self._probe_seq
            try:
                view.set_probe(self._probe_item)
            except Exception as exc:  # a plugin's view must not break the others
                log.error("view %s could not show the probe: %s", name, exc)

    def _on_run_event(self, event: RunEvent) -> None:
        if event.run_id in self._side_runs:
            return  # the Compress dialog or the Deploy panel shows its own run
        self.training.on_event(event)
        if isinstance(event, EnergySample):
            self._energy_report = event.report
            self.energy.set_report(event.report)
        if isinstance(event, RunFinished) and event.status == "failed":
            detail = f"\n\n{event.traceback}" if event.traceback else ""
            log.error("run failed: %s%s", event.error, detail)
            self.show_error("Run failed", event.error)

    def _on_run_finished(self, run_id: str, status: str) -> None:
        self._side_runs.discard(run_id)
        self.statusBar().showMessage(f"Run {status}", 5000)
        self._update_title()
        self.probe_now(self.sample_spin.value())

    def _on_state_changed(self, state: str) -> None:
        busy = state != "idle"
        self.act_train.setEnabled(not busy)
        self.act_evaluate.setEnabled(not busy)
        self.act_stop.setEnabled(busy)
        self.act_pause.setEnabled(state in ("training", "paused"))
        self.training.set_state(state)
        if hasattr(self, "run_state"):
            self.run_state.setText({"idle": "Idle", "training": "Training…",
                                    "evaluating": "Evaluating…", "paused": "Paused",
                                    "compressing": "Compressing…", "deploying": "Deploying…",
                                    "checking": "Checking fit…"}.get(state, state))

    # -- energy --------------------------------------------------------------------------------
    def _tables(self) -> list[tuple[str, str]]:
        tables = [(s.id, s.display_name) for s in self.host.registry.of_kind("energy_model")]
        if self.doc.project.energy.custom:
            tables.append(("custom", "User-defined"))
        return tables

    def _on_table_changed(self, table_id: str) -> None:
        self.doc.set_setting("energy.table", table_id, "Choose cost table")
        if self._energy_report is not None:
            try:
                table: CostTable = self.session.cost_table()
            except WorkbenchError as exc:
                self.show_error("Cost table", str(exc))
                return
            self._energy_report = reprice(self._energy_report, table)
            self.energy.set_report(self._energy_report)

    # -- compression and deployment -------------------------------------------------------------
    def run_context(self) -> RunContext:
        """The open project for the Compress dialog and the Deploy panel, with the reason no
        compression or deployment can start now ("" when one can)."""
        verb = "compress or deploy it"
        reason = run_readiness(self.doc.project, weights_dirty=self.weights_dirty,
                               weights_match_graph=self.doc.weights_match_graph, verb=verb)
        return RunContext(self.doc.project, self.session, reason)

    def start_run(self, run_id: str, kind: str, make_events) -> str:
        """Start a compression, deployment or fit check on the run controller (one run at a
        time, like training). Its events go to whoever started it, not to the training panel."""
        if self.controller.busy:
            return ""
        threads = self.controller.compute_threads

        def events(cancel):
            torch.set_num_threads(threads)  # on the run's own thread, as training does
            return make_events(cancel)

        self._side_runs.add(run_id)
        return self.controller.start(run_id, kind, events)

    def show_compress_dialog(self) -> CompressDialog:
        """Open (or raise) the non-modal Compress dialog."""
        if self.compress_dialog is None:
            dialog = CompressDialog(self.host.registry, self.controller, self.start_run,
                                    self.run_context, self)
            dialog.variant_created.connect(self._on_variant_created)
            dialog.open_variant_requested.connect(self.open_project)
            self.compress_dialog = dialog
        self.compress_dialog.show()
        self.compress_dialog.raise_()
        self.compress_dialog.activateWindow()
        return self.compress_dialog

    def _on_deployed(self, choice: dict) -> None:
        """Remember a successful deployment's backend, target and parameters in the project
        (undoable, saved with it), so the panel and `snn-workbench deploy` default to them."""
        if choice.get("backend") and choice != self.doc.project.deploy:
            self.doc.set_setting("deploy", choice, "Set deploy target")

    def show_deploy_panel(self) -> DeployPanel:
        self.docks["deploy"].show()
        self.docks["deploy"].raise_()
        return self.deploy_panel

    def show_variants(self) -> VariantsView:
        self.docks["variants"].show()
        self.docks["variants"].raise_()
        return self.variants

    def _on_variant_created(self, folder: str) -> None:
        self.variants.add_variant(folder)
        self.statusBar().showMessage(f"Variant saved to {folder}", 5000)

    def _refresh_compress_deploy(self) -> None:
        """Re-check whether compress/deploy may start (after saves, runs, edits)."""
        if hasattr(self, "deploy_panel"):
            self.deploy_panel.refresh()
        if self.compress_dialog is not None:
            self.compress_dialog.refresh()

    # -- misc ----------------------------------------------------------------------------------
    def show_plugins(self) -> PluginsDialog:
        dialog = PluginsDialog(self.host.report, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def set_theme(self, name: str) -> None:
        self.settings.theme = name
        apply_theme(name, [self.raster, self.membrane, self.rates, self.energy,
                           self.training.metrics, self.variants, self.deploy_panel])
        self.variants.refresh()  # its point labels take the theme's text colour when drawn
        self.settings.save()

    def _restore_layout(self) -> None:
        try:
            if self.settings.window_geometry:
                self.restoreGeometry(QByteArray(base64.b64decode(self.settings.window_geometry)))
            if self.settings.window_state:
                self.restoreState(QByteArray(base64.b64decode(self.settings.window_state)))
        except (ValueError, TypeError) as exc:
            log.warning("ignoring the saved window layout: %s", exc)

    def _save_layout(self) -> None:
        self.settings.window_geometry = base64.b64encode(bytes(self.saveGeometry())).decode()
        self.settings.window_state = base64.b64encode(bytes(self.saveState())).decode()
        self.settings.save()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.confirm_discard():
            event.ignore()
            return
        self.controller.shutdown()
        self._probe_timer.stop()
        self._autosave_timer.stop()
        recovery.discard_recovery(self.doc.project)
        self._save_layout()
        self.log_panel.detach()
        event.accept()


def default_window_project() -> Project | None:
    """The embedded default example, if the checkout has it."""
    folder = default_project()
    try:
        return load_project(folder)
    except WorkbenchError as exc:
        log.warning("default project unavailable: %s", exc)
        return None
