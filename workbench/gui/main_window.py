"""The main window: the network editor in the middle, dockable panels around it, the menus and
the status bar, and the wiring between them.

The behaviour lives in small parts the window connects, each in its own module:
``ProjectController`` (new, open, save, recent, autosave and recovery, dirty state),
``EditActions`` (the Edit menu's node commands, validation), ``RunActions`` (the Run menu and
where run events go), ``NetworkActions`` (compress, deploy, variants), ``ExchangeActions``
(File ▸ Import/Export NIR) and ``ProbeFeed`` (the probed test sample). The window keeps what
needs the user: error boxes, "save the changes?", "restore?". Its public methods are the
application's script and test surface; they hand over to those parts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.build.report import CompileReport
from workbench.core.model.project import Project
from workbench.core.persistence.examples import list_examples
from workbench.gui import prompts, recovery, startup
from workbench.gui.actions import make_action
from workbench.gui.dialogs.about import show_about
from workbench.gui.dialogs.compress_dialog import CompressDialog
from workbench.gui.dialogs.plugins_dialog import PluginsDialog
from workbench.gui.dialogs.recovery_dialog import RecoveryDialog
from workbench.gui.edit_actions import EditActions
from workbench.gui.editor import NetworkEditor
from workbench.gui.exchange_actions import ExchangeActions
from workbench.gui.lazy_view import LazyView
from workbench.gui.network_actions import NetworkActions
from workbench.gui.panels.deploy import DeployPanel
from workbench.gui.panels.inspector import InspectorPanel
from workbench.gui.panels.log_panel import LogPanel
from workbench.gui.panels.palette import PalettePanel
from workbench.gui.panels.training import TrainingPanel
from workbench.gui.plugin_views import create_plugin_views
from workbench.gui.probe_feed import ProbeFeed
from workbench.gui.project_controller import ProjectController
from workbench.gui.run_actions import RunActions
from workbench.gui.run_controller import RunController
from workbench.gui.settings import AppSettings
from workbench.gui.theme import apply_theme, icon
from workbench.gui.views import (
    EnergyView,
    FiringRateView,
    MembraneView,
    SignalView,
    SpikeRasterView,
)
from workbench.gui.views.compare import VariantsView
from workbench.gui.views.neuron_explorer import NeuronExplorerView
from workbench.gui.views.spike_times import SpikeTimeView
from workbench.gui.wheel_guard import install_wheel_guard
from workbench.pluginhost.manager import PluginHost

log = logging.getLogger(__name__)

APP_NAME = prompts.APP_NAME


class MainWindow(QMainWindow):
    project_opened = Signal(str)

    def __init__(self, host: PluginHost, settings: AppSettings | None = None,
                 project: Project | None = None) -> None:
        super().__init__()
        install_wheel_guard()  # scrolling a form never changes the value under the pointer
        self.host = host
        self.settings = settings or AppSettings()
        self.last_message = ""
        #: the warnings about the app's own files shown since the start (settings, recovery)
        self.startup_warnings: list[str] = []
        self.recovery_dialog: RecoveryDialog | None = None
        self.setWindowIcon(icon("app"))
        self.resize(1400, 900)
        self.controller = RunController(self)
        self.projects = ProjectController(host.registry, self.settings, self.controller, self,
                                          project, self)
        # The editor sits in a frame that stays the central widget: a project switch swaps the
        # editor inside it, so the docks around it keep their sizes.
        self._editor_frame = QWidget()
        QVBoxLayout(self._editor_frame).setContentsMargins(0, 0, 0, 0)
        self.setCentralWidget(self._editor_frame)
        self._place_editor(NetworkEditor(self.doc))
        self.probes = ProbeFeed(self.controller, self._probe_views, lambda: self.session,
                                lambda text: self.statusBar().showMessage(text, 10_000), self)
        self.sample_spin = self.probes.sample_spin
        self._build_status_bar()
        self._build_panels()
        self.edits = EditActions(self)
        self.runs = RunActions(self)
        self.inspector.sweep_requested.connect(lambda path: self.runs.sweep(path))
        self.network = NetworkActions(self)
        self.exchange = ExchangeActions(self, self.runs.start_run)
        self.deploy_panel, self.variants = self.network.deploy_panel, self.network.variants
        self._build_docks()
        self._build_menus()
        self._connect_document()
        self.projects.replaced.connect(self._on_project_replaced)
        self.projects.state_changed.connect(self._update_title)
        self.projects.recent_changed.connect(self._fill_recent)
        self.projects.status.connect(self.statusBar().showMessage)
        self.controller.run_finished.connect(lambda _id, _status: self._update_title())
        #: the layout as built, before the user's saved one: View ▸ Reset layout goes back to it
        self._default_layout = self.saveState()
        self.settings.restore_layout(self)
        startup.after_first_paint(self._after_open)  # needs torch: after the first paint
        if self.projects.open_problem:
            self.show_error("Cannot open project", f"{self.projects.open_problem}\n"
                            f"{self.doc.project.name} was opened instead.")
        self.show_startup_warnings(self.settings.warnings)

    # -- what the rest of the app, the scripts and the tests call on the window ----------------
    @property
    def doc(self) -> Any:
        return self.projects.doc

    @property
    def session(self) -> Any:
        return self.projects.session

    @property
    def weights_dirty(self) -> bool:
        return self.projects.weights_dirty

    @weights_dirty.setter
    def weights_dirty(self, dirty: bool) -> None:
        self.projects.set_weights_dirty(dirty)

    @property
    def raster(self) -> SpikeRasterView:
        return self._lazy["raster"].widget()

    @property
    def membrane(self) -> MembraneView:
        return self._lazy["membrane"].widget()

    @property
    def rates(self) -> FiringRateView:
        return self._lazy["rates"].widget()

    @property
    def signal(self) -> SignalView:
        return self._lazy["signal"].widget()

    @property
    def spike_times(self) -> SpikeTimeView:
        return self._lazy["spike_times"].widget()

    @property
    def neuron_explorer(self) -> NeuronExplorerView:
        return self._explorer.widget()

    @property
    def compress_dialog(self) -> CompressDialog | None:
        return self.network.compress_dialog

    @property
    def report(self) -> CompileReport | None:
        """The last validation of the graph (None when it could not run)."""
        return self.edits.report

    def validate_now(self) -> CompileReport | None:
        return self.edits.validate_now()

    def set_project(self, project: Project, *, dirty: bool = False) -> bool:
        return self.projects.set_project(project, dirty=dirty)

    def new_project(self) -> bool:
        return self.projects.new_project()

    def open_project(self, path: str | Path, *, ask: bool = True) -> bool:
        return self.projects.open_project(path, ask=ask)

    def save(self) -> bool:
        return self.projects.save()

    def save_as(self, folder: str | Path | None = None) -> bool:
        return self.projects.save_as(folder)

    def autosave_now(self) -> Path | None:
        return self.projects.autosave_now()

    def start_training(self, *, fresh: bool = False) -> str:
        return self.runs.start_training(fresh=fresh)

    def start_evaluation(self) -> str:
        return self.runs.start_evaluation()

    def load_weights(self, path: str | Path | None = None) -> bool:
        return self.runs.load_weights(path)

    def probe_now(self, index: int) -> None:
        """Show test sample ``index`` in the raster, membrane, rate and plugin views."""
        self.probes.probe_now(index)

    def import_nir(self, path: str | Path, folder: str | Path | None = None) -> str:
        return self.exchange.import_nir(path, folder)

    def export_nir(self, path: str | Path) -> str:
        return self.exchange.export_nir(path)

    def show_compress_dialog(self) -> CompressDialog:
        return self.network.show_compress_dialog()

    def show_deploy_panel(self) -> DeployPanel:
        return self.network.show_deploy_panel()

    def show_variants(self) -> VariantsView:
        return self.network.show_variants()

    # -- construction --------------------------------------------------------------------------
    def _build_panels(self) -> None:
        self.palette = PalettePanel(self.host.registry)
        self.inspector = InspectorPanel(self.doc)
        self.training = TrainingPanel(self.doc)
        # Behind the Training tab: built when first shown or asked for (see lazy_view.py)
        self._lazy = {"raster": LazyView(SpikeRasterView), "membrane": LazyView(MembraneView),
                      "rates": LazyView(FiringRateView),
                      "signal": LazyView(lambda: SignalView(lambda: self.session)),
                      "spike_times": LazyView(lambda: SpikeTimeView(lambda: self.session))}
        self.energy = EnergyView()
        self.log_panel = LogPanel()
        # Built when its tab is first shown, like the views above (~0.1 s); a pick made before
        # then is kept and shown by the view once built.
        self._explorer = LazyView(self._make_neuron_explorer)
        self._explorer_pick: tuple[str, tuple[str, ...]] | None = None
        self.palette.spec_selected.connect(lambda *pick: self._pick_neuron("show_spec", *pick))

    def _make_neuron_explorer(self) -> NeuronExplorerView:
        view = NeuronExplorerView(self.doc)  # new plots take the theme's colours
        if self._explorer_pick is not None:
            method, args = self._explorer_pick
            getattr(view, method)(*args)
        return view

    def _pick_neuron(self, method: str, *args: str) -> None:
        """A palette or editor pick for the neuron explorer (``show_spec``/``show_node``)."""
        if self._explorer.built is None:
            self._explorer_pick = (method, args)
        else:
            getattr(self._explorer.built, method)(*args)

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
        self.runs.reset_energy()
        raster_box = QWidget()
        col = QVBoxLayout(raster_box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.probes.bar)
        col.addWidget(self._lazy["raster"], 1)
        docks: dict[str, QDockWidget] = {}
        # One tab group only: with PySide6 6.11 a second tabified group leaves a stray copy of
        # its tab bar visible at its first position (seen offscreen).
        docks["training"] = self._dock("Training", "training_dock", self.training, bottom)
        for name, title, widget in (("energy", "Energy ledger", self.energy),
                                    ("raster", "Spike raster", raster_box),
                                    ("membrane", "Membrane traces", self._lazy["membrane"]),
                                    ("rates", "Firing rates", self._lazy["rates"]),
                                    ("signal", "Signal", self._lazy["signal"]),
                                    ("spike_times", "Spike times", self._lazy["spike_times"]),
                                    ("log", "Log", self.log_panel),
                                    ("neuron_explorer", "Neuron explorer", self._explorer),
                                    ("variants", "Variants", self.variants),
                                    ("deploy", "Deploy", self.deploy_panel)):
            docks[name] = self._dock(title, f"{name}_dock", widget, bottom, docks["training"])
        docks["palette"] = self._dock("Palette", "palette_dock", self.palette, left)
        docks["inspector"] = self._dock("Inspector", "inspector_dock", self.inspector, right)
        self.plugin_views: dict[str, QWidget] = {}
        for spec, widget in create_plugin_views(self.host):
            self.plugin_views[spec.id] = widget
            docks[spec.id] = self._dock(spec.display_name, f"{spec.id}_dock", widget, bottom,
                                        docks["training"])
        self.docks = docks
        for name, lazy in self._lazy.items():
            lazy.build_when_shown(docks[name])
        self._explorer.build_when_shown(docks["neuron_explorer"])
        # a view built earlier (from code) draws what it missed behind the tab
        docks["neuron_explorer"].visibilityChanged.connect(
            lambda shown: shown and self._explorer.built and self._explorer.built.catch_up())
        self.docks["training"].raise_()
        # Side panels ~260 and ~380 px wide; the bottom panels get room for their plots.
        self.resizeDocks([self.docks["palette"], self.docks["inspector"]], [260, 380],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["training"]], [440], Qt.Orientation.Vertical)
        failures = len(self.host.report.failures)  # a plugin view may have added one
        self.plugin_badge.setText(f"⚠ {failures} plugin failure(s)")
        self.plugin_badge.setVisible(failures > 0)

    def _build_menus(self) -> None:
        keys, bar, runs = QKeySequence.StandardKey, self.menuBar(), self.runs
        a = lambda *args, **kw: make_action(self, *args, **kw)  # noqa: E731 - a local shorthand
        file_menu = bar.addMenu("&File")
        self.act_new = a("&New", self.new_project, keys.New, "new")
        self.act_open = a("&Open…", self.projects.open_dialog, keys.Open, "open")
        self.act_save = a("&Save", self.save, keys.Save, "save")
        self.act_save_as = a("Save &As…", self.save_as, keys.SaveAs)
        file_menu.addActions([self.act_new, self.act_open])
        self.examples_menu = file_menu.addMenu("Examples")
        for folder in list_examples():
            self.examples_menu.addAction(a(folder.name, lambda f=folder: self.open_project(f)))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._fill_recent()
        file_menu.addSeparator()
        file_menu.addActions([self.act_save, self.act_save_as])
        file_menu.addSeparator()
        self.act_import_nir, self.act_export_nir = (self.exchange.act_import_nir,
                                                    self.exchange.act_export_nir)
        file_menu.addActions([self.act_import_nir, self.act_export_nir])
        file_menu.addSeparator()
        file_menu.addAction(a("&Quit", self.close, keys.Quit))

        edit = bar.addMenu("&Edit")
        self.act_undo = self.projects.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence("Ctrl+Z"))
        self.act_redo = self.projects.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions(self.edits.actions)

        self.act_compress = self.network.act_compress
        bar.addMenu("&Network").addActions(self.network.actions())

        self.act_train, self.act_pause = runs.act_train, runs.act_pause
        self.act_stop, self.act_evaluate = runs.act_stop, runs.act_evaluate
        run_actions = [self.act_train, self.act_pause, self.act_stop, self.act_evaluate]
        run = bar.addMenu("&Run")
        run.addActions(run_actions)
        run.addSeparator()
        run.addAction(runs.act_run_on)
        run.addAction(runs.act_sweep)
        run.addAction(runs.act_load_weights)

        view = bar.addMenu("&View")
        view.addActions([dock.toggleViewAction() for dock in self.docks.values()])
        view.addSeparator()
        view.addAction(make_action(self, "&Reset layout", self.reset_layout))
        view.addAction(make_action(self, "&Fit network to view", lambda: self.editor.fit_view()))
        view.addSeparator()
        themes = QActionGroup(self)
        for name in ("light", "dark"):
            act = QAction(f"{name.capitalize()} theme", self, checkable=True)
            act.setChecked(self.settings.theme == name)
            act.triggered.connect(lambda checked=False, n=name: self.set_theme(n))
            themes.addAction(act)
            view.addAction(act)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a("&Plugins…", self.show_plugins))
        help_menu.addAction(a("&About", lambda: show_about(
            self, [p.name for p in self.host.report.plugins])))

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.addActions([self.act_new, self.act_open, self.act_save])
        toolbar.addSeparator()
        toolbar.addActions(run_actions)
        runs.show_state("idle")

    def _build_status_bar(self) -> None:
        self.run_state = QLabel("Idle")
        self.statusBar().addPermanentWidget(self.run_state)
        self.plugin_badge = QPushButton()
        self.plugin_badge.setFlat(True)
        self.plugin_badge.clicked.connect(self.show_plugins)
        self.statusBar().addPermanentWidget(self.plugin_badge)

    def _connect_document(self) -> None:
        self.edits.watch(self.doc)
        self.doc.graph_edited.connect(self.projects.forget_model)
        self.editor.node_selected.connect(self.inspector.show_node)
        self.editor.node_selected.connect(lambda node: self._pick_neuron("show_node", node))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent_projects:
            self.recent_menu.addAction(make_action(self, folder,
                                                   lambda f=folder: self.open_project(f)))
        self.recent_menu.setEnabled(bool(self.settings.recent_projects))

    # -- a project was opened ------------------------------------------------------------------
    def _on_project_replaced(self) -> None:
        """Point the editor and every panel at the new document, then load and show it.

        The docks keep their sizes (the editor is swapped inside its frame): a new central
        widget would give them whatever room its size hint leaves (a 650 px palette beside a
        50 px editor)."""
        self._place_editor(NetworkEditor(self.doc))
        self.inspector.set_document(self.doc)
        self.training.set_document(self.doc)
        if self._explorer.built is not None:
            self._explorer.built.set_document(self.doc)
        elif self._explorer_pick and self._explorer_pick[0] == "show_node":
            self._explorer_pick = None  # a node of the old project
        self._connect_document()
        self.runs.reset_energy()  # the training panel restored its curves in set_document
        self.network.project_replaced()
        self._after_open()

    def _place_editor(self, editor: NetworkEditor) -> None:
        layout = self._editor_frame.layout()
        old = getattr(self, "editor", None)
        if old is not None:
            layout.removeWidget(old)
            old.deleteLater()
        self.editor = editor
        layout.addWidget(editor)

    def _after_open(self) -> None:
        for note in self.doc.notes:
            log.warning(note)
        self._update_title()
        self.validate_now()
        if self.report is not None and self.report.ok:
            self.projects.load_saved_weights()
            self.probe_now(0)
        if self.doc.project.folder is not None:
            self.project_opened.emit(str(self.doc.project.folder))

    def _update_title(self) -> None:
        project = self.doc.project
        where = f" — {project.folder}" if project.folder else ""
        self.setWindowTitle(f"{project.name}[*]{where} — {APP_NAME}")
        self.setWindowModified(self.projects.is_dirty)
        self.network.refresh()  # whether compress/deploy may start follows the saved state

    # -- what the user must answer ---------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """A window-modal message that does not block the event loop (runs keep running)."""
        self.last_message = text
        log.error("%s: %s", title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def ask_save_changes(self) -> str:
        return prompts.ask_save_changes(self, self.doc.project.name)

    def show_recoveries(self, found: list[recovery.Recovered]) -> RecoveryDialog:
        """List autosaved unsaved work (after a crash) in a window-modal dialog that does not
        block the event loop: Restore opens one, Discard deletes that autosave only."""
        dialog = RecoveryDialog(found, self)  # one per start: kept (a script may look at it)
        dialog.restore_requested.connect(self.projects.restore)
        dialog.discard_requested.connect(lambda item: recovery.discard_file(item.file))
        self.recovery_dialog = dialog
        dialog.open()
        return dialog

    def show_startup_warnings(self, warnings: list[str]) -> None:
        """What went wrong reading the app's own files (settings, recovery): the Log panel
        gets each, the status bar the gist; nothing modal, the app is usable at once."""
        for text in warnings:
            log.warning(text)
            self.startup_warnings.append(text)
        shown = self.startup_warnings  # settings first, then recovery: one message for all
        if warnings:
            gist = (shown[0] if len(shown) == 1 else
                    f"{len(shown)} problems with the app's own files: see the Log panel")
            self.statusBar().showMessage(f"⚠ {gist}", 60_000)

    def ask_replace_folder(self, folder: Path, holds_project: bool) -> bool:
        return prompts.ask_replace_folder(self, folder, holds_project)

    def _probe_views(self) -> dict[str, QWidget]:
        built = {name: lazy.built for name, lazy in self._lazy.items() if lazy.built}
        return {**built,
                **self.plugin_views}

    # -- misc ----------------------------------------------------------------------------------
    def show_plugins(self) -> PluginsDialog:
        dialog = PluginsDialog(self.host.report, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def reset_layout(self) -> None:
        """Every dock back where the app first put it, at its first size, and shown."""
        self.restoreState(self._default_layout)
        for dock in self.docks.values():
            dock.setVisible(True)
        self.editor.fit_view()
        self.settings.save_layout(self)
        self.statusBar().showMessage("Layout reset", 3000)

    def set_theme(self, name: str) -> None:
        self.settings.theme = name
        lazy = [*self._lazy.values(), self._explorer]
        built = [view.built for view in lazy if view.built]  # the rest: at build
        apply_theme(name, [*built, self.energy,
                           self.training.metrics, self.variants, self.deploy_panel])
        self.variants.refresh()  # its point labels take the theme's text colour when drawn
        self.settings.save()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.projects.confirm_discard():
            event.ignore()
            return
        self.controller.shutdown()
        self.probes.stop()
        self.projects.close()
        self.settings.save_layout(self)
        self.log_panel.detach()
        event.accept()
