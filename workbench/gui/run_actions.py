"""The Run menu and the training panel's buttons: train, pause, stop, evaluate, load weights;
where each run's events go; and what the window shows while a run is busy.

Training and evaluation events go to the training panel and the energy ledger. Every other run
(compression, deployment, fit check, NIR exchange) is a *side run*: the dialog, panel or File
action that started it through :meth:`RunActions.start_run` shows its events itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from workbench.core.model.errors import WorkbenchError
from workbench.core.runs.engine import Run
from workbench.core.runs.events import EnergySample, RunEvent, RunFinished
from workbench.gui.actions import make_action

log = logging.getLogger(__name__)

STATE_TEXT = {"idle": "Idle", "training": "Training…", "evaluating": "Evaluating…",
              "paused": "Paused", "compressing": "Compressing…", "deploying": "Deploying…",
              "checking": "Checking fit…", "importing": "Importing…", "exporting": "Exporting…",
              "remote": "Training on a cluster…", "sweeping": "Sweeping…"}


class RunActions(QObject):
    """Owns the Run menu's actions; ``window`` provides ``controller``, ``projects``,
    ``probes``, ``training``, ``energy``, ``host``, ``show_error`` and the status bar."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self._side_runs: set[str] = set()
        self._energy_report: dict[str, Any] | None = None
        a = make_action
        self.act_train = a(window, "&Train", self.start_training, "F5", "train",
                           "Train the network")
        self.act_pause = a(window, "&Pause / resume", self.toggle_pause, "F6", "pause")
        self.act_stop = a(window, "&Stop", self.stop_run, "Esc", "stop",
                          "Stop the run within one batch")
        self.act_evaluate = a(window, "&Evaluate", self.start_evaluation, "F7", "evaluate",
                              "Accuracy and energy on the test set")
        self.act_load_weights = a(window, "Load weights…", self.load_weights)
        self.act_run_on = a(window, "Run &on…", self.run_on, tip="Train the saved project on a "
                            "cluster; its weights come back when the job succeeds")
        self.act_sweep = a(window, "S&weep…", lambda: self.sweep(), tip="Train a variant per "
                           "value of some settings (learning rate, T, bits…) and compare them")
        self._sweeps: set[str] = set()
        training = window.training
        training.train_requested.connect(lambda fresh: self.start_training(fresh=fresh))
        training.stop_requested.connect(self.stop_run)
        training.pause_requested.connect(self.pause_run)
        training.evaluate_requested.connect(self.start_evaluation)
        training.load_weights_requested.connect(lambda: self.load_weights())
        window.energy.table_changed.connect(self._on_table_changed)
        self.controller.run_event.connect(self._on_run_event)
        self.controller.run_finished.connect(self._on_run_finished)
        self.controller.state_changed.connect(self.show_state)

    # -- training and evaluation -------------------------------------------------------------
    def start_training(self, *, fresh: bool = False) -> str:
        """Train on a worker thread; the network is built there too (no GUI stall)."""
        if self.controller.busy:
            return ""
        projects = self.window.projects
        self.controller.probe_index = self.window.sample_spin.value()
        try:
            run_id = self.controller.start_training(
                projects.session, fresh=fresh,
                load_saved_weights=projects.doc.weights_match_graph)
        except WorkbenchError as exc:
            self.window.show_error("Cannot train", str(exc))
            return ""
        projects.set_weights_dirty(True)  # the weights in memory change from the first batch
        return run_id

    def start_evaluation(self) -> str:
        projects = self.window.projects
        if self.controller.busy or not projects.prepare_model(False):
            return ""
        self.window.energy.set_report(None)
        try:
            return self.controller.start_evaluation(projects.session)
        except WorkbenchError as exc:
            self.window.show_error("Cannot evaluate", str(exc))
            return ""

    def run_on(self) -> str:
        """Run ▸ Run on…: train the saved project through a runner plugin (a Ray cluster);
        its events reach the training panel as a local run's do, and Stop stops the job."""
        window, projects = self.window, self.window.projects
        if self.controller.busy:
            return ""
        runners = window.host.registry.of_kind("runner")
        if not runners:
            window.show_error("Run on", "No runner plugin is installed (see Help ▸ Plugins).")
            return ""
        if projects.project.folder is None or projects.is_dirty:
            window.show_error("Run on", "Save the project first: the cluster trains the "
                                        "project as it is saved.")
            return ""
        from PySide6.QtWidgets import QDialog

        from workbench.core.runs import catalog
        from workbench.gui.dialogs.run_on_dialog import RunOnDialog

        dialog = RunOnDialog(runners, window.settings.run_on, projects.project.training.epochs,
                             window)
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        choice = dialog.choice()
        dialog.deleteLater()
        if not accepted:
            return ""
        window.settings.run_on = choice
        window.settings.save()
        try:
            run = catalog.submit(projects.session, runner=choice["id"], params=choice["params"],
                                 epochs=choice["epochs"])
        except WorkbenchError as exc:
            window.show_error("Cannot run on the cluster", str(exc))
            return ""
        return self.controller.start(run, "remote")

    def sweep(self, path: str = "") -> str:
        """Run ▸ Sweep… (``path``: the setting to vary first, from the inspector): a variant
        per combination of the values, trained here or as jobs of a runner plugin; the training
        panel follows it and the Variants view shows the trials when it ends."""
        window, projects = self.window, self.window.projects
        if self.controller.busy:
            return ""
        if projects.project.folder is None:
            window.show_error("Sweep", "Save the project first: the trials are written into "
                                       "its variants folder.")
            return ""
        from PySide6.QtWidgets import QDialog

        from workbench.core.runs import catalog
        from workbench.gui.dialogs.sweep_dialog import SweepDialog

        try:
            dialog = SweepDialog(projects.project, window.host.registry,
                                 window.host.registry.of_kind("runner"), window.settings.run_on,
                                 path=path, parent=window)
        except WorkbenchError as exc:
            window.show_error("Sweep", str(exc))
            return ""
        accepted = dialog.exec() == QDialog.DialogCode.Accepted
        choice = dialog.choice() if accepted else {}
        dialog.deleteLater()
        if not accepted:
            return ""
        if choice["runner"] is not None:  # the cluster's address is remembered for next time
            window.settings.run_on = {**window.settings.run_on, "id": choice["runner"],
                                      "params": choice["params"]}
            window.settings.save()
        try:
            run = catalog.sweep(projects.session, axes=choice["axes"], runner=choice["runner"],
                                params=choice["params"], epochs=choice["epochs"],
                                parallel=choice["parallel"])
        except WorkbenchError as exc:
            window.show_error("Cannot sweep", str(exc))
            return ""
        self._sweeps.add(run.id)
        return self.controller.start(run, "sweeping")

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
            path, _ = QFileDialog.getOpenFileName(
                self.window, "Load weights", str(self.window.projects.project.folder or ""),
                "Weights (*.safetensors)")
            if not path:
                return False
        if not self.window.projects.load_weights(path):
            return False
        self.window.probe_now(self.window.sample_spin.value())
        return True

    def start_run(self, run: Run, state: str) -> str:
        """Start a side run (compression, deployment, fit check, NIR exchange) on the run
        controller, one run at a time like training; "" when another run is in progress."""
        if self.controller.busy:
            return ""
        self._side_runs.add(run.id)
        return self.controller.start(run, state)

    # -- events --------------------------------------------------------------------------------
    def _on_run_event(self, event: RunEvent) -> None:
        if event.run_id in self._side_runs:
            return  # the dialog, panel or File action that started it shows its own run
        self.window.training.on_event(event)
        if isinstance(event, EnergySample):
            self._energy_report = event.report
            self.window.energy.set_report(event.report)
        if isinstance(event, RunFinished) and event.status == "failed":
            detail = f"\n\n{event.traceback}" if event.traceback else ""
            log.error("run failed: %s%s", event.error, detail)
            self.window.show_error("Run failed", event.error)

    def _on_run_finished(self, run_id: str, status: str) -> None:
        self._side_runs.discard(run_id)
        if run_id in self._sweeps:  # the trials that finished are variants now: show them
            self._sweeps.discard(run_id)
            self.window.show_variants().refresh()
        self.window.statusBar().showMessage(f"Run {status}", 5000)
        self.window.probe_now(self.window.sample_spin.value())

    def show_state(self, state: str) -> None:
        busy = state != "idle"
        self.act_train.setEnabled(not busy)
        self.act_run_on.setEnabled(not busy)
        self.act_sweep.setEnabled(not busy)
        self.act_evaluate.setEnabled(not busy)
        self.act_stop.setEnabled(busy)
        self.act_pause.setEnabled(state in ("training", "paused"))
        self.window.training.set_state(state)
        self.window.run_state.setText(STATE_TEXT.get(state, state))

    # -- the energy ledger ---------------------------------------------------------------------
    def cost_tables(self) -> list[tuple[str, str]]:
        """``(id, name)`` of the tables the ledger offers (the project's own one too)."""
        registry = self.window.host.registry
        tables = [(s.id, s.display_name) for s in registry.of_kind("energy_model")]
        if self.window.projects.project.energy.custom:
            tables.append(("custom", "User-defined"))
        return tables

    def reset_energy(self) -> None:
        """Another project: its tables, and no figures until it is evaluated."""
        energy = self.window.energy
        energy.set_tables(self.cost_tables(), self.window.projects.project.energy.table)
        energy.set_report(None)
        self._energy_report = None

    def _on_table_changed(self, table_id: str) -> None:
        projects = self.window.projects
        projects.doc.set_setting("energy.table", table_id, "Choose cost table")
        if self._energy_report is not None:  # the same counts, priced with the new table
            try:
                table = projects.session.cost_table()
            except WorkbenchError as exc:
                self.window.show_error("Cost table", str(exc))
                return
            from workbench.core.build.energy import reprice  # torch: not before first paint

            self._energy_report = reprice(self._energy_report, table)
            self.window.energy.set_report(self._energy_report)
