"""File ▸ Examples and the default project open the user's copies (the status bar says where);
saving never writes into the shipped example; NIR files default outside project folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.model.project import Project
from workbench.core.persistence.examples import examples_dir, user_projects_dir
from workbench.gui.exchange_actions import export_start, free_folder
from workbench.testing.fixtures import close_window, make_tiny_project, tiny_graph

pytestmark = pytest.mark.gui


def test_an_example_from_the_menu_opens_the_users_copy(make_main_window, qtbot):
    window = make_main_window()
    menu = {action.text(): action for action in window.examples_menu.actions()}
    assert sorted(menu) == ["digits_bestformer", "digits_conv", "digits_mlp", "digits_mpd_ed",
                            "digits_q_snn", "digits_snn_vit_ssa", "digits_snn_vit_sssa",
                            "digits_std_ed", "digits_stdbp", "eeg_qt_snn", "eeg_snn",
                            "vowels_qt_snn", "vowels_snn"]
    shipped = (examples_dir() / "digits_mlp" / "project.json").read_bytes()
    copy = user_projects_dir() / "digits_mlp"

    menu["digits_mlp"].trigger()
    assert window.doc.project.folder == copy
    assert window.statusBar().currentMessage() == (
        f"Copied the example digits_mlp to {copy} (the shipped example stays unchanged)")
    window.doc.set_setting("training.epochs", 3)  # an edit, then File ▸ Save
    assert window.doc.dirty and window.save()
    assert (examples_dir() / "digits_mlp" / "project.json").read_bytes() == shipped
    assert (copy / "project.json").read_bytes() != shipped

    menu["digits_mlp"].trigger()  # the saved copy again, not a fresh one
    assert window.doc.project.folder == copy and window.doc.project.training.epochs == 3
    assert window.statusBar().currentMessage() == f"Opened your copy of digits_mlp at {copy}"


def test_the_app_opens_the_copy_of_the_default_example(qtbot, tmp_path, monkeypatch):
    from workbench.gui.app import create_window
    from workbench.gui.settings import AppSettings

    window = create_window(settings=AppSettings(), offer_recovery=False)
    try:
        copy = user_projects_dir() / "digits_conv"
        assert window.doc.project.folder == copy and (copy / "project.json").is_file()
        assert window.statusBar().currentMessage().startswith(
            "Copied the example digits_conv to ")
        assert not window.windowIcon().isNull()
    finally:
        close_window(window)


def test_nir_files_default_outside_project_folders(tmp_path):
    project = make_tiny_project(tmp_path / "projects" / "tiny")
    project.folder = tmp_path / "projects" / "tiny"
    # Export suggests a file beside the project, never inside it
    assert export_start(project) == (tmp_path / "projects" / "tiny.nir")
    assert export_start(Project("untitled", tiny_graph())) == user_projects_dir() / "untitled.nir"
    # a file inside a project (also deeper, in a sub-folder) imports beside that project
    assert free_folder(project.folder / "tiny.nir") == (tmp_path / "projects" / "tiny-2")
    deep = project.folder / "exports" / "net.nir"
    assert free_folder(deep) == (tmp_path / "projects" / "net")
    loose = tmp_path / "files" / "net.nir"
    assert free_folder(loose) == (tmp_path / "files" / "net")
    assert not Path(free_folder(loose)).exists()
