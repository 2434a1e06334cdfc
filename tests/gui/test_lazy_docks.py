"""The plot views behind the Training tab are built when their tab is first shown, not with the
window (issue #12: first paint < 1.5 s), and a view behind a tab does not redraw until shown."""

from __future__ import annotations

import pytest

from workbench.gui.views import MembraneView

pytestmark = pytest.mark.gui


def test_a_hidden_tab_view_is_built_and_shows_the_probe_when_its_tab_is_opened(
        make_main_window, qtbot):
    window = make_main_window()
    qtbot.wait(50)
    assert all(lazy.built is None for lazy in window._lazy.values())  # nobody has looked yet

    window.docks["membrane"].raise_()  # the user opens the Membrane traces tab
    qtbot.waitUntil(lambda: window._lazy["membrane"].built is not None, timeout=2000)
    assert window._lazy["raster"].built is None  # still behind the tab
    membrane = window.membrane
    assert isinstance(membrane, MembraneView) and membrane.isVisible()
    qtbot.waitUntil(lambda: membrane.curve_count() > 0, timeout=3000)  # the probed sample


def test_a_view_reached_from_code_is_built_on_first_use(make_main_window):
    window = make_main_window()
    raster = window.raster
    assert window._lazy["raster"].built is raster and raster is window.raster


def test_the_explorer_behind_a_tab_draws_only_when_its_tab_is_shown(make_main_window, qtbot):
    window = make_main_window()
    explorer = window.neuron_explorer
    window.palette.spec_selected.emit("wb_core.lif", "neuron")  # the Training tab is in front
    qtbot.wait(300)
    assert explorer.response is None
    window.docks["neuron_explorer"].raise_()
    qtbot.waitUntil(lambda: explorer.response is not None, timeout=3000)


def test_the_explorer_is_built_when_its_tab_opens_and_shows_the_pick_made_before(
        make_main_window, qtbot):
    window = make_main_window()
    assert window._explorer.built is None  # not built with the window (first paint)
    window.palette.spec_selected.emit("wb_core.lif", "neuron")  # picked while behind its tab
    assert window._explorer.built is None
    window.docks["neuron_explorer"].raise_()
    qtbot.waitUntil(lambda: window._explorer.built is not None, timeout=2000)
    explorer = window.neuron_explorer
    qtbot.waitUntil(lambda: explorer.response is not None, timeout=3000)
    assert explorer.onset_current is not None and explorer.onset_current > 0
