"""The Plugins dialog: loaded plugins and their contributions, and every failure with its
traceback, so a broken plugin is visible instead of silently missing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.pluginhost.manager import PluginReport
from workbench.pluginhost.registry import KIND_TITLES


class PluginsDialog(QDialog):
    def __init__(self, report: PluginReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(760, 520)
        self.report = report
        summary = QLabel(f"{len(report.plugins)} plugin(s) loaded, "
                         f"{len(report.failures)} failure(s)")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Plugin / contribution", "Details"])
        self.details = QPlainTextEdit(readOnly=True)
        self.details.setPlaceholderText("Select a failure to see its traceback")
        for plugin in report.plugins:
            item = QTreeWidgetItem([plugin.name, f"{plugin.version}  ({plugin.module})"])
            for kind, ids in plugin.contributions.items():
                group = QTreeWidgetItem([KIND_TITLES.get(kind, kind), f"{len(ids)}"])
                for spec_id in ids:
                    group.addChild(QTreeWidgetItem([spec_id, ""]))
                item.addChild(group)
            self.tree.addTopLevelItem(item)
        if report.failures:
            failures = QTreeWidgetItem(["Failures", f"{len(report.failures)}"])
            failures.setForeground(0, Qt.GlobalColor.red)
            for failure in report.failures:
                child = QTreeWidgetItem([failure.plugin, f"{failure.stage}: {failure.message}"])
                child.setData(0, Qt.ItemDataRole.UserRole, failure.traceback)
                child.setForeground(0, Qt.GlobalColor.red)
                failures.addChild(child)
            self.tree.addTopLevelItem(failures)
            failures.setExpanded(True)
        self.tree.currentItemChanged.connect(self._show)
        self.tree.resizeColumnToContents(0)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.details)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(splitter)
        layout.addWidget(buttons)

    def failure_rows(self) -> list[tuple[str, str]]:
        rows = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.text(0) == "Failures":
                rows += [(top.child(c).text(0), top.child(c).text(1)) for c in range(top.childCount())]
        return rows

    def _show(self, item: QTreeWidgetItem | None) -> None:
        trace = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        self.details.setPlainText(trace or "")
