"""The app can never lock a user out: every autosave is offered and only the declined one goes,
trained-but-unsaved weights come back after a crash, damaged settings and recovery files are set
aside with a warning, and the GUI opens (or falls back from) every project the CLI opens.

Each test starts the app the way a user does, through ``create_window`` with the config folder
the conftest points ``SNN_WORKBENCH_CONFIG`` at, and clicks the real widgets.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QMessageBox

from workbench.core.model.project import SEED_MAX
from workbench.core.persistence.examples import DEFAULT_EXAMPLE
from workbench.core.persistence.project_files import load_project, project_file, save_project
from workbench.gui import recovery
from workbench.gui.app import create_window
from workbench.testing.fixtures import close_window, make_tiny_project

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 120_000
CLICK = Qt.MouseButton.LeftButton


@pytest.fixture
def config(tmp_path):
    """The config folder of these tests (the conftest points the app at it)."""
    folder = tmp_path / "config"
    assert os.environ["SNN_WORKBENCH_CONFIG"] == str(folder)
    return folder


@pytest.fixture
def start_app(qtbot):
    """``start_app(project_path=None)``: the app's window as ``snn-workbench gui`` builds it."""
    windows = []

    def start(project_path=None, **options):
        window = create_window(project_path, **options)
        window.ask_save_changes = lambda: "discard"
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield start
    for window in windows:
        close_window(window)


def crash(window):
    """The process dies: no close, no clean-up of recovery files."""
    window.controller.shutdown()
    window.projects._autosave.stop()
    window.hide()


def _autosave_project(folder, name, hidden):
    """A saved project ``name`` in ``folder`` plus an autosave of an unsaved edit to it."""
    project = make_tiny_project(folder)
    project.name = name
    save_project(project)
    project.graph.node("hidden").params["out_features"] = hidden
    return recovery.write_recovery(project)


# -- 1. every recovery file is offered, only the declined one is removed --------------------------
def test_every_autosave_is_listed_and_only_the_discarded_one_goes(start_app, qtbot, tmp_path):
    files = {name: _autosave_project(tmp_path / name, name, hidden)
             for name, hidden in (("alpha", 11), ("beta", 12), ("gamma", 13))}
    gamma_bytes = files["gamma"].read_bytes()

    window = start_app()
    dialog = window.recovery_dialog
    assert dialog is not None and dialog.isVisible()
    texts = dialog.row_texts()
    assert len(texts) == 3
    for name in files:  # each row names the project and its folder
        assert any(name in text and str(tmp_path / name) in text for text in texts)

    beta = next(row for row in dialog.rows if "beta" in row.label.text())
    qtbot.mouseClick(beta.discard_button, CLICK)
    assert not files["beta"].exists()
    assert files["alpha"].exists() and files["gamma"].exists()
    assert len(dialog.row_texts()) == 2 and dialog.isVisible()

    alpha = next(row for row in dialog.rows if "alpha" in row.label.text())
    qtbot.mouseClick(alpha.restore_button, CLICK)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3_000)
    assert window.doc.project.name == "alpha"
    assert window.doc.project.graph.node("hidden").params["out_features"] == 11
    assert window.isWindowModified()  # restored work is unsaved work
    assert load_project(tmp_path / "alpha").graph.node("hidden").params["out_features"] == 32
    # the third stays on disk, untouched, for the next start
    assert files["gamma"].read_bytes() == gamma_bytes
    assert {found.project.name for found in recovery.find_recoveries()} == {"alpha", "gamma"}


def test_closing_the_list_keeps_every_autosave(start_app, qtbot, tmp_path):
    files = [_autosave_project(tmp_path / name, name, 9) for name in ("one", "two")]
    window = start_app()
    qtbot.mouseClick(window.recovery_dialog.keep_button, CLICK)
    assert all(file.exists() for file in files)
    assert window.doc.project.name == DEFAULT_EXAMPLE  # nothing was restored


def test_untitled_work_is_restored_and_autosaved_again(start_app, qtbot):
    from workbench.gui.project_controller import new_project

    sketch = new_project()
    sketch.name = "sketch"
    old = recovery.write_recovery(sketch)
    window = start_app()
    qtbot.mouseClick(window.recovery_dialog.rows[0].restore_button, CLICK)
    assert window.doc.project.name == "sketch" and window.doc.project.folder is None
    # its autosave moved to this run's name for it: one file, never two copies
    [found] = recovery.find_recoveries()
    assert found.project.name == "sketch" and found.file != old and not old.exists()


# -- 2. trained-but-unsaved weights are autosaved and come back --------------------------------
def test_trained_unsaved_weights_come_back_after_a_crash(start_app, qtbot, tmp_path):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    window = start_app(folder)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(window.training.train_button, CLICK)
    assert finished.args[1] == "ok"
    assert not window.doc.dirty and window.weights_dirty  # only the weights are unsaved
    # the end of the run autosaved them, without waiting for the timer
    saved = recovery.recovery_file(window.doc.project)
    assert saved.exists() and recovery.weights_file(saved).exists()
    trained = {k: v.clone() for k, v in window.session.model.state_dict().items()}
    crash(window)
    assert not list(folder.glob("weights*.safetensors"))  # never saved into the project

    again = start_app()
    row = again.recovery_dialog.rows[0]
    assert "with trained weights" in row.label.text()
    qtbot.mouseClick(row.restore_button, CLICK)
    assert again.doc.project.folder == folder
    assert again.weights_dirty and again.isWindowModified()  # shown as unsaved
    restored = again.session.model.state_dict()
    assert restored.keys() == trained.keys()
    assert all(torch.equal(restored[k], trained[k]) for k in trained)
    assert not list(folder.glob("weights*.safetensors"))  # still not saved to the project

    # a clean save writes them into the project and removes both recovery files
    assert again.save()
    assert load_project(folder).weights_path.exists()
    assert not saved.exists() and not recovery.weights_file(saved).exists()


def _autosaved_with_weights(start_app, tmp_path):
    """A window on a tiny project whose network holds unsaved weights, autosaved: ``(window,
    the recovery file)``."""
    folder = tmp_path / "p"
    make_tiny_project(folder)
    window = start_app(folder)
    assert window.projects.prepare_model()
    window.weights_dirty = True
    return window, window.autosave_now()


def test_nan_weights_keep_the_previous_recovery_weights(start_app, tmp_path):
    window, saved = _autosaved_with_weights(start_app, tmp_path)
    weights = recovery.weights_file(saved)
    good = weights.read_bytes()
    with torch.no_grad():
        next(window.session.model.parameters()).fill_(float("nan"))
    window.weights_dirty = True  # "trained" again, into NaN
    assert window.autosave_now() == saved
    assert weights.read_bytes() == good
    assert "NaN" in window.log_panel.toPlainText()


def test_discarding_on_close_removes_the_autosave_and_its_weights(start_app, tmp_path):
    window, saved = _autosaved_with_weights(start_app, tmp_path)
    assert saved.exists() and recovery.weights_file(saved).exists()
    assert window.close()  # "save the changes?" -> discard
    assert not saved.exists() and not recovery.weights_file(saved).exists()


# -- 3. damaged settings: moved aside, defaults, a warning -----------------------------------------
def _fifo(path):
    os.mkfifo(path)


SETTINGS_DAMAGE = {
    "list": b"[]",
    "recent_projects_object": b'{"recent_projects": {}}',
    "autosave_text": b'{"autosave_seconds": "60"}',
    "theme_number": b'{"theme": 5}',
    "not_utf8": b'{"theme": "\xff\xfe"}',
    "fifo": _fifo,
}


def _damage(path, content):
    """Put ``content`` (bytes, or a function making a special file) at ``path``."""
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)


@pytest.mark.parametrize("damage", list(SETTINGS_DAMAGE))
def test_damaged_settings_are_set_aside_and_defaults_used(start_app, config, damage):
    config.mkdir()
    path = config / "settings.json"
    content = SETTINGS_DAMAGE[damage]
    _damage(path, content)

    window = start_app()
    assert window.isVisible()
    assert window.settings.theme == "light" and window.settings.autosave_seconds == 60
    assert window.settings.recent_projects == []
    kept = config / "settings.json.broken"
    if callable(content):
        assert stat.S_ISFIFO(kept.lstat().st_mode)
    else:
        assert kept.read_bytes() == content  # moved aside, not deleted
    assert "settings.json" in window.statusBar().currentMessage()
    assert "using the default settings" in window.log_panel.toPlainText()
    assert str(kept) in window.startup_warnings[0]


def test_an_earlier_broken_settings_file_is_never_overwritten(start_app, config):
    config.mkdir()
    (config / "settings.json.broken").write_text("the first damage")
    (config / "settings.json").write_text('{"disabled_plugins": "wb_sim"}')
    window = start_app()
    assert (config / "settings.json.broken").read_text() == "the first damage"
    [second] = config.glob("settings.json.broken-*")
    assert second.read_text() == '{"disabled_plugins": "wb_sim"}'
    assert "disabled_plugins" in window.startup_warnings[0]


def test_a_config_folder_that_cannot_be_written_still_starts(start_app, tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the config folder belongs")
    monkeypatch.setenv("SNN_WORKBENCH_CONFIG", str(blocker))
    window = start_app()
    assert window.isVisible() and window.doc.project.name == DEFAULT_EXAMPLE
    assert "cannot be written" in window.statusBar().currentMessage()
    window.doc.set_setting("training.epochs", 2)
    assert window.autosave_now() is None  # said in the log, not raised
    assert "autosave failed" in window.log_panel.toPlainText()
    assert blocker.read_text() == "a file where the config folder belongs"


# -- 3b. damaged recovery files: moved into recovery/broken, the app opens -------------------------
RECOVERY_DAMAGE = {
    "list": b"[]",
    "project_list": b'{"project": []}',
    "truncated": b'{"saved_at": 1700000000, "folder": null, "project": {"format": "snn-',
    "fifo": _fifo,
}


@pytest.mark.parametrize("damage", list(RECOVERY_DAMAGE))
def test_damaged_recovery_files_are_moved_aside(start_app, config, tmp_path, damage):
    folder = config / "recovery"
    folder.mkdir(parents=True)
    good = _autosave_project(tmp_path / "good", "good", 7)  # another project's autosave
    path = folder / "0123456789abcdef.json"
    content = RECOVERY_DAMAGE[damage]
    _damage(path, content)

    window = start_app()
    assert window.isVisible()
    assert not path.exists()
    kept = folder / "broken" / path.name
    if callable(content):
        assert stat.S_ISFIFO(kept.lstat().st_mode)
    else:
        assert kept.read_bytes() == content
    assert str(kept) in window.log_panel.toPlainText()
    assert "recovery" in window.statusBar().currentMessage()
    # the readable autosave is still offered
    assert [row.found.file for row in window.recovery_dialog.rows] == [good]


def test_several_damaged_files_make_one_status_message(start_app, config):
    (config / "recovery").mkdir(parents=True)
    (config / "settings.json").write_text("[]")
    (config / "recovery" / "0123456789abcdef.json").write_text("[]")
    window = start_app()
    assert "2 problems" in window.statusBar().currentMessage()
    log_text = window.log_panel.toPlainText()
    assert "settings.json.broken" in log_text and "broken/0123456789abcdef.json" in log_text
    assert window.recovery_dialog is None  # nothing readable to offer


# -- 4. the GUI opens what the CLI opens, or falls back with an error box -------------------------
def _newer_plugin_project(folder):
    make_tiny_project(folder)
    file = project_file(folder)
    data = json.loads(file.read_text())
    data["graph"]["nodes"][1]["spec_version"] = 99  # saved by a newer wb_core
    file.write_text(json.dumps(data))
    return file.read_bytes()


def test_a_project_from_a_newer_plugin_opens_the_default_with_an_error_box(start_app, tmp_path):
    folder = tmp_path / "newer"
    before = _newer_plugin_project(folder)
    window = start_app(folder)  # snn-workbench gui PROJECT
    assert window.isVisible()
    assert window.doc.project.name == DEFAULT_EXAMPLE
    assert "version 99" in window.last_message and "update the plugin" in window.last_message
    boxes = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert boxes and "version 99" in boxes[0].text()
    assert project_file(folder).read_bytes() == before

    # File > Open on it: refused with a box, the open project stays
    window.last_message = ""
    assert not window.open_project(folder)
    assert "version 99" in window.last_message
    assert window.doc.project.name == DEFAULT_EXAMPLE


def test_an_autosave_from_a_newer_plugin_is_refused_and_kept(start_app, qtbot, tmp_path):
    folder = tmp_path / "p"
    project = make_tiny_project(folder)
    project.graph.node("hidden").spec_version = 99
    file = recovery.write_recovery(project)
    window = start_app()
    qtbot.mouseClick(window.recovery_dialog.rows[0].restore_button, CLICK)
    assert "version 99" in window.last_message
    assert window.doc.project.name == DEFAULT_EXAMPLE
    assert file.exists()  # kept for when the plugin is updated


def test_the_largest_seed_shows_and_saves_exactly(make_main_window, qtbot, tmp_path):
    folder = tmp_path / "p"
    project = make_tiny_project(folder)
    project.training.seed = SEED_MAX
    save_project(project)
    window = make_main_window(load_project(folder))
    seed = window.inspector.findChild(QDoubleSpinBox, "seed")
    assert seed is not None and seed.value() == SEED_MAX
    assert seed.text() == "4294967295"

    seed.selectAll()
    qtbot.keyClicks(seed, "4294967294")
    qtbot.keyClick(seed, Qt.Key.Key_Return)
    assert window.doc.project.training.seed == SEED_MAX - 1
    assert type(window.doc.project.training.seed) is int
    window.act_undo.trigger()
    assert window.doc.project.training.seed == SEED_MAX and seed.value() == SEED_MAX
    window.act_redo.trigger()
    assert window.save()
    assert load_project(folder).training.seed == SEED_MAX - 1
    assert json.loads(project_file(folder).read_text())["training"]["seed"] == 4294967294
