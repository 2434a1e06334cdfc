"""pytest fixtures shipped through the ``pytest11`` entry point, for us and plugin authors.

- ``plugin_host``: a fresh, strict :class:`PluginHost` with this distribution's plugins only;
- ``tiny_project``: a small LIF MLP on the embedded digits, saved in ``tmp_path``;
- ``plugin_module``: writes a throw-away plugin module and returns its importable name;
- ``trained_digits_mlp`` / ``trained_digits_conv`` (session-scoped): the example projects,
  trained briefly once per test session, in a temporary folder, with their weights and no run
  records. Copy before changing them.

Qt is never imported here, so headless suites can use these fixtures.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component, Project, Training
from workbench.core.persistence.project_files import save_project


def tiny_graph(hidden: int = 32) -> Graph:
    return Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("hidden", "wb_core.spiking_linear", {"out_features": hidden}),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])


def make_tiny_project(folder: Path, *, epochs: int = 1, time_steps: int = 2) -> Project:
    project = Project(
        "tiny", tiny_graph(), time_steps=time_steps,
        training=Training(Component("wb_core.bptt", {"lr": 0.005}), epochs=epochs,
                          batch_size=64, seed=0),
    )
    save_project(project, folder)
    return project


def train_example(name: str, folder: Path, *, epochs: int, host=None) -> Path:
    """Copy example ``name`` into ``folder``, train it for ``epochs`` and save its weights."""
    import shutil

    from workbench.core.model.project import RUNS_DIR
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.pluginhost.manager import PluginHost

    shutil.copytree(examples_dir() / name, folder, ignore=shutil.ignore_patterns(RUNS_DIR))
    if host is None:
        host = PluginHost(strict=True)
        host.load()
    session = Session(load_project(folder), host.registry)
    finished = session.train(epochs=epochs, fresh=True, save_weights=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"training {name} ended {finished.status}: {finished.error}")
    # the run recorded itself; a trained fixture starts with no history, so a test that counts
    # the records its own runs write finds only those
    shutil.rmtree(folder / RUNS_DIR, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def trained_digits_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_example("digits_mlp", tmp_path_factory.mktemp("trained") / "digits_mlp",
                         epochs=6)


@pytest.fixture(scope="session")
def trained_digits_conv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_example("digits_conv", tmp_path_factory.mktemp("trained") / "digits_conv",
                         epochs=4)


@pytest.fixture
def plugin_host():
    from workbench.pluginhost.manager import PluginHost

    host = PluginHost(strict=True)
    host.load()
    return host


@pytest.fixture
def tiny_project(tmp_path: Path) -> Project:
    return make_tiny_project(tmp_path / "tiny")


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """``plugin_module(name, source)`` writes ``name.py`` on ``sys.path`` and returns ``name``."""
    folder = tmp_path / "plugin_modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def write(name: str, source: str) -> str:
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        sys.modules.pop(name, None)
        return name

    yield write
    for module in list(sys.modules):
        if (getattr(sys.modules[module], "__file__", "") or "").startswith(str(folder)):
            del sys.modules[module]


@pytest.fixture
def make_main_window(qtbot, plugin_host, tmp_path, monkeypatch):
    """Factory: ``make_main_window(project=None, host=None, settings=None)`` -> a shown window.

    Settings live in ``tmp_path`` (a developer's own are never touched). Modal prompts never
    block a test: "save changes?" answers "discard", "replace?" (Save As into an occupied
    folder) answers no, each recorded in ``window.prompts``, unless a test replaces
    ``window.ask_save_changes`` or ``window.ask_replace_folder``. At teardown the run is shut down and
    the window closed.
    """
    monkeypatch.setenv("SNN_WORKBENCH_CONFIG", str(tmp_path / "config"))
    from workbench.gui.main_window import MainWindow
    from workbench.gui.settings import AppSettings

    windows = []

    def make(project: Project | None = None, host=None, settings=None):
        window = MainWindow(host or plugin_host, settings or AppSettings.load(), project)
        window.prompts = []
        window.ask_save_changes = lambda: window.prompts.append("save changes?") or "discard"
        window.ask_replace_folder = (lambda folder, holds_project:
                                     window.prompts.append("replace?") or False)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        close_window(window)


def close_window(window) -> None:
    """A test's window goes away: its run stopped, unsaved work discarded without asking."""
    try:
        window.controller.shutdown()
        window.ask_save_changes = lambda: "discard"
        window.close()
        window.deleteLater()
    except RuntimeError:  # already deleted by Qt
        pass
