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
            legend = plot.legend
            if legend is not None:
                legend.setLabelTextColor(foreground)


def _plot_items(widget: Any) -> list[Any]:
    if isinstance(widget, pg.PlotWidget):
        return [widget.getPlotItem()]
    if isinstance(widget, pg.GraphicsLayoutWidget):
        return [item for item in widget.ci.items if isinstance(item, pg.PlotItem)]
    return []
