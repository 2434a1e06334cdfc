"""Run ▸ Run on… with a real local Ray head (tests/ray_head.py): the dialog sends digits_mlp to
the cluster, the training panel follows the job, the weights come back into the project, and
Stop stops a second job without touching the project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import ray_head
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from workbench.core.model.project import RUNS_DIR
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.events import MetricSample, RunStarted
from workbench.gui.dialogs.run_on_dialog import RunOnDialog
from workbench.gui.settings import AppSettings

pytestmark = [pytest.mark.gui, pytest.mark.slow, pytest.mark.xdist_group("ray")]


# a head per module, stopped after its last test: an idle head costs ~8 % of a core for
# the rest of the session
@pytest.fixture(scope="module")
def ray_address():
    yield ray_head.address()
    ray_head.stop()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def job_state(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id).value)


def run_on(window, qtbot, *, address: str | None, epochs: int) -> list[str]:
    """Trigger Run ▸ Run on…, fill the dialog (the address when given) and click Run; returns
    the address the dialog showed first."""
    shown: list[str] = []

    def fill() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, RunOnDialog)
        assert dialog.spec.id == "wb_ray.ray"
        shown.append(dialog.form.value("address"))
        if address is not None:
            dialog.form.editors["address"].setText(address)
        dialog.epochs.setValue(epochs)
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, fill)
    run_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Run")
    action = next(a for a in run_menu.actions() if a.text() == "Run &on…")
    action.trigger()  # the dialog is modal: fill() answers it
    return shown


def test_run_on_a_ray_cluster_from_the_run_menu(ray_address, make_main_window, qtbot,
                                                tmp_path):
    folder = tmp_path / "digits_mlp"
    shutil.copytree(examples_dir() / "digits_mlp", folder,
                    ignore=shutil.ignore_patterns(RUNS_DIR))
    window = make_main_window(load_project(folder))
    seen: list[tuple[str, str]] = []  # (event, the job's state on the cluster then)
    jobs: list[str] = []

    def watch(event) -> None:
        if isinstance(event, RunStarted):
            jobs.append(event.config["job"])
        if isinstance(event, MetricSample):
            seen.append(("metric", job_state(ray_address, jobs[-1])))

    window.controller.run_event.connect(watch)

    run_on(window, qtbot, address=ray_address, epochs=2)
    assert window.controller.busy and window.run_state.text() == "Training on a cluster…"
    assert not window.runs.act_pause.isEnabled() and window.runs.act_stop.isEnabled()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=120_000)
    finished = window.controller.last_finished
    assert finished.status == "ok", finished.error
    assert ("metric", "RUNNING") in seen  # the panel got curves while the job ran
    assert window.training.metrics.point_count() > 0
    assert window.training.status.text().startswith("Done: 2 epoch(s)")
    # the weights came back into the project, and the open network holds them
    project = load_project(folder)
    assert project.weights_path is not None and project.weights_path.is_file()
    assert finished.summary["weights"] == str(project.weights_path)
    assert window.session.weights_loaded and not window.weights_dirty
    # the choice is remembered for next time
    assert AppSettings.load().run_on == {"id": "wb_ray.ray", "params": {"address": ray_address},
                                         "epochs": 2}

    # a second job, stopped with Stop: the project stays as the first job left it
    before = snapshot(folder)
    seen.clear()
    shown = run_on(window, qtbot, address=None, epochs=500)
    assert shown == [ray_address]
    qtbot.waitUntil(lambda: bool(seen) or not window.controller.busy, timeout=120_000)
    assert window.controller.busy, window.controller.last_finished.error
    window.runs.act_stop.trigger()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60_000)
    assert window.controller.last_finished.status == "cancelled"
    assert job_state(ray_address, jobs[-1]) == "STOPPED"
    assert window.training.status.text().startswith("Stopped")
    assert snapshot(folder) == before


def test_run_on_asks_for_a_saved_project_first(make_main_window):
    window = make_main_window()  # a new project, in no folder yet
    assert window.runs.run_on() == ""
    assert window.last_message.startswith("Save the project first")
    assert not window.controller.busy
