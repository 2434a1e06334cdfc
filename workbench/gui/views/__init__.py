"""Plot views of the workbench: spike raster, membrane traces, firing rates, the signal as the
encoders see it, training metrics and the energy ledger.

Views are GUI-thread widgets fed through small APIs (``set_records``, ``add_sample``,
``set_report``); live probe data is polled from a
:class:`~workbench.core.runs.buffers.LatestBuffer` with ``attach``. Each view exports its plot
(PNG/SVG) and its data (CSV).
"""

from __future__ import annotations

from workbench.gui.views.energy import EnergyView
from workbench.gui.views.export import ExportMixin, export_plot, write_csv
from workbench.gui.views.membrane import MembraneView
from workbench.gui.views.metrics import MetricsView
from workbench.gui.views.raster import SpikeRasterView
from workbench.gui.views.rates import FiringRateView
from workbench.gui.views.signal import SignalView
from workbench.gui.views.theme import apply_plot_theme

__all__ = [
    "EnergyView",
    "ExportMixin",
    "FiringRateView",
    "MembraneView",
    "MetricsView",
    "SignalView",
    "SpikeRasterView",
    "apply_plot_theme",
    "export_plot",
    "write_csv",
]
