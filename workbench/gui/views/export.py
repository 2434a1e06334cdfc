"""Exporting what a view shows: the plot as PNG or SVG, the data behind it as CSV.

Every view mixes in :class:`ExportMixin`, which gives it ``export_image``, ``export_csv`` and
an "Export…" action. Writing errors surface as ``OSError`` naming the path, so whoever called
(the action's dialog, a script, a test) can tell the user which file failed.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import importlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter, SVGExporter
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QToolButton, QWidget

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".svg")
EXPORT_FILTERS = "PNG image (*.png);;SVG image (*.svg);;CSV data (*.csv)"

# An unshown widget has no laid-out size; exporting it at 0 px fails inside pyqtgraph, so
# such a plot is rendered at this size instead.
_FALLBACK_SIZE = (800, 600)


def _export_item(target: Any) -> Any:
    """The graphics item to export: a PlotWidget's PlotItem, a layout widget's layout."""
    if isinstance(target, pg.PlotWidget):
        return target.getPlotItem()
    if isinstance(target, pg.GraphicsLayoutWidget):
        return target.ci
    return target


def _os_error(exc: OSError | None, path: Path, what: str) -> OSError:
    code = exc.errno if exc is not None and exc.errno is not None else errno.EIO
    reason = exc.strerror if exc is not None and exc.strerror else what
    return OSError(code, f"cannot write {path}: {reason}", str(path))


@contextlib.contextmanager
def _closed_paths_tolerated() -> Iterator[None]:
    """Let pyqtgraph's SVG exporter read paths that Qt closes with ``Z``.

    pyqtgraph 0.14.0 + Qt >= 6.10: ``SVGExporter.correctCoordinates`` parses every token of a
    path's ``d`` as ``x,y`` and raises on Qt's closing ``Z`` (pyqtgraph#3495, fixed by
    pyqtgraph#3458, unreleased). For the duration of one export, the function is wrapped so the
    ``Z`` tokens are taken out before it runs and put back after. The views are GUI-thread
    only, so no other export can see the swap.
    """
    module = importlib.import_module("pyqtgraph.exporters.SVGExporter")
    original = getattr(module, "correctCoordinates", None)
    if original is None:  # a pyqtgraph that restructured its exporter has its own fix
        yield
        return

    def correct_coordinates(node: Any, defs: Any, item: Any, options: Any) -> Any:
        closes = {}
        for path in node.getElementsByTagName("path"):
            kept, after = _split_closes(path.getAttribute("d"))
            if after:
                closes[path] = after
                path.setAttribute("d", " ".join(kept))
        result = original(node, defs, item, options)
        for path, after in closes.items():
            path.setAttribute("d", _join_closes(path.getAttribute("d").split(), after))
        return result

    module.correctCoordinates = correct_coordinates
    try:
        yield
    finally:
        module.correctCoordinates = original


def _split_closes(d: str) -> tuple[list[str], list[int]]:
    """Path tokens without ``Z``, and how many coordinate tokens precede each ``Z``."""
    kept: list[str] = []
    after: list[int] = []
    for token in d.split():
        if token in ("Z", "z"):
            after.append(len(kept))
        elif token[-1] in "Zz":
            kept.append(token[:-1])
            after.append(len(kept))
        else:
            kept.append(token)
    return kept, after


def _join_closes(tokens: list[str], after: list[int]) -> str:
    out: list[str] = []
    pending = sorted(after)
    for i, token in enumerate(tokens):
        out.append(token)
        while pending and pending[0] == i + 1:
            out.append("Z")
            pending.pop(0)
    out.extend("Z" for _ in pending)
    return " ".join(out)


def export_plot(plot_item_or_widget: Any, path: str | Path) -> Path:
    """Write a plot (PlotItem, PlotWidget or GraphicsLayoutWidget) to ``path``.

    The suffix picks the format: ``.png`` (raster, pyqtgraph ``ImageExporter``) or ``.svg``
    (vector, ``SVGExporter``). Raises ``ValueError`` for another suffix and ``OSError`` (with
    the path) when the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"cannot export an image as {suffix or 'a file without suffix'!r}; "
                         "use .png or .svg")
    item = _export_item(plot_item_or_widget)
    if suffix == ".png":
        exporter = ImageExporter(item)
        params = exporter.parameters()
        if int(params["width"]) <= 0 or int(params["height"]) <= 0:
            item.resize(*_FALLBACK_SIZE)
            exporter = ImageExporter(item)
            params = exporter.parameters()
        image = exporter.export(toBytes=True)
        # QImage.save reports failure with False only; turn it into the OSError callers expect
        if image is None or not image.save(str(path), "PNG"):
            raise _os_error(None, path, "the PNG writer failed")
        return path
    with _closed_paths_tolerated():
        data = SVGExporter(item).export(toBytes=True)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _os_error(exc, path, "write failed") from exc
    return path


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``header`` and ``rows`` as UTF-8 CSV; an ``OSError`` names the path."""
    path = Path(path)
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as exc:
        raise _os_error(exc, path, "write failed") from exc
    return path


class ExportMixin:
    """``export_image``/``export_csv`` and an "Export…" action for a view (a QWidget).

    A view implements ``_export_target()`` (the plot item or widget to render) and
    ``_csv_table()`` (header and rows of the data it shows).
    """

    export_action: QAction

    def _export_target(self) -> Any:
        raise NotImplementedError

    def _csv_table(self) -> tuple[list[str], Iterable[Sequence[Any]]]:
        raise NotImplementedError

    def export_image(self, path: str | Path) -> Path:
        """The plot as PNG or SVG (by the suffix of ``path``)."""
        return export_plot(self._export_target(), path)

    def export_csv(self, path: str | Path) -> Path:
        """The data behind the plot as CSV."""
        header, rows = self._csv_table()
        return write_csv(path, header, rows)

    def export(self, path: str | Path) -> Path:
        """Export by suffix: ``.csv`` writes the data, ``.png``/``.svg`` the picture."""
        if Path(path).suffix.lower() == ".csv":
            return self.export_csv(path)
        return self.export_image(path)

    def _make_export_button(self) -> QToolButton:
        """The "Export…" action, on a tool button for the view's header and its context menu."""
        widget: QWidget = self  # type: ignore[assignment]
        self.export_action = QAction("Export…", widget)
        self.export_action.setToolTip("Save the plot as PNG or SVG, or its data as CSV")
        self.export_action.triggered.connect(self._on_export_triggered)
        widget.addAction(self.export_action)
        button = QToolButton(widget)
        button.setDefaultAction(self.export_action)
        button.setAutoRaise(True)
        return button

    def _add_export_to_plot_menu(self, plot_widget: Any) -> None:
        """Offer the view's "Export…" in the plot's right-click menu.

        pyqtgraph's scene appends its own "Export..." (a dialog that knows nothing of the view's
        data) to every item's menu; ours replaces it, so the menu and the button do the same.
        """
        plot_widget.scene().contextMenu = [self.export_action]

    def _on_export_triggered(self) -> None:
        widget: QWidget = self  # type: ignore[assignment]
        path, chosen = QFileDialog.getSaveFileName(widget, "Export", "", EXPORT_FILTERS)
        if not path:
            return
        if not Path(path).suffix:
            # some platform dialogs return the name without the suffix of the chosen filter
            path += ".csv" if "csv" in chosen.lower() else ".svg" if "svg" in chosen.lower() \
                else ".png"
        try:
            self.export(path)
        except (OSError, ValueError) as exc:
            log.warning("export failed: %s", exc)
            QMessageBox.warning(widget, "Export failed", str(exc))
