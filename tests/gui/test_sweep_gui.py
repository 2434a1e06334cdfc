"""Sweeps in the app: "Sweep this setting…" on an inspector field opens Run ▸ Sweep…, the dialog
checks the values as they are typed, the training panel follows the trials, and the Variants view
shows them when the sweep ends; Stop ends a sweep leaving nothing half-made. The core's sweep is
tested in tests/core/test_sweep.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from workbench.core.persistence.project_files import load_project
from workbench.core.runs.events import Progress
from workbench.gui.dialogs.sweep_dialog import SweepDialog
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui

LR = "training.rule.params.lr"


def answer_dialog(qtbot, fill, seen: list) -> None:
    """Answer the modal Sweep dialog with ``fill(dialog)`` then click Run."""

    def later() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, SweepDialog)
        seen.append(dialog)
        fill(dialog)
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if not ok.isEnabled():  # fail the test, not hang it
            seen.append(f"Run disabled: {dialog.preview.text()}")
            dialog.reject()
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, later)


def sweep_from_the_inspector(window, path: str) -> None:
    """Right-click the setting's field in the inspector and choose "Sweep this setting…"."""
    editor = window.inspector.setting_editors()[path]
    menu = window.inspector.context_menu(path, editor)
    action = next(a for a in menu.actions() if a.text() == "Sweep this setting…")
    action.trigger()  # the dialog is modal: answer_dialog() answers it


def test_sweeping_the_learning_rate_from_the_inspector_fills_the_variants_view(
        make_main_window, qtbot, tmp_path):
    make_tiny_project(tmp_path / "tiny")
    window = make_main_window(load_project(tmp_path / "tiny"))
    said: dict = {}

    def fill(dialog: SweepDialog) -> None:
        row = dialog.rows[0]
        said["setting"], said["start"] = row.setting.currentText(), row.values.text()
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        qtbot.keyClicks(row.values, ", fast")
        said["bad"], said["bad_ok"] = dialog.preview.text(), ok.isEnabled()
        dialog.fill_from.setValue(0.001)
        dialog.fill_to.setValue(0.1)
        dialog.fill_count.setValue(3)
        dialog.fill_log.setChecked(True)
        qtbot.mouseClick(dialog.fill_button, Qt.MouseButton.LeftButton)
        said["filled"], said["preview"] = row.values.text(), dialog.preview.text()
        dialog.epochs.setValue(1)

    dialogs: list = []
    answer_dialog(qtbot, fill, dialogs)
    sweep_from_the_inspector(window, LR)
    assert len(dialogs) == 1, dialogs
    assert said["setting"] == "Learning rate (Training)" and said["start"] == "0.005"
    assert "training.rule.params.lr: expected a number, got 'fast'" in said["bad"]
    assert not said["bad_ok"]  # Run waits for values that make sense
    assert said["filled"] == "0.001, 0.01, 0.1"
    assert said["preview"] == "3 trials, saved as variants/sweep-lr-t01 … sweep-lr-t03"
    assert window.run_state.text() == "Sweeping…"
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=120_000)

    finished = window.controller.last_finished
    assert finished.status == "ok", finished.error
    status = window.training.status.text()
    assert status.startswith("Done: 3 of 3 trial(s) trained; best lr=")
    assert window.docks["variants"].isVisible()
    table = window.variants.table
    cells = [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]
    assert [c[2] for c in cells[1:]] == ["lr=0.001", "lr=0.01", "lr=0.1"]
    assert all(c[1] == "sweep-lr" for c in cells[1:])
    accuracy = [float(table.item(r, 3).text()) for r in range(1, 4)]
    assert [round(a / 100, 4) for a in accuracy] == \
        [round(row["accuracy"], 4) for row in finished.summary["trials"]]
    # the open project was only read: no edit, nothing to save
    assert not window.projects.is_dirty
    assert load_project(tmp_path / "tiny").training.rule.params["lr"] == 0.005


def test_stop_ends_a_sweep_and_keeps_no_half_trained_trial(make_main_window, qtbot, tmp_path):
    make_tiny_project(tmp_path / "tiny", epochs=50)
    window = make_main_window(load_project(tmp_path / "tiny"))
    progressed: list = []
    window.controller.run_event.connect(
        lambda e: progressed.append(e) if isinstance(e, Progress) else None)

    def fill(dialog: SweepDialog) -> None:
        assert dialog.rows[0].current.path == LR  # Run ▸ Sweep… starts with the learning rate
        dialog.rows[0].values.setText("0.001, 0.01")

    dialogs: list = []
    answer_dialog(qtbot, fill, dialogs)
    window.runs.act_sweep.trigger()
    assert len(dialogs) == 1, dialogs
    qtbot.waitUntil(lambda: bool(progressed), timeout=60_000)
    qtbot.mouseClick(window.training.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60_000)
    assert window.controller.last_finished.status == "cancelled"
    assert window.training.status.text() == "Stopped: 0 of 2 trial(s) trained"
    variants = Path(tmp_path / "tiny" / "variants")
    assert not variants.exists() or not any(variants.iterdir())


def test_sweep_asks_for_a_saved_project_first(make_main_window):
    window = make_main_window()  # a new project, in no folder yet
    assert window.runs.sweep() == ""
    assert window.last_message.startswith("Save the project first")
    assert not window.controller.busy


def test_a_sweep_of_a_compressed_variant_lists_its_trials_by_their_values(qtbot, tmp_path,
                                                                          plugin_host):
    """A trial of a compressed variant is its graph trained from fresh weights at full
    precision: the Variants view lists it as the sweep's trial, by its values and its real
    size; a trial compressed in turn shows its compression."""
    from workbench.core.runs import catalog
    from workbench.core.runs.session import Session
    from workbench.core.runs.sweep import SweepAxis
    from workbench.gui.views.compare import VariantsView

    def session(folder: Path) -> Session:
        return Session(load_project(folder), plugin_host.registry)

    def compress(folder: Path, out: Path) -> None:
        finished = catalog.compress(session(folder), method="wb_qp_snn.uniform",
                                    params={"bits": 4, "keep_first_last": False,
                                            "finetune_epochs": 1}, out=out, limit=32).result()
        assert finished.status == "ok", finished.error

    tiny = tmp_path / "tiny"
    make_tiny_project(tiny)
    assert session(tiny).train(epochs=1, save_weights=True).result().status == "ok"
    variant = tiny / "variants" / "tiny-uniform"
    compress(tiny, variant)
    swept = catalog.sweep(session(variant), axes=[SweepAxis("lr", (0.01, 0.02))], epochs=1,
                          limit=32).result()
    assert swept.status == "ok", swept.error
    trial = variant / "variants" / "sweep-lr-t01"
    assert load_project(trial).compression == []  # the 4 bits were in the variant's weights

    view = VariantsView()
    qtbot.addWidget(view)
    view.set_project(load_project(variant))
    rows = {r[0]: r[1:] for r in view.table_texts()}
    assert rows["tiny-uniform lr=0.01"][:2] == ["sweep-lr", "lr=0.01"]
    assert rows["tiny-uniform lr=0.02"][:2] == ["sweep-lr", "lr=0.02"]
    opened = rows["tiny-uniform  (open)"]
    assert opened[0] == "wb_qp_snn.uniform"
    # size: the trials' 32-bit weights against the variant's packed 4-bit ones
    assert rows["tiny-uniform lr=0.01"][3] == rows["tiny"][3] != opened[3]

    compress(trial, trial / "variants" / "t01-4bit")
    view.set_project(load_project(trial / "variants" / "t01-4bit"))
    assert view.table_texts()[0][1] == "wb_qp_snn.uniform"
