"""The palette: every contribution, grouped by kind, searchable, draggable into the editor."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from workbench.gui.editor import MIME_SPEC
from workbench.pluginhost.registry import KIND_TITLES, ContributionRegistry

#: kinds that become nodes of the network graph (the rest are project settings)
NODE_KINDS = ("block", "neuron", "attention")
_SPEC_ROLE = Qt.ItemDataRole.UserRole


class _SpecTree(QTreeWidget):
    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:  # noqa: N802 - Qt override
        mime = QMimeData()
        ids = [i.data(0, _SPEC_ROLE) for i in items if i.data(0, _SPEC_ROLE)]
        if ids:
            mime.setData(MIME_SPEC, ids[0].encode("utf-8"))
            mime.setText(ids[0])
        return mime

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt override
        return [MIME_SPEC]


class PalettePanel(QWidget):
    """``spec_activated(spec_id, kind)`` on double-click or Enter; ``spec_selected(spec_id,
    kind)`` when the current item becomes a contribution (the neuron explorer follows it)."""

    spec_activated = Signal(str, str)
    spec_selected = Signal(str, str)

    def __init__(self, registry: ContributionRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.search = QLineEdit(placeholderText="Search neurons, blocks, datasets…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.tree = _SpecTree()
        self.tree.setHeaderLabels(["Contribution", "Plugin"])
        self.tree.setDragEnabled(True)
        self.tree.setRootIsDecorated(True)
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._populate()

    def _populate(self) -> None:
        self.tree.clear()
        for kind in self.registry.kinds():
            group = QTreeWidgetItem([KIND_TITLES.get(kind, kind), ""])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setData(0, Qt.ItemDataRole.UserRole + 1, kind)
            for spec in sorted(self.registry.of_kind(kind), key=lambda s: s.display_name.lower()):
                item = QTreeWidgetItem([spec.display_name, self.registry.provider(spec.id)])
                item.setData(0, _SPEC_ROLE, spec.id)
                item.setData(0, Qt.ItemDataRole.UserRole + 1, kind)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                if kind in NODE_KINDS:
                    flags |= Qt.ItemFlag.ItemIsDragEnabled
                item.setFlags(flags)
                tip = f"<b>{spec.display_name}</b><br><code>{spec.id}</code>"
                if spec.doc:
                    tip += f"<br>{spec.doc}"
                item.setToolTip(0, tip)
                group.addChild(item)
            self.tree.addTopLevelItem(group)
            group.setExpanded(kind in NODE_KINDS)
        self.tree.resizeColumnToContents(0)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            shown = 0
            for c in range(group.childCount()):
                item = group.child(c)
                hay = f"{item.text(0)} {item.data(0, _SPEC_ROLE)} {item.text(1)}".lower()
                match = not needle or needle in hay
                item.setHidden(not match)
                shown += match
            group.setHidden(shown == 0)
            if needle:
                group.setExpanded(True)

    def visible_spec_ids(self) -> list[str]:
        ids = []
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount()):
                item = group.child(c)
                if not item.isHidden() and not group.isHidden():
                    ids.append(item.data(0, _SPEC_ROLE))
        return ids

    def item_for(self, spec_id: str) -> QTreeWidgetItem | None:
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for c in range(group.childCount()):
                if group.child(c).data(0, _SPEC_ROLE) == spec_id:
                    return group.child(c)
        return None

    def _on_current_changed(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        spec_id = item.data(0, _SPEC_ROLE) if item is not None else None
        if spec_id:
            self.spec_selected.emit(spec_id, item.data(0, Qt.ItemDataRole.UserRole + 1))

    def _on_activated(self, item: QTreeWidgetItem, column: int) -> None:
        spec_id = item.data(0, _SPEC_ROLE)
        if spec_id:
            self.spec_activated.emit(spec_id, item.data(0, Qt.ItemDataRole.UserRole + 1))
