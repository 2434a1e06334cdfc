"""Examples open as the user's copies: the shipped files never change, a copy is made once and
reused, and the command line says which folder it opened."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.model.errors import ProjectError
from workbench.core.persistence.examples import (
    EXAMPLES_ENV,
    PROJECTS_ENV,
    examples_dir,
    list_examples,
    project_to_open,
    user_projects_dir,
)
from workbench.testing.fixtures import make_tiny_project


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_examples_ship_inside_the_package():
    names = [p.name for p in list_examples()]
    assert names == ["digits_bestformer", "digits_conv", "digits_mlp", "digits_mpd_ed",
                     "digits_q_snn", "digits_snn_vit_ssa", "digits_snn_vit_sssa",
                     "digits_std_ed", "digits_stdbp", "eeg_qt_snn", "eeg_snn", "vowels_qt_snn",
                     "vowels_snn"]
    assert examples_dir().parent.name == "resources"
    assert examples_dir().parents[1] == Path(__import__("workbench").__file__).parent


def test_an_example_is_copied_once_then_reused(tmp_path, monkeypatch):
    shipped = examples_dir() / "digits_mlp"
    before = snapshot(shipped)
    folder, note = project_to_open("digits_mlp")
    assert folder == user_projects_dir() / "digits_mlp" == tmp_path / "my_projects" / "digits_mlp"
    assert note == (f"copied the example digits_mlp to {folder} (the shipped example stays "
                    "unchanged)")
    assert (folder / "project.json").read_bytes() == (shipped / "project.json").read_bytes()
    (folder / "project.json").write_text((folder / "project.json").read_text() + "\n")
    # the user's copy, edited, is what opens next time: by name, by the shipped folder or file
    for given in ("digits_mlp", shipped, shipped / "project.json"):
        again, note = project_to_open(given)
        assert again == folder and note == f"opened your copy of digits_mlp at {folder}"
    assert (folder / "project.json").read_text().endswith("\n\n")
    assert snapshot(shipped) == before
    # a folder of that name in the working directory is that folder, not the example
    monkeypatch.chdir(tmp_path)
    make_tiny_project(tmp_path / "digits_mlp")
    assert project_to_open("digits_mlp") == (Path("digits_mlp"), "")
    assert project_to_open("elsewhere") == (Path("elsewhere"), "")


def test_a_folder_that_is_not_a_project_is_left_alone():
    taken = user_projects_dir() / "digits_conv"
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("mine")
    folder, _ = project_to_open(None)  # the default example
    assert folder == user_projects_dir() / "digits_conv-2"
    assert (folder / "project.json").is_file() and os.listdir(taken) == ["notes.txt"]


def test_cli_runs_on_the_copy_and_says_so(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "shipped"
    make_tiny_project(shipped / "tiny")
    monkeypatch.setenv(EXAMPLES_ENV, str(shipped))
    before = snapshot(shipped)
    out = io.StringIO()
    assert main(["train", "tiny", "--epochs", "1"], out=out) == 0
    copy = user_projects_dir() / "tiny"
    said = f"snn-workbench: copied the example tiny to {copy} (the shipped example stays unchanged)"
    assert capsys.readouterr().err.splitlines() == [said]
    assert f"{copy}" in out.getvalue()  # weights saved to the copy
    assert any(copy.glob("*.safetensors")) and snapshot(shipped) == before
    assert main(["info", "tiny"], out=io.StringIO()) == 0
    assert capsys.readouterr().err == f"snn-workbench: opened your copy of tiny at {copy}\n"


def test_a_projects_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv(PROJECTS_ENV, str(blocked / "projects"))
    with pytest.raises(ProjectError, match=PROJECTS_ENV):
        project_to_open("digits_mlp")
    assert main(["info"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot copy the example digits_conv" in err
