"""User journeys through the real main window (pytest-qt, offscreen)."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QSpinBox

from workbench.core.model.project import Component
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project, save_project
from workbench.gui import workers
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 120_000


def _copy_example(tmp_path, name="digits_mlp"):
    folder = tmp_path / name
    shutil.copytree(examples_dir() / name, folder,
                    ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    return folder


def _train(qtbot, window, epochs=1):
    window.doc.set_setting("training.epochs", epochs)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(window.training.train_button, Qt.MouseButton.LeftButton)
    return finished.args


def test_open_example_train_inspect_edit_undo_save_reopen(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    assert window.open_project(_copy_example(tmp_path))
    assert window.doc.project.name == "digits_mlp"
    assert window.editor.node_count() == 4

    run_id, status = _train(qtbot, window, epochs=1)
    assert status == "ok"
    assert window.training.metrics.point_count() > 0
    assert "test accuracy" in window.training.status.text()
    window.docks["raster"].raise_()
    qtbot.waitUntil(lambda: window.raster.spike_count() > 0, timeout=5_000)
    assert window.isWindowModified()  # trained weights are unsaved work
    target = tmp_path / "saved"
    assert window.save_as(target)
    assert load_project(target).weights_path.exists()
    assert not window.isWindowModified()

    # change a parameter in the inspector, through its spin box
    window.editor.select_node("hidden1")
    spin = window.inspector.findChild(QSpinBox, "param_out_features")
    assert spin is not None and spin.value() == 256
    spin.selectAll()
    qtbot.keyClicks(spin, "64")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.doc.project.graph.node("hidden1").params["out_features"] == 64
    assert window.isWindowModified()
    qtbot.waitUntil(lambda: window.editor.node_item("hidden1").shape_text() == "[64]", timeout=3_000)

    window.act_undo.trigger()
    assert window.doc.project.graph.node("hidden1").params.get("out_features", 256) == 256
    assert window.inspector.findChild(QSpinBox, "param_out_features").value() == 256
    assert not window.isWindowModified()
    window.act_redo.trigger()
    assert window.doc.project.graph.node("hidden1").params["out_features"] == 64

    assert window.save()
    saved = window.doc.project.to_dict()
    window.close()

    again = make_main_window(load_project(target))
    assert again.doc.project.to_dict() == saved
    assert again.doc.project.graph.node("hidden1").params["out_features"] == 64
    # the saved weights belong to the 256-wide layer: said, not crashed
    assert "shape" in again.last_message


def test_stop_cancels_mid_epoch(make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path, "digits_conv")))
    window.doc.set_setting("training.epochs", 50)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        window.start_training(fresh=True)
        qtbot.waitUntil(lambda: window.training.progress.value() > 0, timeout=RUN_TIMEOUT)
        qtbot.mouseClick(window.training.stop_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "cancelled"
    assert window.training.progress.value() < window.training.progress.maximum()
    assert window.training.status.text().startswith("Stopped")
    assert window.training.train_button.isEnabled()


def _wait_until_steady(qtbot, read, *, quiet_ms: int = 150, timeout_ms: int = 10_000) -> None:
    """Wait until ``read()`` keeps its value for ``quiet_ms``."""
    waited, last = 0, read()
    while waited < timeout_ms:
        qtbot.wait(quiet_ms)
        waited += quiet_ms
        now = read()
        if now == last:
            return
        last = now
    raise AssertionError(f"still changing after {timeout_ms} ms")


def test_pause_and_resume(make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path, "digits_conv")))
    window.doc.set_setting("training.epochs", 2)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        window.start_training(fresh=True)
        qtbot.waitUntil(lambda: window.training.progress.value() > 0, timeout=RUN_TIMEOUT)
        qtbot.mouseClick(window.training.pause_button, Qt.MouseButton.LeftButton)
        assert window.controller.state == "paused"
        assert window.run_state.text() == "Paused"
        # batches the worker finished before it saw the pause may still be on their way to the
        # GUI (more on a loaded machine): let them land, then progress must stand still
        _wait_until_steady(qtbot, window.training.progress.value)
        paused_at = window.training.progress.value()
        qtbot.wait(300)
        assert window.training.progress.value() == paused_at
        qtbot.mouseClick(window.training.pause_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "ok"


def test_f5_trains_and_escape_stops(make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path, "digits_conv")))
    window.doc.set_setting("training.epochs", 50)
    window.activateWindow()
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        window.act_train.trigger()  # what F5 triggers
        assert window.act_train.shortcut().toString() == "F5"
        qtbot.waitUntil(lambda: window.controller.state == "training", timeout=5_000)
        assert window.act_stop.shortcut().toString() == "Esc"
        window.act_stop.trigger()
    assert finished.args[1] == "cancelled"


def test_closing_during_training_stops_the_run_cleanly(make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path, "digits_conv")))
    window.doc.set_setting("training.epochs", 50)
    window.start_training(fresh=True)
    qtbot.waitUntil(lambda: window.training.progress.value() > 0, timeout=RUN_TIMEOUT)
    window.ask_save_changes = lambda: "discard"
    assert window.close()
    assert not window.controller.busy
    assert workers.live_threads() == []


def test_broken_project_file_shows_the_problem_and_the_app_stays_usable(
        make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "project.json").write_text('{"format_version": 1, "graph": {"nodes": [')
    assert not window.open_project(broken)
    assert "project.json" in window.last_message and "not valid JSON" in window.last_message
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "not valid JSON" in boxes[0].text()
    boxes[0].accept()
    assert window.doc.project.name == "digits_mlp"  # the open project is untouched
    run_id, status = _train(qtbot, window, epochs=1)
    assert status == "ok"


def test_failing_plugin_appears_in_the_plugins_dialog(make_main_window, plugin_module):
    from workbench.pluginhost.manager import PluginHost

    name = plugin_module("exploding_plugin", """
        from workbench.pluginhost import hookimpl
        @hookimpl
        def wb_blocks():
            raise RuntimeError("the lab's GPU kernel is missing")
        """)
    host = PluginHost(strict=False)
    host.load(modules=[name])
    window = make_main_window(host=host)
    assert window.plugin_badge.isVisible()
    dialog = window.show_plugins()
    rows = dialog.failure_rows()
    assert ("exploding_plugin", "hook wb_blocks: RuntimeError: the lab's GPU kernel is missing") in rows
    assert window.palette.item_for("wb_core.lif") is not None  # the others still work
    dialog.close()


def test_invalid_edge_shows_a_badge(make_main_window, qtbot, tmp_path):
    window = make_main_window(load_project(_copy_example(tmp_path, "digits_conv")))
    assert not window.editor.node_item("conv2").badge_visible()
    window.doc.connect("fc", "conv2")  # a cycle: conv2 -> ... -> fc -> conv2
    window.doc.disconnect("pool1", "conv2")
    window.validate_now()
    assert window.editor.graph_error() or window.editor.node_item("conv2").badge_visible()
    window.act_undo.trigger()
    window.act_undo.trigger()
    window.validate_now()
    assert not window.editor.node_item("conv2").badge_visible()
    # a real shape error: an edge that feeds a flat vector into a convolution
    node = window.doc.add_node("wb_core.conv2d", after="flat")
    window.validate_now()
    item = window.editor.node_item(node)
    assert item.badge_visible()
    assert "expects a [C, H, W] input, got [256]" in item.badge_text()


def test_palette_search_and_double_click_adds_a_node(make_main_window, qtbot):
    window = make_main_window(make_tiny_project_in_memory())
    window.palette.search.setText("lif")
    visible = window.palette.visible_spec_ids()
    assert "wb_core.lif" in visible and "wb_core.linear" not in visible
    before = window.editor.node_count()
    item = window.palette.item_for("wb_core.dropout")
    window.palette.search.clear()
    window.palette.tree.itemActivated.emit(item, 0)
    assert window.editor.node_count() == before + 1
    assert window.editor.selected_node_ids() == [window.doc.project.graph.ids()[-1]]


def make_tiny_project_in_memory():
    from workbench.core.model.graph import Graph, Node
    from workbench.core.model.project import Project

    return Project("tiny", Graph.chain([Node("flat", "wb_core.flatten"),
                                        Node("fc", "wb_core.linear", {"out_features": 10})]))


def test_dirty_title_and_prompt_on_close(make_main_window, tmp_path):
    window = make_main_window(make_tiny_project(tmp_path / "p"))
    assert not window.isWindowModified()
    window.doc.set_node_param("hidden", "out_features", 16)
    assert window.isWindowModified() and "[*]" in window.windowTitle()
    asked = []
    window.ask_save_changes = lambda: asked.append(1) or "cancel"
    assert not window.close()  # the user cancelled: the window stays
    assert asked and window.isVisible()
    window.ask_save_changes = lambda: "save"
    assert window.close()
    assert load_project(tmp_path / "p").graph.node("hidden").params["out_features"] == 16


def test_autosave_and_restore_after_a_crash(make_main_window, qtbot, tmp_path, plugin_host):
    from workbench.gui import recovery
    from workbench.gui.app import offer_recoveries

    folder = tmp_path / "p"
    make_tiny_project(folder)
    window = make_main_window(load_project(folder))
    window.doc.set_node_param("hidden", "out_features", 24)
    path = window.autosave_now()
    assert path is not None and path.exists()
    # "crash": the window goes away without saving or cleaning up
    window.controller.shutdown()
    window.hide()

    fresh = make_main_window()
    dialog = offer_recoveries(fresh)
    assert dialog is not None and "tiny" in dialog.row_texts()[0]
    qtbot.mouseClick(dialog.rows[0].restore_button, Qt.MouseButton.LeftButton)
    assert fresh.doc.project.graph.node("hidden").params["out_features"] == 24
    assert fresh.doc.project.folder == folder
    assert fresh.isWindowModified()
    # still unsaved: the restored work is autosaved again, in the same one file
    assert [found.file for found in recovery.find_recoveries()] == [path]
    assert load_project(folder).graph.node("hidden").params["out_features"] == 32  # unsaved


def test_evaluate_fills_the_energy_ledger_and_the_table_reprices(make_main_window, qtbot,
                                                                  tmp_path):
    window = make_main_window(make_tiny_project(tmp_path / "p"))
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(window.training.evaluate_button, Qt.MouseButton.LeftButton)
    assert "Estimate" in window.energy.provenance_text()
    assert "45 nm, FP32" in window.energy.provenance_text()
    fp32 = sum(window.energy.bar_values())
    assert fp32 > 0
    window.energy.table_combo.setCurrentIndex(window.energy.table_combo.findData("wb_core.int8_45nm"))
    assert window.doc.project.energy.table == "wb_core.int8_45nm"
    assert "INT8" in window.energy.provenance_text()
    assert sum(window.energy.bar_values()) < fp32 / 10


def test_loading_weights_of_another_network_is_refused(make_main_window, qtbot, tmp_path):
    window = make_main_window(make_tiny_project(tmp_path / "p"))
    other = make_tiny_project(tmp_path / "other")
    other.graph.nodes[1].params["out_features"] = 8
    save_project(other)
    from workbench.core.runs.session import Session

    session = Session(other, window.host.registry)
    session.build()
    session.save_weights()
    assert not window.load_weights(other.weights_path)
    assert "shape" in window.last_message and "hidden.fc.weight" in window.last_message
    _train(qtbot, window, epochs=1)  # still usable


def test_layout_theme_and_recent_projects_persist(make_main_window, tmp_path):
    from workbench.gui.settings import AppSettings

    folder = _copy_example(tmp_path)
    window = make_main_window()
    window.open_project(folder)
    window.set_theme("dark")
    window.docks["log"].hide()
    window.ask_save_changes = lambda: "discard"
    window.close()
    settings = AppSettings.load()
    assert settings.theme == "dark"
    assert settings.recent_projects[0] == str(folder.resolve())
    assert settings.window_state
    again = make_main_window(settings=settings)
    assert not again.docks["log"].isVisible()
    assert [a.text() for a in again.recent_menu.actions()][0] == str(folder.resolve())
    again.set_theme("light")


def test_about_lists_versions(make_main_window):
    from workbench.gui.dialogs.about import about_text

    make_main_window()
    text = about_text(["wb_core"])
    assert "torch" in text and "PySide6-Essentials" in text and "wb_core" in text


def test_plugin_views_get_docks_and_probes_and_a_broken_one_is_reported(
        make_main_window, plugin_module, qtbot, tmp_path):
    from workbench.pluginhost.manager import PluginHost

    plugin_module("view_plugin_qt", """
        from PySide6.QtWidgets import QLabel

        class GoodView(QLabel):
            def __init__(self):
                super().__init__("good")
                self.items = []

            def set_probe(self, item):
                self.items.append(item)

        def broken():
            raise RuntimeError("no GL context")
        """)
    name = plugin_module("view_plugin", """
        from workbench.pluginhost import hookimpl, ViewSpec

        @hookimpl
        def wb_gui_views():
            return [ViewSpec(id="view_plugin.good", display_name="Good view",
                             factory="view_plugin_qt:GoodView"),
                    ViewSpec(id="view_plugin.bad", display_name="Bad view",
                             factory="view_plugin_qt:broken")]
        """)
    host = PluginHost(strict=False)
    host.load(modules=[name])
    window = make_main_window(make_tiny_project(tmp_path / "p"), host=host)
    assert "view_plugin.bad" not in window.docks
    assert ("view_plugin", "view view_plugin.bad: RuntimeError: no GL context") in \
        window.show_plugins().failure_rows()
    assert window.plugin_badge.isVisible()
    window.docks["view_plugin.good"].raise_()
    window.probe_now(1)
    view = window.plugin_views["view_plugin.good"]
    qtbot.waitUntil(lambda: len(view.items) > 0, timeout=3_000)
    assert view.items[-1]["index"] == 1 and "input" in view.items[-1]


def test_path_and_file_parameters_get_the_matching_chooser(make_main_window, tmp_path,
                                                          monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QPushButton

    window = make_main_window(make_tiny_project(tmp_path / "p"))
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (asked.append("file") or "/data/x.npz", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: asked.append("folder") or "/data/mnist"))
    window.doc.set_setting("dataset", Component("wb_datasets.npz"))
    form = window.inspector.forms["dataset"]
    form.editors["path"].findChild(QPushButton).click()
    assert asked == ["file"]
    assert window.doc.project.dataset.params["path"] == "/data/x.npz"
    window.doc.set_setting("dataset", Component("wb_datasets.mnist"))
    window.inspector.forms["dataset"].editors["path"].findChild(QPushButton).click()
    assert asked == ["file", "folder"]
    assert window.doc.project.dataset.params["path"] == "/data/mnist"
