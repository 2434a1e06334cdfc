"""The window's layout is the user's: opening a project never changes it, and View ▸ Reset layout
brings the first one back (issue #12: opening an example left a 650 px palette beside a 50 px
editor)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from workbench.core.persistence.examples import examples_dir

pytestmark = pytest.mark.gui


def _sizes(window) -> dict[str, tuple[int, int]]:
    sizes = {name: (dock.width(), dock.height()) for name, dock in window.docks.items()
             if dock.isVisible()}
    sizes["editor"] = (window.editor.width(), window.editor.height())
    return sizes


def _settle(qtbot, window) -> None:
    qtbot.wait(50)  # let the layout apply the new sizes


def test_opening_an_example_leaves_the_dock_sizes_unchanged(make_main_window, qtbot):
    window = make_main_window()
    window.resize(1600, 1000)
    _settle(qtbot, window)
    before = _sizes(window)
    assert before["editor"][0] > 300  # a usable editor to start with
    for example in ("digits_snn_vit_sssa", "digits_mlp"):
        assert window.open_project(examples_dir() / example, ask=False)
        _settle(qtbot, window)
        assert _sizes(window) == before, example


def test_reset_layout_brings_back_the_first_layout(make_main_window, qtbot):
    window = make_main_window()
    window.resize(1600, 1000)
    _settle(qtbot, window)
    first = _sizes(window)
    dock = next(iter(window.docks.values()))
    window.resizeDocks([dock], [dock.width() + 300], Qt.Orientation.Horizontal)
    other = list(window.docks.values())[-1]
    other.setVisible(False)
    _settle(qtbot, window)
    assert _sizes(window) != first

    reset = next(a for a in window.menuBar().actions() if a.text() == "&View").menu()
    next(a for a in reset.actions() if a.text() == "&Reset layout").trigger()
    _settle(qtbot, window)
    assert other.isVisible()
    assert _sizes(window) == first
