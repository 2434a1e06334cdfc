"""The Deploy panel's summary card and grouped report: what a deployment gave, first things first.

The card shows :func:`~workbench.core.runs.deploy_summary.headline`: each resource used against
the target's capacity with a small bar, Fmax against the clock used, latency per sample in
cycles and time, energy per sample with its kind and source, accuracy. The report tree holds
every other value in collapsible groups (:func:`~workbench.core.runs.deploy_summary.
report_groups`), the headline's groups open, the rest closed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.runs.deploy_summary import Headline, headline, report_groups

#: groups shown open: the ones the card summarises
OPEN_GROUPS = ("Resources", "Timing", "Energy")
_KEY_ROLE = Qt.ItemDataRole.UserRole


def _label(text: str = "", *, bold: bool = False, small: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold or small:
        font = label.font()
        font.setBold(bold)
        if small:
            font.setPointSizeF(font.pointSizeF() * 0.9)
        label.setFont(font)
    return label


class SummaryCard(QFrame):
    """The headline figures of the last deployment; hidden until there is one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deploy_summary")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = _label(bold=True)
        self.grid = QGridLayout()
        self.grid.setColumnStretch(2, 1)
        self.grid.setHorizontalSpacing(8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.title)
        layout.addLayout(self.grid)
        layout.addStretch(1)  # a taller card keeps its figures together at the top
        self._headline = Headline()
        self.bars: dict[str, QProgressBar] = {}
        self.setVisible(False)

    def show_summary(self, summary: dict[str, Any]) -> None:
        self.clear()
        self._headline = found = headline(summary)
        if not found.rows():
            return
        self.title.setText(f"Summary — {found.target}" if found.target else "Summary")
        row = 0
        for resource in found.resources:
            bar = QProgressBar()
            bar.setRange(0, max(resource.available, 1))
            bar.setValue(min(resource.used, max(resource.available, 1)))
            bar.setTextVisible(False)
            bar.setFixedSize(90, 10)
            if resource.fraction > 0.9:  # nearly full: the one to watch
                bar.setStyleSheet("QProgressBar::chunk { background: #c0392b; }")
            self.bars[resource.name] = bar
            self.grid.addWidget(QLabel(resource.name), row, 0)
            self.grid.addWidget(bar, row, 1, Qt.AlignmentFlag.AlignVCenter)
            self.grid.addWidget(_label(resource.text()), row, 2)
            row += 1
        for name, value in (("Fmax", found.fmax), ("Latency", found.latency),
                            ("Throughput", found.throughput), ("Energy", found.energy),
                            ("Accuracy", found.accuracy), ("Checked", found.checked)):
            if not value:
                continue
            self.grid.addWidget(QLabel(name), row, 0)
            self.grid.addWidget(_label(value), row, 1, 1, 2)
            row += 1
            if name == "Energy" and found.energy_source:
                source = _label(f"Source: {found.energy_source}", small=True)
                self.grid.addWidget(source, row, 1, 1, 2)
                row += 1
        self.setVisible(True)

    def clear(self) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.bars = {}
        self._headline = Headline()
        self.title.setText("")
        self.setVisible(False)

    def rows(self) -> dict[str, str]:
        """What the card says, by figure ("LUTs" → "2 676 / 5 280 (51 %)", "Fmax" → …)."""
        return self._headline.rows()


class ReportTree(QTreeWidget):
    """Every value of the report, by group; a value's full text is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deploy_report")
        self.setColumnCount(2)
        self.setHeaderLabels(["Report", "Value"])
        self.setWordWrap(True)
        self.setUniformRowHeights(False)
        self.setAlternatingRowColors(True)
        self.header().setStretchLastSection(True)

    def show_summary(self, summary: dict[str, Any]) -> None:
        self.clear()
        for group, rows in report_groups(summary).items():
            top = QTreeWidgetItem([f"{group} ({len(rows)})"])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            for key, text in rows:
                item = QTreeWidgetItem([key, text])
                item.setData(0, _KEY_ROLE, key)
                item.setToolTip(1, text)
                top.addChild(item)
            self.addTopLevelItem(top)
            top.setExpanded(group in OPEN_GROUPS)
        self.resizeColumnToContents(0)

    def groups(self) -> dict[str, bool]:
        """Group name → shown open."""
        out = {}
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            out[top.text(0).rsplit(" (", 1)[0]] = top.isExpanded()
        return out

    def rows(self) -> dict[str, str]:
        """Every value by its dotted key."""
        out = {}
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            for j in range(top.childCount()):
                item = top.child(j)
                out[item.data(0, _KEY_ROLE)] = item.text(1)
        return out
