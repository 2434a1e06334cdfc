"""The scene: mirrors the document's graph as items, and turns drags into document edits.

:meth:`NetworkScene.rebuild` runs on every ``doc.changed``. It updates node items in place
(keyed by node id) and redraws the edges, so the selection survives and no item is deleted
while it is handling its own mouse event (a drag's commit and a connection both edit the
document from inside an item's ``mouseReleaseEvent``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
)

from workbench.core.build.report import CompileReport
from workbench.core.model.graph import Graph
from workbench.core.model.layout import layered_layout
from workbench.gui.document import ProjectDocument
from workbench.gui.editor.items import (
    IN,
    OUT,
    EdgeItem,
    NodeItem,
    PortItem,
    connection_path,
)

_SCENE_MARGIN = 1000.0


def _graph_key(graph: Graph) -> tuple[Any, ...]:
    """What the drawing depends on; an edit of training settings leaves it alone."""
    return (tuple((n.id, n.spec, n.position, n.placeholder) for n in graph.nodes),
            tuple(graph.edges))


class NetworkScene(QGraphicsScene):
    """Items for ``doc.project.graph``; ``rebuilt`` fires after every rebuild."""

    rebuilt = Signal()

    def __init__(self, doc: ProjectDocument, parent: Any = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.report: CompileReport | None = None
        self._nodes: dict[str, NodeItem] = {}
        self._edges: list[EdgeItem] = []
        self._key: tuple[Any, ...] | None = None
        self._rect = QRectF()
        self._connect_from: PortItem | None = None
        self._target: PortItem | None = None
        self._rubber: QGraphicsPathItem | None = None
        doc.changed.connect(self.rebuild)
        self.rebuild()

    # -- items ----------------------------------------------------------------------------------
    def node_items(self) -> dict[str, NodeItem]:
        return dict(self._nodes)

    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges)

    def edge_item(self, src: str, dst: str) -> EdgeItem | None:
        return next((e for e in self._edges if e.key == (src, dst)), None)

    def rebuild(self, force: bool = False) -> None:
        """Bring the items in line with the document (cheap when the graph did not change)."""
        graph = self.doc.project.graph
        key = _graph_key(graph)
        if key == self._key and not force:
            return
        self._key = key
        selected_edges = {e.key for e in self._edges if e.isSelected()}
        for edge in self._edges:
            self.removeItem(edge)
        self._edges = []
        ids = set(graph.ids())
        for node_id in [i for i in self._nodes if i not in ids]:
            self.removeItem(self._nodes.pop(node_id))
        # nodes without a saved position are placed for display only (no undo step)
        layout = layered_layout(graph) if any(n.position is None for n in graph.nodes) else {}
        for node in graph.nodes:
            item = self._nodes.get(node.id)
            if item is None:
                item = self._nodes[node.id] = NodeItem(node.id)
                self.addItem(item)
            item.edges = []
            item.update_from(node, self.doc.registry.get(node.spec))
            x, y = node.position or layout.get(node.id, (0.0, 0.0))
            item.set_committed_pos(QPointF(x, y))
        for src, dst in graph.edges:
            if src in self._nodes and dst in self._nodes:
                edge = EdgeItem(self._nodes[src], self._nodes[dst])
                self._nodes[src].edges.append(edge)
                self._nodes[dst].edges.append(edge)
                self.addItem(edge)
                edge.setSelected((src, dst) in selected_edges)
                self._edges.append(edge)
        self._apply_report()
        self._grow_scene_rect()
        self.rebuilt.emit()

    def _grow_scene_rect(self) -> None:
        # Grow only: a scene rect that shrank or moved after an edit would scroll the view.
        bounds = QRectF()
        for item in self._nodes.values():
            bounds = bounds.united(item.sceneBoundingRect())
        bounds = bounds.adjusted(-_SCENE_MARGIN, -_SCENE_MARGIN, _SCENE_MARGIN, _SCENE_MARGIN)
        if self._rect.isNull() or not self._rect.contains(bounds):
            self._rect = bounds if self._rect.isNull() else self._rect.united(bounds)
            self.setSceneRect(self._rect)

    # -- validation -----------------------------------------------------------------------------
    def set_report(self, report: CompileReport | None) -> None:
        self.report = report
        self._apply_report()
        self.update()

    def _apply_report(self) -> None:
        nodes = self.report.nodes if self.report is not None else {}
        for node_id, item in self._nodes.items():
            info = nodes.get(node_id)
            item.set_info(info.out_shape if info else None, info.error if info else "")

    @property
    def graph_error(self) -> str:
        """The report's graph-level problem (a cycle, several outputs), or ``""``."""
        return self.report.error if self.report is not None else ""

    # -- moving nodes ---------------------------------------------------------------------------
    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.commit_moves()

    def commit_moves(self) -> None:
        """Write dragged nodes' positions to the document: one undo step per drag."""
        moved = {node_id: (float(round(item.pos().x())), float(round(item.pos().y())))
                 for node_id, item in self._nodes.items() if item.pos() != item.committed_pos}
        if len(moved) == 1:
            node_id, position = next(iter(moved.items()))
            self.doc.move_node(node_id, position)
        elif moved:
            self.doc.set_positions(moved, text=f"Move {', '.join(moved)}")

    # -- drag to connect ------------------------------------------------------------------------
    @property
    def connecting(self) -> bool:
        return self._connect_from is not None

    def begin_connect(self, port: PortItem, scene_pos: QPointF) -> None:
        self.cancel_connect()
        self._connect_from = port
        self._rubber = QGraphicsPathItem()
        pen = QPen(Qt.GlobalColor.darkGray, 1.5, Qt.PenStyle.DashLine)
        self._rubber.setPen(pen)
        self._rubber.setZValue(10)
        self._rubber.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, False)
        self._rubber.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.addItem(self._rubber)
        self.update_connect(scene_pos)

    def update_connect(self, scene_pos: QPointF) -> None:
        if self._connect_from is None or self._rubber is None:
            return
        target = self.port_target_at(scene_pos)
        if target is not self._target:
            if self._target is not None:
                self._target.set_highlighted(False)
            self._target = target
            if target is not None:
                target.set_highlighted(True)
        anchor = self._connect_from.scenePos()
        end = target.scenePos() if target is not None else scene_pos
        start, stop = (anchor, end) if self._connect_from.kind == OUT else (end, anchor)
        self._rubber.setPath(connection_path(start, stop))

    def finish_connect(self, scene_pos: QPointF) -> bool:
        """End the drag; connect when it ended on a fitting port (or node). True if connected."""
        source = self._connect_from
        target = self.port_target_at(scene_pos) if source is not None else None
        self.cancel_connect()
        if source is None or target is None:
            return False
        src, dst = ((source.node.node_id, target.node.node_id) if source.kind == OUT
                    else (target.node.node_id, source.node.node_id))
        return self.doc.connect(src, dst)

    def cancel_connect(self) -> None:
        if self._rubber is not None:
            self.removeItem(self._rubber)
        if self._target is not None:
            self._target.set_highlighted(False)
        self._connect_from = self._target = self._rubber = None

    def port_target_at(self, scene_pos: QPointF) -> PortItem | None:
        """The port a connection drag would end on at ``scene_pos``: an opposite port of
        another node, or the fitting port of the node under the cursor."""
        source = self._connect_from
        if source is None:
            return None
        wanted = IN if source.kind == OUT else OUT
        for item in self.items(scene_pos):
            if isinstance(item, PortItem) and item.node is not source.node and item.kind == wanted:
                return item
            if isinstance(item, NodeItem) and item is not source.node:
                return item.port(wanted)
        return None
