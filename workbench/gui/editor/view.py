"""The network editor widget: zoom, pan, keys, context menus and drops from the palette.

Every edit goes through the :class:`~workbench.gui.document.ProjectDocument`; an edit made of
several document calls (deleting nodes and edges together) is one undo macro.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QMenu, QWidget

from workbench.core.build.report import CompileReport
from workbench.core.model.graph import Graph
from workbench.core.model.layout import layered_layout
from workbench.core.model.specs import BlockSpec, NeuronSpec
from workbench.gui.document import ProjectDocument
from workbench.gui.editor import MIME_SPEC
from workbench.gui.editor.items import EdgeItem, NodeItem
from workbench.gui.editor.scene import NetworkScene

MIN_ZOOM, MAX_ZOOM = 0.2, 4.0
_FIT_MAX_ZOOM = 1.25
_DELETE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)


def can_move_in_chain(graph: Graph, node_id: str, step: int) -> bool:
    """Whether :meth:`ProjectDocument.move_in_chain` would move the node (same rule)."""
    neighbour = graph.inputs_of(node_id) if step < 0 else graph.outputs_of(node_id)
    if len(neighbour) != 1:
        return False
    a, b = (neighbour[0], node_id) if step < 0 else (node_id, neighbour[0])
    return graph.outputs_of(a) == [b] and graph.inputs_of(b) == [a]


def _node_of(item: QGraphicsItem | None) -> NodeItem | None:
    while item is not None and not isinstance(item, NodeItem):
        item = item.parentItem()
    return item


class NetworkEditor(QGraphicsView):
    """Edits ``doc.project.graph``.

    ``node_selected(id)`` fires when the current node changes (``""`` when no node is
    selected); with several selected, the current one is the last added to the selection.
    """

    node_selected = Signal(str)

    def __init__(self, doc: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._scene = NetworkScene(doc, self)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        # the graph-level error banner is drawn in viewport coordinates: repaint it all
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._current = ""
        self._selected: list[str] = []
        self._fitted = False
        self._pan_from: QPointF | None = None
        self._scene.selectionChanged.connect(self._on_selection_changed)

    # -- document and report --------------------------------------------------------------------
    @property
    def network_scene(self) -> NetworkScene:
        return self._scene

    def set_report(self, report: CompileReport | None) -> None:
        """Show a validation report: output shapes, error badges, the graph-level error."""
        self._scene.set_report(report)
        self.viewport().update()

    def graph_error(self) -> str:
        return self._scene.graph_error

    # -- queries (also what tests check) --------------------------------------------------------
    def node_item(self, node_id: str) -> NodeItem | None:
        return self._scene.node_item(node_id)

    def edge_item(self, src: str, dst: str) -> EdgeItem | None:
        return self._scene.edge_item(src, dst)

    def node_count(self) -> int:
        return len(self._scene.node_items())

    def edge_count(self) -> int:
        return len(self._scene.edge_items())

    def port_scene_pos(self, node_id: str, kind: str) -> QPointF:
        """Centre of a node's ``"in"`` or ``"out"`` port, in scene coordinates."""
        item = self._scene.node_item(node_id)
        if item is None:
            raise KeyError(node_id)
        return item.port(kind).scenePos()

    # -- selection ------------------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        """Selected nodes, in the graph's order."""
        items = self._scene.node_items()
        return [i for i in self.doc.project.graph.ids() if i in items and items[i].isSelected()]

    def selected_edges(self) -> list[tuple[str, str]]:
        return [e.key for e in self._scene.edge_items() if e.isSelected()]

    def select_node(self, node_id: str) -> None:
        """Select only ``node_id`` (``""`` clears the selection) and scroll it into view."""
        item = self._scene.node_item(node_id) if node_id else None
        self._scene.clearSelection()
        if item is not None:
            item.setSelected(True)
            self.ensureVisible(item)

    def _on_selection_changed(self) -> None:
        selected = self.selected_node_ids()
        added = [i for i in selected if i not in self._selected]
        self._selected = selected
        if added:
            current = added[-1]
        elif self._current in selected:
            current = self._current
        else:
            current = selected[0] if selected else ""
        if current != self._current:
            self._current = current
            self.node_selected.emit(current)

    # -- edits ----------------------------------------------------------------------------------
    def delete_selected(self) -> None:
        """Delete the selected nodes (bridging chains) and edges, as one undo step."""
        nodes, edges = self.selected_node_ids(), self.selected_edges()
        if not nodes and not edges:
            return
        stack = self.doc.undo_stack
        stack.beginMacro(f"Delete {', '.join(nodes + [f'{s} → {d}' for s, d in edges])}")
        try:
            if nodes:
                self.doc.remove_nodes(nodes)
            for src, dst in edges:
                if (src, dst) in self.doc.project.graph.edges:
                    self.doc.disconnect(src, dst)
        finally:
            stack.endMacro()

    def duplicate_selected(self) -> list[str]:
        """Duplicate the selected nodes; the copies become the selection."""
        nodes = self.selected_node_ids()
        if not nodes:
            return []
        stack = self.doc.undo_stack
        stack.beginMacro(f"Duplicate {', '.join(nodes)}")
        try:
            new_ids = self.doc.duplicate_nodes(nodes)
        finally:
            stack.endMacro()
        self._scene.clearSelection()
        for node_id in new_ids:
            item = self._scene.node_item(node_id)
            if item is not None:
                item.setSelected(True)
        return new_ids

    def move_in_chain(self, node_id: str, step: int) -> bool:
        return self.doc.move_in_chain(node_id, step)

    def auto_layout(self) -> None:
        """Place every node with :func:`layered_layout` (one undo step), then fit the view."""
        self.doc.set_positions(layered_layout(self.doc.project.graph))
        self.fit_view()

    def fit_view(self) -> None:
        bounds = QRectF()
        for item in self._scene.node_items().values():
            bounds = bounds.united(item.sceneBoundingRect())
        if bounds.isNull():
            self.resetTransform()
            return
        self.fitInView(bounds.adjusted(-40, -40, 40, 40), Qt.AspectRatioMode.KeepAspectRatio)
        if self.transform().m11() > _FIT_MAX_ZOOM:  # a small graph is not blown up
            self.resetTransform()
            self.scale(_FIT_MAX_ZOOM, _FIT_MAX_ZOOM)
            self.centerOn(bounds.center())

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        factor = max(MIN_ZOOM / current, min(MAX_ZOOM / current, factor))
        self.scale(factor, factor)

    # -- drops from the palette -----------------------------------------------------------------
    def spec_from_mime(self, mime: QMimeData) -> str:
        """The spec id a drag carries, if it names a layer or neuron; else ``""``."""
        if not mime.hasFormat(MIME_SPEC):
            return ""
        spec_id = bytes(mime.data(MIME_SPEC).data()).decode("utf-8", "replace").strip()
        spec = self.doc.registry.get(spec_id)
        return spec_id if isinstance(spec, (BlockSpec, NeuronSpec)) else ""

    def drop_mime(self, mime: QMimeData, scene_pos: QPointF) -> str:
        """Add the node a drag carries at ``scene_pos``; returns its id (``""`` if none)."""
        spec_id = self.spec_from_mime(mime)
        if not spec_id:
            return ""
        node_id = self.doc.add_node(spec_id, position=(scene_pos.x(), scene_pos.y()))
        self.select_node(node_id)
        return node_id

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.spec_from_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        scene_pos = self.mapToScene(event.position().toPoint())
        if self.drop_mime(event.mimeData(), scene_pos):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- keys, wheel, panning -------------------------------------------------------------------
    def _is_edit_key(self, event: QKeyEvent) -> bool:
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.key() in _DELETE_KEYS and mods == Qt.KeyboardModifier.NoModifier:
            return bool(self._scene.selectedItems())
        return (event.key() == Qt.Key.Key_D and mods == Qt.KeyboardModifier.ControlModifier
                and bool(self.selected_node_ids()))

    def event(self, event: QEvent) -> bool:
        # Take Delete and Ctrl+D before a window-wide shortcut does, while this has focus.
        if event.type() == QEvent.Type.ShortcutOverride and self._is_edit_key(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self._scene.connecting:
            self._scene.cancel_connect()
        elif self._is_edit_key(event):
            if event.key() == Qt.Key.Key_D:
                self.duplicate_selected()
            else:
                self.delete_selected()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom(1.15 ** steps)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:  # middle drag pans
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            self.fit_view()

    # -- context menus --------------------------------------------------------------------------
    def _action(self, menu: QMenu, text: str, slot: Callable[[], object],
                shortcut: str = "", enabled: bool = True) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutVisibleInContextMenu(True)
        action.setEnabled(enabled)
        return action

    def node_menu(self, node_id: str) -> QMenu:
        """Delete, Duplicate, Move up, Move down for ``node_id`` (selected if it was not)."""
        item = self._scene.node_item(node_id)
        if item is not None and not item.isSelected():
            self.select_node(node_id)
        graph = self.doc.project.graph
        menu = QMenu(self)
        self._action(menu, "Delete", self.delete_selected, "Del")
        self._action(menu, "Duplicate", self.duplicate_selected, "Ctrl+D")
        menu.addSeparator()
        self._action(menu, "Move up", lambda: self.move_in_chain(node_id, -1),
                     enabled=can_move_in_chain(graph, node_id, -1))
        self._action(menu, "Move down", lambda: self.move_in_chain(node_id, +1),
                     enabled=can_move_in_chain(graph, node_id, +1))
        return menu

    def edge_menu(self, src: str, dst: str) -> QMenu:
        menu = QMenu(self)
        self._action(menu, "Delete connection", lambda: self.doc.disconnect(src, dst), "Del")
        return menu

    def background_menu(self) -> QMenu:
        menu = QMenu(self)
        self._action(menu, "Auto-layout", self.auto_layout)
        self._action(menu, "Fit view", self.fit_view)
        return menu

    def menu_at(self, view_pos: QPoint) -> QMenu:
        """The context menu for what lies under ``view_pos`` (viewport coordinates)."""
        item = self.itemAt(view_pos)
        node = _node_of(item)
        if node is not None:
            return self.node_menu(node.node_id)
        if isinstance(item, EdgeItem):
            return self.edge_menu(*item.key)
        return self.background_menu()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.menu_at(event.pos())
        menu.exec(event.globalPos())
        menu.deleteLater()
        event.accept()

    # -- drawing --------------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor("#fafafa"))
        step = 20
        painter.setPen(QColor("#ececec"))
        left = int(rect.left()) - int(rect.left()) % step
        top = int(rect.top()) - int(rect.top()) % step
        for x in range(left, int(rect.right()) + 1, step):
            painter.drawLine(x, int(rect.top()), x, int(rect.bottom()))
        for y in range(top, int(rect.bottom()) + 1, step):
            painter.drawLine(int(rect.left()), y, int(rect.right()), y)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        error = self.graph_error()
        if not error:
            return
        painter.save()
        painter.resetTransform()
        banner = QRectF(8, 8, self.viewport().width() - 16, 28)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#fee2e2"))
        painter.drawRoundedRect(banner, 6, 6)
        painter.setPen(QColor("#991b1b"))
        painter.drawText(banner.adjusted(10, 0, -10, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         painter.fontMetrics().elidedText(error, Qt.TextElideMode.ElideRight,
                                                          int(banner.width()) - 20))
        painter.restore()
