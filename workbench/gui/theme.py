"""Light and dark themes, and the icons shipped in the package (``workbench/resources/icons``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from workbench.core.persistence.examples import resource_dir
from workbench.gui.views.theme import apply_plot_theme


def icon(name: str) -> QIcon:
    """The icon ``name`` (package data, so a wheel install has it too); a null icon if none."""
    path = resource_dir("icons") / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(35, 38, 41), QColor(49, 54, 59), QColor(230, 230, 230)
    for role, color in (
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text), (QPalette.ColorRole.Highlight, QColor(61, 174, 233)),
        (QPalette.ColorRole.HighlightedText, QColor(0, 0, 0)),
        (QPalette.ColorRole.Link, QColor(61, 174, 233)),
    ):
        p.setColor(role, color)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(127, 127, 127))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(127, 127, 127))
    return p


def apply_theme(name: str, plots: Iterable[Any] = ()) -> None:
    """``"light"`` or ``"dark"``: the Qt palette, and the colours of new and given plots."""
    app = QApplication.instance()
    if app is None:
        return
    app.setStyle("Fusion")
    dark = name == "dark"
    app.setPalette(_dark_palette() if dark else app.style().standardPalette())
    apply_plot_theme(dark, plots)
