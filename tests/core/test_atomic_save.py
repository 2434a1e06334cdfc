"""A project save is one atomic step, and a save never replaces another project silently.

The folder holds ``project.json`` and ``weights-<content hash>.safetensors``; the project file
names its weights, so one rename switches both (workbench/core/persistence/project_store.py).
These tests break a save at each step, kill saving processes (the CLI's save paths and the
app's Save As) at random instants, and check that the folder then loads as exactly the old or
exactly the new version; they also check the leftovers, the file modes and the refusals.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load

from workbench.core.model.errors import ProjectError
from workbench.core.model.project import PROJECT_FILE, WEIGHTS_FILE
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.persistence.project_store import (
    TargetOccupied,
    clean_leftovers,
    commit_project,
    commit_weights,
    weights_name,
)
from workbench.core.persistence.weights import load_weights, weights_bytes
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost
from workbench.testing.fixtures import make_tiny_project

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def registry():
    host = PluginHost(strict=True)
    host.load()
    return host.registry


@pytest.fixture(scope="module")
def weights(registry, tmp_path_factory):
    """Two versions of a tiny project's weights: ``{"A": bytes, "B": bytes}`` and a network
    to load them into (``net``), with the tensors of each (``tensors``)."""
    project = make_tiny_project(tmp_path_factory.mktemp("w") / "p")
    net = Session(project, registry).build(load_saved_weights=False)
    a = weights_bytes(net)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.5)
    b = weights_bytes(net)
    tensors = {"A": load(a), "B": load(b)}
    return {"A": a, "B": b, "net": net, "tensors": tensors}


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (what "unchanged" compares)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def saved_weights(folder: Path) -> bytes:
    return load_project(folder).weights_path.read_bytes()


# -- the layout ------------------------------------------------------------------------------
def test_a_save_names_the_weights_by_content_and_the_project_file_names_them(tmp_path,
                                                                              weights):
    project = make_tiny_project(tmp_path / "p")
    assert json.loads((tmp_path / "p" / PROJECT_FILE).read_text())["weights"] is None
    commit_project(project, weights=weights["A"])
    name = weights_name(weights["A"])
    assert name.startswith("weights-") and len(name) == len("weights-") + 16 + 12
    assert json.loads((tmp_path / "p" / PROJECT_FILE).read_text())["weights"] == name
    assert sorted(files(tmp_path / "p")) == [PROJECT_FILE, name]
    loaded = load_project(tmp_path / "p")
    assert loaded.weights_file == name and loaded.weights_path == tmp_path / "p" / name
    load_weights(weights["net"], loaded.weights_path)
    for key, value in weights["net"].state_dict().items():
        assert torch.equal(value, weights["tensors"]["A"][key])
    # the next generation replaces the file: the old one goes with the commit
    commit_project(loaded, weights=weights["B"])
    assert sorted(files(tmp_path / "p")) == [PROJECT_FILE, weights_name(weights["B"])]


@pytest.mark.parametrize("failing_rename", [1, 2], ids=["weights-rename", "project-rename"])
def test_a_save_broken_at_either_rename_leaves_the_old_version(tmp_path, monkeypatch, weights,
                                                              failing_rename):
    project = make_tiny_project(tmp_path / "p")
    commit_project(project, weights=weights["A"])
    before = files(tmp_path / "p")
    project.description = "version B"
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == failing_rename:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ProjectError, match="No space left.*keeps its last saved version"):
        commit_project(project, weights=weights["B"])
    monkeypatch.undo()
    assert calls[0] == weights_name(weights["B"]) and calls[-1] == (
        PROJECT_FILE if failing_rename == 2 else calls[0])
    old = load_project(tmp_path / "p")
    assert old.description == "" and saved_weights(tmp_path / "p") == weights["A"]
    # what the broken save left (the new weights file no project names) goes on a later open
    clean_leftovers(tmp_path / "p", old.weights_file, stale_after=0)
    assert files(tmp_path / "p") == before


def test_a_failure_after_the_commit_never_fails_the_save(tmp_path, monkeypatch, weights):
    project = make_tiny_project(tmp_path / "p")
    commit_project(project, weights=weights["A"])

    def unlink(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "unlink", unlink)  # the old weights cannot be removed
    commit_project(project, weights=weights["B"])
    monkeypatch.undo()
    assert saved_weights(tmp_path / "p") == weights["B"]
    assert (tmp_path / "p" / weights_name(weights["A"])).exists()  # removed on a later open


def test_a_weights_only_save_changes_nothing_else_in_the_project_file(tmp_path, weights):
    folder = tmp_path / "p"
    commit_project(make_tiny_project(folder), weights=weights["A"])
    document = json.loads((folder / PROJECT_FILE).read_text())
    document["extras"] = {"note": "kept by hand", "order": [3, 1, 2]}  # edited by hand
    (folder / PROJECT_FILE).write_text(json.dumps(document, indent=4))
    project = load_project(folder)
    project.description = "an unsaved edit in memory"
    path = commit_weights(project, weights["B"])
    assert path == folder / weights_name(weights["B"]) and path.read_bytes() == weights["B"]
    now = json.loads((folder / PROJECT_FILE).read_text())
    assert now.pop("weights") == path.name
    assert now == {k: v for k, v in document.items() if k != "weights"}  # as the user left it
    assert sorted(files(folder)) == [PROJECT_FILE, path.name]  # the old weights are gone


def test_a_weights_only_save_of_an_old_project_replaces_its_one_weights_file(tmp_path,
                                                                             weights):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    document = json.loads((folder / PROJECT_FILE).read_text())
    del document["weights"]  # the layout before content names, as the shipped examples
    (folder / PROJECT_FILE).write_text(json.dumps(document))
    (folder / WEIGHTS_FILE).write_bytes(weights["A"])
    before = (folder / PROJECT_FILE).read_bytes()
    project = load_project(folder)
    assert project.weights_path == folder / WEIGHTS_FILE
    assert commit_weights(project, weights["B"]) == folder / WEIGHTS_FILE
    assert files(folder) == {PROJECT_FILE: before, WEIGHTS_FILE: weights["B"]}


def test_old_projects_keep_their_weights_file_when_saved(tmp_path, registry, weights):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    document = json.loads((folder / PROJECT_FILE).read_text())
    del document["weights"]
    (folder / PROJECT_FILE).write_text(json.dumps(document))
    (folder / WEIGHTS_FILE).write_bytes(weights["B"])
    session = Session(load_project(folder), registry)
    session.build()
    assert session.weights_loaded
    save_project(session.project)  # in place, the weights unchanged
    assert json.loads((folder / PROJECT_FILE).read_text())["weights"] == WEIGHTS_FILE
    assert (folder / WEIGHTS_FILE).read_bytes() == weights["B"]


@pytest.mark.parametrize("value", ["../weights.safetensors", "sub/w.safetensors", "a\\b",
                                   "", ".hidden", 5, ["w"]])
def test_the_weights_field_is_a_plain_file_name(tmp_path, value):
    folder = tmp_path / "p"
    make_tiny_project(folder)
    document = json.loads((folder / PROJECT_FILE).read_text())
    document["weights"] = value
    (folder / PROJECT_FILE).write_text(json.dumps(document))
    with pytest.raises(ProjectError, match="weights: expected a file name") as caught:
        load_project(folder)
    assert str(folder / PROJECT_FILE) in str(caught.value)


# -- leftovers -------------------------------------------------------------------------------
def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_an_open_removes_what_killed_saves_left_once_stale(tmp_path, weights):
    folder = tmp_path / "p"
    project = make_tiny_project(folder)
    commit_project(project, weights=weights["A"])
    stale = [".project.json.k1x2_9.tmp", f".{weights_name(weights['B'])}.a8c_d.tmp",
             ".weights.safetensors.zz1.tmp", weights_name(weights["B"]), WEIGHTS_FILE]
    fresh = [".project.json.new.tmp", "weights-0123456789abcdef.safetensors"]
    mine = ["weights-final.safetensors", "notes.txt", ".project.json.bak"]
    for name in stale + fresh + mine:
        (folder / name).write_bytes(b"x")
    for name in stale + mine:
        _age(folder / name, 3600)
    loaded = load_project(folder)
    assert saved_weights(folder) == weights["A"]
    left = set(files(folder))
    assert not left & set(stale), "stale temporaries and unnamed weights go"
    assert set(fresh) <= left, "another process may be saving right now"
    assert set(mine) <= left, "files a save never makes are the user's"
    assert loaded.weights_file in left


def test_a_read_only_folder_opens_and_keeps_its_leftovers(tmp_path, monkeypatch, weights):
    folder = tmp_path / "p"
    commit_project(make_tiny_project(folder), weights=weights["A"])
    (folder / ".project.json.old.tmp").write_bytes(b"{")
    _age(folder / ".project.json.old.tmp", 3600)

    def unlink(path, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(os, "unlink", unlink)
    assert load_project(folder).weights_file == weights_name(weights["A"])  # no error
    monkeypatch.undo()
    assert (folder / ".project.json.old.tmp").exists()


# -- modes -----------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path, weights):
    folder = tmp_path / "p"
    old = os.umask(0o027)
    try:
        project = make_tiny_project(folder)
        commit_project(project, weights=weights["A"])
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert mode == {PROJECT_FILE: 0o640, weights_name(weights["A"]): 0o640}
    (folder / PROJECT_FILE).chmod(0o604)
    old = os.umask(0o077)
    try:
        commit_project(project, weights=weights["B"])
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / PROJECT_FILE).stat().st_mode) == 0o604  # kept
    assert stat.S_IMODE((folder / weights_name(weights["B"])).stat().st_mode) == 0o600


# -- save as, and folders that are taken -----------------------------------------------------
def test_save_as_carries_the_weights_into_the_new_folder(tmp_path, weights):
    project = make_tiny_project(tmp_path / "src")
    commit_project(project, weights=weights["A"])
    source = files(tmp_path / "src")
    save_project(project, tmp_path / "copy")  # no network built: the file is copied
    assert project.folder == tmp_path / "copy"
    assert saved_weights(tmp_path / "copy") == weights["A"]
    assert files(tmp_path / "src") == source


def test_another_project_is_replaced_whole_and_only_when_asked(tmp_path, weights):
    other = make_tiny_project(tmp_path / "other")
    commit_project(other, weights=weights["A"])
    (tmp_path / "other" / "runs").mkdir()
    (tmp_path / "other" / "runs" / "train-1.jsonl").write_text("{}\n")
    before = files(tmp_path / "other")
    mine = make_tiny_project(tmp_path / "mine")
    mine.name = "mine"
    with pytest.raises(TargetOccupied, match="already holds a project") as caught:
        commit_project(mine, tmp_path / "other", weights=weights["B"])
    assert caught.value.holds_project and caught.value.where == str(tmp_path / "other")
    assert files(tmp_path / "other") == before
    commit_project(mine, tmp_path / "other", weights=weights["B"], overwrite=True)
    assert sorted(files(tmp_path / "other")) == [
        PROJECT_FILE, str(Path("runs") / "train-1.jsonl"), weights_name(weights["B"])]
    assert load_project(tmp_path / "other").name == "mine"


def test_the_source_project_is_never_replaced(tmp_path, weights):
    source = make_tiny_project(tmp_path / "src")
    commit_project(source, weights=weights["A"])
    before = files(tmp_path / "src")
    variant = make_tiny_project(tmp_path / "variant")
    variant.folder = None
    for folder in (tmp_path / "src", tmp_path / "x" / ".." / "src"):
        with pytest.raises(ProjectError, match="source project itself"):
            commit_project(variant, folder, weights=weights["B"], overwrite=True,
                           source=tmp_path / "src")
    assert files(tmp_path / "src") == before


def test_a_folder_with_other_files_is_refused_without_overwrite(tmp_path, weights):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("mine")
    project = make_tiny_project(tmp_path / "p")
    project.folder = None
    with pytest.raises(TargetOccupied, match="not empty and holds no project") as caught:
        commit_project(project, folder, weights=weights["A"])
    assert not caught.value.holds_project and files(folder) == {"thesis.txt": b"mine"}
    commit_project(project, folder, weights=weights["A"], overwrite=True)
    assert (folder / "thesis.txt").read_text() == "mine" and saved_weights(folder) == weights["A"]


# -- crash consistency: processes killed while saving ------------------------------------------
def _save_forever(mode: str, folder: str, versions: list) -> None:
    """A forked child: save version A, B, A, ... until killed (file work only, no torch)."""
    n = 0
    while True:
        project, data = versions[n % 2]
        if mode in ("weights", "old layout"):
            commit_weights(project, data)  # `train`: the weights field alone changes
        else:
            commit_project(project, Path(folder), weights=data)  # a full save
        n += 1


def _expect(project, data: bytes) -> dict:
    if project.weights_file == WEIGHTS_FILE:  # the old layout names no weights
        return project.to_dict()
    return {**project.to_dict(), "weights": weights_name(data)}


def _to_old_layout(folder: Path, data: bytes) -> None:
    document = json.loads((folder / PROJECT_FILE).read_text())
    os.unlink(folder / document.pop("weights"))
    (folder / PROJECT_FILE).write_text(json.dumps(document))
    (folder / WEIGHTS_FILE).write_bytes(data)


def _check_version(folder: Path, expected: dict, weights, what: str) -> str:
    """The folder loads as exactly A or exactly B (project and weights); which one."""
    project = load_project(folder)  # never an error
    got = project.to_dict()
    candidates = [v for v, want in expected.items() if got == want]
    assert candidates, f"{what}: the project file is neither A nor B: {got}"
    net = weights["net"]
    load_weights(net, project.weights_path)
    state = net.state_dict()
    for version in candidates:
        if all(torch.equal(value, weights["tensors"][version][key])
               for key, value in state.items()):
            return version
    raise AssertionError(f"{what}: project {candidates} with weights of neither")


def _leftovers(folder: Path) -> int:
    return len({p.name for p in folder.iterdir()} - {PROJECT_FILE,
                                                    load_project(folder).weights_file})


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL and fork are POSIX")
def test_a_save_killed_at_any_instant_leaves_the_old_or_the_new_version(tmp_path, weights,
                                                                        registry):
    seed = int(os.environ.get("WB_CRASH_SEED", random.randrange(2**32)))
    print(f"crash-consistency seed: {seed} (rerun with WB_CRASH_SEED={seed})")
    rng = random.Random(seed)
    # The app's Save As in fresh processes (started first: it runs beside the CLI kills).
    template = tmp_path / "template"
    make_tiny_project(template)
    gui_weights = {}
    for name in "AB":
        gui_weights[name] = tmp_path / f"{name}.safetensors"
        gui_weights[name].write_bytes(weights[name])
    work = tmp_path / "gui"
    work.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    gui_kills = 10
    gui = subprocess.Popen(
        [sys.executable, str(HERE / "gui_save_crasher.py"), str(template), str(work),
         str(gui_kills), str(rng.randrange(2**32)), str(gui_weights["A"]),
         str(gui_weights["B"])], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        # The CLI's save paths in children forked from this process (torch already imported;
        # the children only write files).
        fork = multiprocessing.get_context("fork")
        seen: dict[str, set[str]] = {}
        interrupted = 0
        for mode, kills in (("weights", 15), ("full", 15), ("old layout", 5)):
            folder = tmp_path / mode
            a = make_tiny_project(folder)
            commit_project(a, weights=weights["A"])
            if mode == "old layout":  # no weights field: weights.safetensors, one file
                _to_old_layout(folder, weights["A"])
                a = load_project(folder)
            b = load_project(folder)
            if mode == "full":
                b.name, b.description, b.time_steps = "version B", "B", 3
            expected = {"A": _expect(a, weights["A"]), "B": _expect(b, weights["B"])}
            versions = [(a, weights["A"]), (b, weights["B"])]
            seen[mode] = set()
            for kill in range(kills):
                child = fork.Process(target=_save_forever, args=(mode, str(folder), versions),
                                     daemon=True)
                child.start()
                time.sleep(rng.uniform(0.002, 0.08))
                os.kill(child.pid, signal.SIGKILL)
                child.join()
                seen[mode].add(_check_version(folder, expected, weights,
                                              f"{mode} save, kill {kill}, seed {seed}"))
                interrupted += _leftovers(folder) > 0
            clean_leftovers(folder, load_project(folder).weights_file, stale_after=0)
            assert _leftovers(folder) == 0
        assert interrupted > 0, "no kill landed inside a save"
        out, err = gui.communicate(timeout=120)
    finally:
        if gui.poll() is None:
            gui.kill()
            gui.communicate()
    assert gui.returncode == 0, f"seed {seed}: {out[-2000:]}{err[-4000:]}"
    assert json.loads(out.strip().splitlines()[-1])["seed"] is not None
    for i in range(gui_kills):
        recorded = json.loads((work / f"gui{i}.versions.json").read_text())
        expected = {v: {**recorded[v], "weights": weights_name(weights[v])} for v in "AB"}
        seen.setdefault("gui", set()).add(
            _check_version(work / f"gui{i}", expected, weights, f"Save As, kill {i}, seed {seed}"))
    print(f"versions found after the kills: {seen}; kills inside a save: {interrupted}")
