"""Light and dark plots: pyqtgraph's colours follow the application theme.

pyqtgraph reads ``background``/``foreground`` config options only when a plot is created, so
switching the theme at run time also restyles the plots that already exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyqtgraph as pg

#: (background, foreground) per theme; dark is pyqtgraph's own default
PLOT_COLOURS = {True: ("k", "d"), False: ("w", "k")}


def apply_plot_theme(dark: bool, widgets: Iterable[Any] = ()) -> None:
    """Set pyqtgraph's colours for new plots and restyle ``widgets`` now.

    ``widgets`` may hold PlotWidgets, GraphicsLayoutWidgets or views (anything with a
    ``plot_widget`` attribute, as every view in this package has).
    """
    background, foreground = PLOT_COLOURS[bool(dark)]
    pg.setConfigOptions(background=background, foreground=foreground)
    for item in widgets:
        widget = getattr(item, "plot_widget", item)
        widget.setBackground(background)
        for plot in _plot_items(widget):
            for name in ("left", "bottom", "right", "top"):
                axis = plot.getAxis(name)
                axis.setPen(foreground)
                axis.setTextPen(foreground)
            plot.titleLabel.setAttr("color", foreground)
            plot.titleLabel.setText(plot.titleLabel.text)
        for legend in _legends(widget):
            recolour_legend(legend, foreground)


def recolour_legend(legend: pg.LegendItem, colour: Any) -> None:
    """Draw ``legend``'s labels, present and future, in ``colour``.

    ``LegendItem.setLabelTextColor`` only stores the colour for labels added later: a label
    writes its colour into its HTML when its text is set, so the existing ones are set again.
    """
    legend.setLabelTextColor(colour)
    for _sample, label in legend.items:
        label.setText(label.text)


def _legends(widget: Any) -> list[pg.LegendItem]:
    """Every legend in ``widget``'s scene: a plot's own (``addLegend``) and those placed by
    hand (the raster's ±1 key sits on its view box, not in ``plot.legend``)."""
    scene = widget.scene()
    return [item for item in scene.items() if isinstance(item, pg.LegendItem)] if scene else []


def _plot_items(widget: Any) -> list[Any]:
    if isinstance(widget, pg.PlotWidget):
        return [widget.getPlotItem()]
    if isinstance(widget, pg.GraphicsLayoutWidget):
        return [item for item in widget.ci.items if isinstance(item, pg.PlotItem)]
    return []
