"""SNN Workbench: build, train, inspect, compress and deploy spiking neural networks.

Importing this package is cheap: no torch, no Qt. The Qt-free core lives in
:mod:`workbench.core`, the plugin machinery in :mod:`workbench.pluginhost`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
