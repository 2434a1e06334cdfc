"""Project compute settings in the inspector: bound to ``project.compute``, undoable, saved,
and used by the next run."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QSpinBox

from workbench.core.persistence.project_files import load_project
from workbench.core.runs.events import RunStarted
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 120_000


def test_precision_set_in_the_inspector_reaches_the_next_training_run(
        make_main_window, qtbot, tmp_path):
    folder = tmp_path / "p"
    window = make_main_window(make_tiny_project(folder))
    precision = window.inspector.findChild(QComboBox, "compute_precision")
    threads = window.inspector.findChild(QSpinBox, "compute_threads")
    assert precision is not None and threads is not None  # the project form: no node selected
    assert precision.currentData() == "fp32" and threads.value() == 0

    # the user picks bf16 with the keyboard (fp32 -> bf16) and one thread
    precision.setFocus()
    qtbot.keyClick(precision, Qt.Key.Key_Down)
    assert precision.currentData() == "bf16"
    assert window.doc.project.compute.precision == "bf16"
    assert window.isWindowModified()
    window.act_undo.trigger()
    assert window.doc.project.compute.precision == "fp32" and precision.currentData() == "fp32"
    window.act_redo.trigger()
    assert window.doc.project.compute.precision == "bf16" and precision.currentData() == "bf16"
    threads.setValue(1)
    assert window.doc.project.compute.threads == 1

    assert window.save()
    saved = load_project(folder).compute
    assert (saved.precision, saved.threads, saved.device) == ("bf16", 1, "auto")

    started = []
    window.controller.run_event.connect(
        lambda event: started.append(event) if isinstance(event, RunStarted) else None)
    window.doc.set_setting("training.epochs", 1)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(window.training.train_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "ok", window.last_message
    assert len(started) == 1
    assert started[0].config["precision"] == "bf16" and started[0].config["threads"] == 1


def test_an_unavailable_device_fails_the_run_in_one_line(make_main_window, qtbot, tmp_path,
                                                         monkeypatch):
    from workbench.core.build import compute

    monkeypatch.setattr(compute, "_device_available", lambda name: name == "cpu")
    window = make_main_window(make_tiny_project(tmp_path / "p"))
    device = window.inspector.findChild(QComboBox, "compute_device")
    assert [device.itemData(i) for i in range(device.count())] == ["auto", "cpu", "cuda", "mps"]
    device.activated.emit(device.findData("mps"))  # what choosing it in the list sends
    assert window.doc.project.compute.device == "mps"
    assert device.currentData() == "mps"
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        window.start_evaluation()
    assert finished.args[1] == "failed"
    assert "compute.device" in window.last_message and "\n" not in window.last_message


def test_kernels_and_compile_are_set_in_the_inspector_and_saved(make_main_window, tmp_path):
    from PySide6.QtWidgets import QCheckBox

    folder = tmp_path / "p"
    window = make_main_window(make_tiny_project(folder))
    kernels = window.inspector.findChild(QComboBox, "compute_kernels")
    compile_box = window.inspector.findChild(QCheckBox, "compute_compile")
    assert [kernels.itemData(i) for i in range(kernels.count())] == ["auto", "eager", "fused"]
    assert kernels.currentData() == "auto" and not compile_box.isChecked()
    kernels.activated.emit(kernels.findData("eager"))
    compile_box.setChecked(True)
    assert window.doc.project.compute.kernels == "eager" and window.doc.project.compute.compile
    window.act_undo.trigger()
    assert not window.doc.project.compute.compile and not compile_box.isChecked()
    window.act_redo.trigger()
    assert window.save()
    saved = load_project(folder).compute
    assert (saved.kernels, saved.compile) == ("eager", True)
