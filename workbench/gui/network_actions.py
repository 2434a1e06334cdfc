"""The Network menu: the Compress dialog, the Deploy panel and the Variants view, and what
they need to know about the open project (:meth:`NetworkActions.run_context`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from workbench.gui import startup
from workbench.gui.actions import make_action
from workbench.gui.dialogs.compress_dialog import CompressDialog
from workbench.gui.panels.deploy import DeployPanel
from workbench.gui.run_owner import RunContext, run_readiness
from workbench.gui.views.compare import VariantsView


class NetworkActions(QObject):
    """Owns :attr:`deploy_panel`, :attr:`variants` (docked by the window) and the non-modal
    :attr:`compress_dialog` (made when first asked for). ``window`` provides ``host``,
    ``controller``, ``projects``, ``docks``, ``runs``, ``open_project`` and the status
    bar."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        project = window.projects.project
        self.compress_dialog: CompressDialog | None = None
        self.variants = VariantsView()
        self.variants.open_requested.connect(window.open_project)
        self.variants.set_project(project)
        self.deploy_panel = DeployPanel(window.host.registry, window.controller,
                                        window.runs.start_run, self.run_context)
        # the backends are listed after the window's first paint (workbench.gui.startup)
        startup.after_first_paint(
            lambda: self.deploy_panel.use_choice(window.projects.project.deploy))
        self.deploy_panel.deployed.connect(self._on_deployed)
        self.act_compress = make_action(window, "&Compress…", self.show_compress_dialog,
                                        tip="Quantise, prune or binarise the trained network "
                                            "into a variant")
        self.act_deploy = make_action(window, "&Deploy…", self.show_deploy_panel,
                                      tip="Deploy the trained network to a simulator or board")
        self.act_variants = make_action(window, "Compare &variants", self.show_variants,
                                        tip="The project beside its compressed variants")

    def actions(self) -> list[Any]:
        return [self.act_compress, self.act_deploy, self.act_variants]

    def run_context(self) -> RunContext:
        """The open project for the Compress dialog and the Deploy panel, with the reason no
        compression or deployment can start now ("" when one can)."""
        projects = self.window.projects
        reason = run_readiness(projects.project, weights_dirty=projects.weights_dirty,
                               weights_match_graph=projects.doc.weights_match_graph,
                               verb="compress or deploy it")
        if startup.deferring():  # the session needs torch, which loads after the first paint
            return RunContext(projects.project, None, reason or "Loading torch, one moment…")
        return RunContext(projects.project, projects.session, reason)

    def refresh(self) -> None:
        """Re-check whether compress/deploy may start (after saves, runs, edits)."""
        self.deploy_panel.refresh()
        if self.compress_dialog is not None:
            self.compress_dialog.refresh()

    def project_replaced(self) -> None:
        project = self.window.projects.project
        self.variants.set_project(project)
        self.deploy_panel.reset_for_project()
        self.deploy_panel.use_choice(project.deploy)
        if self.compress_dialog is not None:
            self.compress_dialog.reset_destination()

    def show_compress_dialog(self) -> CompressDialog:
        """Open (or raise) the non-modal Compress dialog."""
        if self.compress_dialog is None:
            window = self.window
            dialog = CompressDialog(window.host.registry, window.controller, window.runs.start_run,
                                    self.run_context, window)
            dialog.variant_created.connect(self._on_variant_created)
            dialog.open_variant_requested.connect(window.open_project)
            self.compress_dialog = dialog
        self.compress_dialog.show()
        self.compress_dialog.raise_()
        self.compress_dialog.activateWindow()
        return self.compress_dialog

    def show_deploy_panel(self) -> DeployPanel:
        self.window.docks["deploy"].show()
        self.window.docks["deploy"].raise_()
        return self.deploy_panel

    def show_variants(self) -> VariantsView:
        self.window.docks["variants"].show()
        self.window.docks["variants"].raise_()
        return self.variants

    def _on_deployed(self, choice: dict) -> None:
        """Remember a successful deployment's backend, target and parameters in the project
        (undoable, saved with it), so the panel and `snn-workbench deploy` default to them."""
        doc = self.window.projects.doc
        if choice.get("backend") and choice != doc.project.deploy:
            doc.set_setting("deploy", choice, "Set deploy target")

    def _on_variant_created(self, folder: str) -> None:
        self.variants.add_variant(folder)
        self.window.statusBar().showMessage(f"Variant saved to {folder}", 5000)
