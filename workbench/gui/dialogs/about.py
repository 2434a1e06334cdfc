"""The About box: versions of the app and of what it runs on."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtWidgets import QMessageBox, QWidget

from workbench import __version__


def versions() -> dict[str, str]:
    found = {"SNN Workbench": __version__, "Python": platform.python_version()}
    for name in ("torch", "numpy", "PySide6-Essentials", "pyqtgraph", "pluggy", "safetensors"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def about_text(plugins: list[str]) -> str:
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in versions().items())
    return (f"<h3>SNN Workbench {__version__}</h3>"
            "<p>Build, train, inspect, compress and deploy spiking neural networks.</p>"
            f"<table>{rows}</table><p>Plugins: {', '.join(plugins) or 'none'}</p>"
            f"<p><small>{sys.platform}</small></p>")


def show_about(parent: QWidget, plugins: list[str]) -> None:
    QMessageBox.about(parent, "About SNN Workbench", about_text(plugins))
