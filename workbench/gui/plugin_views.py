"""Panels contributed by plugins (``wb_gui_views``): each built once, a failing one reported."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from PySide6.QtWidgets import QWidget

from workbench.pluginhost.manager import PluginFailure, PluginHost

log = logging.getLogger(__name__)


def create_plugin_views(host: PluginHost) -> list[tuple[Any, QWidget]]:
    """``(spec, widget)`` of every view that could be built. A view that fails to build is
    plugin code failing: it goes into the host's report (the Plugins dialog and the status-bar
    badge show it) and the app carries on without it."""
    views = []
    for spec in host.registry.of_kind("view"):
        try:
            views.append((spec, spec.create()))
        except Exception as exc:
            plugin = host.registry.provider(spec.id)
            log.error("the view %s of plugin %s failed to open: %s", spec.id, plugin, exc)
            host.report.failures.append(PluginFailure(
                plugin, f"view {spec.id}", f"{type(exc).__name__}: {exc}",
                traceback.format_exc()))
    return views
