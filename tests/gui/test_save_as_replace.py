"""Save As into a folder that holds another project asks first, then replaces the whole project
(its weights go, its run records stay) or nothing at all."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.weights import load_weights
from workbench.core.runs.session import Session
from workbench.testing.fixtures import make_tiny_project


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_save_as_into_another_project_asks_and_replaces_all_or_nothing(make_main_window,
                                                                       tmp_path):
    other = make_tiny_project(tmp_path / "other")
    other.name = "other"
    save_project(other)
    mine = make_tiny_project(tmp_path / "mine")
    mine.name = "mine"
    save_project(mine)
    window = make_main_window(load_project(tmp_path / "mine"))
    trained = Session(other, window.host.registry)
    with torch.no_grad():  # the other project is trained: its weights differ from ours
        for param in trained.build().parameters():
            param.add_(1.0)
    old_weights = trained.save_weights().name
    (tmp_path / "other" / "runs").mkdir()
    (tmp_path / "other" / "runs" / "train-1.jsonl").write_text("{}\n")
    assert window.projects.prepare_model()  # this window's network, not saved anywhere yet
    before_other, before_mine = files(tmp_path / "other"), files(tmp_path / "mine")

    asked = []
    window.ask_replace_folder = lambda folder, holds_project: (
        asked.append((Path(folder), holds_project)) or False)
    assert not window.save_as(tmp_path / "other")  # declined
    assert asked == [(tmp_path / "other", True)]
    assert files(tmp_path / "other") == before_other and files(tmp_path / "mine") == before_mine
    assert window.doc.project.folder == tmp_path / "mine"

    window.ask_replace_folder = lambda folder, holds_project: True
    assert window.save_as(tmp_path / "other")
    saved = load_project(tmp_path / "other")
    assert saved.name == "mine" and window.doc.project.folder == tmp_path / "other"
    assert sorted(files(tmp_path / "other")) == [
        "project.json", str(Path("runs") / "train-1.jsonl"), saved.weights_file]
    assert old_weights != saved.weights_file  # the other project's weights are gone
    net = Session(saved, window.host.registry).build(load_saved_weights=False)
    load_weights(net, saved.weights_path)
    ours = window.projects.session.model.state_dict()
    assert all(torch.equal(value, ours[key]) for key, value in net.state_dict().items())
    assert files(tmp_path / "mine") == before_mine
    assert "Save failed" not in (getattr(window, "last_message", "") or "")
