"""The public GUI kit for plugin views: what a plugin's ``_qt`` module may build on.

A plugin's view (a ``ViewSpec`` factory) imports from here and from
:mod:`workbench.pluginhost` only, never from the workbench's private view modules, so those can
change without breaking plugins. A view gets each probe through ``set_probe(item)`` (a dict:
``records``, ``maps``, ``input``, ``label``, ``predicted``, ``index``, ``reconstruction``,
``length``) and may poll a :class:`LatestBuffer` with a :class:`BufferPoller` for its own data.

==================  ==========================================================================
name                what it is
==================  ==========================================================================
BufferPoller        polls a LatestBuffer on a GUI-thread timer, hands new items to a callback
LatestBuffer        the thread-safe "newest item wins" hand-over of high-rate data
PlotViewMixin       ``title_text()`` and ``hint_text()`` (the empty-state hint)
assemble_view       lays a view out: header row, extra widgets, the plot behind its hint
layer_header        the header row of a per-layer view (title, layer chooser, Export)
probe_title         "Sample #12 — label 3, predicted 5" from a probe item
to_numpy            a NumPy array of a tensor (detached, on the CPU, bfloat16 widened)
ExportMixin         the Export button and menu: PNG/SVG of the plot, CSV of the data
export_plot         writes a plot widget as PNG or SVG
==================  ==========================================================================
"""

from __future__ import annotations

from workbench.core.runs.buffers import LatestBuffer
from workbench.gui.views._common import (
    BufferPoller,
    PlotViewMixin,
    assemble_view,
    layer_header,
    probe_title,
    to_numpy,
)
from workbench.gui.views.export import ExportMixin, export_plot

__all__ = [
    "BufferPoller",
    "ExportMixin",
    "LatestBuffer",
    "PlotViewMixin",
    "assemble_view",
    "export_plot",
    "layer_header",
    "probe_title",
    "to_numpy",
]
