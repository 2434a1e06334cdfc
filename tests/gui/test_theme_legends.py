"""Switching the theme recolours the legends' labels of plots that already exist.

pyqtgraph writes a legend label's colour into its HTML when the text is set, so a label left as
it was kept the old theme's colour: black on the dark theme's black plots, grey on the light
theme's white ones. Checked on the colour the label's text document really draws with, for a
plot's own legend (the Deploy panel's energy trace) and for one placed by hand (the raster's
±1 key).
"""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QAction, QColor

from workbench.gui.views.theme import PLOT_COLOURS

pytestmark = pytest.mark.gui


def drawn_colours(widget) -> dict[str, str]:
    """Each legend label's text → the colour its first character is drawn in."""
    out = {}
    for legend in (i for i in widget.scene().items() if isinstance(i, pg.LegendItem)):
        for _sample, label in legend.items:
            fragment = label.item.document().firstBlock().begin().fragment()
            out[label.item.toPlainText()] = fragment.charFormat().foreground().color().name()
    return out


def theme_action(window, name: str):
    """View ▸ Light theme / Dark theme."""
    [action] = [a for a in window.findChildren(QAction) if a.text() == f"{name.capitalize()} theme"]
    return action


@pytest.fixture
def restore_plot_colours():
    """pyqtgraph's colours for new plots are global: the next test gets them back as they were."""
    saved = {name: pg.getConfigOption(name) for name in ("background", "foreground")}
    yield
    pg.setConfigOptions(**saved)


def test_legend_labels_follow_the_theme_from_the_view_menu(make_main_window, qtbot,
                                                           restore_plot_colours):
    window = make_main_window()
    window.set_theme("light")  # a known start, whatever colours an earlier test left
    deploy = window.show_deploy_panel().plot_widget  # "per sample", "running mean"
    window.docks["raster"].raise_()  # the raster's own ±1 key, placed by hand on its plot
    qtbot.waitUntil(lambda: window._lazy["raster"].built is not None, timeout=3000)
    raster = window._lazy["raster"].built.plot_widget
    light, dark = (pg.mkColor(PLOT_COLOURS[d][1]).name() for d in (False, True))
    assert light != dark
    before = {**drawn_colours(deploy), **drawn_colours(raster)}
    assert {"per sample", "running mean", "+1", "\u22121"} <= set(before)
    assert set(before.values()) == {light}

    theme_action(window, "dark").trigger()
    assert window.settings.theme == "dark"
    assert set(drawn_colours(deploy).values()) == {dark}
    assert set(drawn_colours(raster).values()) == {dark}
    # the axis text beside it has the same colour: one foreground per theme
    axis = deploy.getPlotItem().getAxis("bottom")
    assert QColor(axis.textPen().color()).name() == dark

    theme_action(window, "light").trigger()
    assert set(drawn_colours(deploy).values()) == {light}
    assert set(drawn_colours(raster).values()) == {light}
