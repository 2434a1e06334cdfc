"""Graphics items of the network editor: nodes, their two ports, their badge, and edges.

Items only draw, and report mouse gestures to their
:class:`~workbench.gui.editor.scene.NetworkScene`; they never edit the document themselves.
A node's ``pos()`` is its centre, the same point as ``Node.position`` in the project file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsSceneHoverEvent,
    QGraphicsSceneMouseEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

if TYPE_CHECKING:
    from workbench.core.model.graph import Node

NODE_WIDTH = 170.0
NODE_HEIGHT = 56.0
PORT_RADIUS = 5.0
IN, OUT = "in", "out"

#: the message :func:`workbench.core.compile.validate` gives a node downstream of an error
UPSTREAM_ERROR = "an input of this node has an error"

_FILL = {  # by neuron / block category
    "neuron": QColor("#eee2fb"),
    "spiking": QColor("#fde7cf"),
    "layer": QColor("#dde8fb"),
    "readout": QColor("#daf2df"),
    "attention": QColor("#d5f0f0"),
    "placeholder": QColor("#eeeeee"),
}
_OTHER_FILL = QColor("#f1f1e4")
_BORDER = QColor("#6b7280")
_SELECTED = QColor("#2563eb")
_TEXT = QColor("#111827")
_MUTED = QColor("#6b7280")
_ERROR = QColor("#dc2626")
_UPSTREAM = QColor("#d97706")


def kind_key(spec: Any, placeholder: bool) -> str:
    """The colour key of a node: ``neuron``, a block category, or ``placeholder``."""
    if placeholder or spec is None:
        return "placeholder"
    if spec.KIND == "neuron":
        return "neuron"
    return str(getattr(spec, "category", spec.KIND))


def format_shape(shape: tuple[int, ...] | None) -> str:
    return "" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


class PortItem(QGraphicsItem):
    """The input (top) or output (bottom) port of a node; dragging from it draws an edge."""

    def __init__(self, node: NodeItem, kind: str) -> None:
        super().__init__(node)
        self.node, self.kind = node, kind
        self.highlighted = False
        self.setPos(0.0, (-NODE_HEIGHT if kind == IN else NODE_HEIGHT) / 2)
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("input: drag to an output to connect" if kind == IN
                        else "output: drag to an input to connect")

    def boundingRect(self) -> QRectF:
        r = PORT_RADIUS + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:  # a larger hit area than the drawn dot
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = PORT_RADIUS + (2 if self.highlighted else 0)
        painter.setPen(QPen(_SELECTED if self.highlighted else _BORDER, 1.5))
        painter.setBrush(QBrush(_SELECTED if self.highlighted else QColor("white")))
        painter.drawEllipse(QPointF(0, 0), r, r)

    def set_highlighted(self, on: bool) -> None:
        if on != self.highlighted:
            self.highlighted = on
            self.update()

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.set_highlighted(True)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:
        self.set_highlighted(False)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        scene = self.scene()
        if event.button() == Qt.MouseButton.LeftButton and hasattr(scene, "begin_connect"):
            scene.begin_connect(self, event.scenePos())
            event.accept()
        else:
            event.ignore()

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.scene().update_connect(event.scenePos())

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.scene().finish_connect(event.scenePos())


class BadgeItem(QGraphicsItem):
    """A node's red "!" (its own error), amber "!" (an upstream error) or "plugin missing"."""

    def __init__(self, node: NodeItem) -> None:
        super().__init__(node)
        self.mode = "error"  # error | upstream | missing
        self.text = ""
        self.setPos(NODE_WIDTH / 2 - 2, -NODE_HEIGHT / 2 + 2)
        self.setZValue(2)
        self._font = QFont()
        self._font.setPointSizeF(7.5)
        self._font.setBold(True)
        self.hide()

    def set_badge(self, mode: str, text: str) -> None:
        self.prepareGeometryChange()
        self.mode, self.text = mode, text
        self.setToolTip(text)
        self.setVisible(bool(text))
        self.update()

    def _label(self) -> str:
        return "plugin missing" if self.mode == "missing" else "!"

    def boundingRect(self) -> QRectF:
        if self.mode == "missing":  # a pill from the top-right corner, clear of the port
            width = QFontMetricsF(self._font).horizontalAdvance(self._label()) + 12
            return QRectF(-40, -9, width, 18)
        return QRectF(-9, -9, 18, 18)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = {"error": _ERROR, "upstream": _UPSTREAM}.get(self.mode, _MUTED)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(colour)
        rect = self.boundingRect().adjusted(1, 1, -1, -1)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setFont(self._font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._label())


class NodeItem(QGraphicsItem):
    """One node: id (bold), the spec's display name and the last known output shape."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.display_name = ""
        self.spec_id = ""
        self.kind = "layer"
        self.placeholder = False
        self.shape_str = ""
        self.error = ""
        #: position last taken from the document; a drag is committed when pos() differs
        self.committed_pos = QPointF()
        self.edges: list[EdgeItem] = []
        self.ports = {IN: PortItem(self, IN), OUT: PortItem(self, OUT)}
        self.badge = BadgeItem(self)
        self._title_font = QFont()
        self._title_font.setBold(True)
        self._small_font = QFont()
        self._small_font.setPointSizeF(max(self._small_font.pointSizeF() - 1, 7.0))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setZValue(1)

    # -- state from the document and the report -------------------------------------------------
    def update_from(self, node: Node, spec: Any) -> None:
        self.spec_id = node.spec
        self.placeholder = node.placeholder or spec is None
        self.display_name = spec.display_name if spec is not None else node.spec
        self.kind = kind_key(spec, self.placeholder)
        doc = getattr(spec, "doc", "") if spec is not None else ""
        self.setToolTip(f"{node.id}: {node.spec}" + (f"\n{doc}" if doc else ""))
        self._update_badge()
        self.update()

    def set_info(self, shape: tuple[int, ...] | None, error: str) -> None:
        self.shape_str, self.error = format_shape(shape), error
        self._update_badge()
        self.update()

    def set_committed_pos(self, pos: QPointF) -> None:
        self.committed_pos = QPointF(pos)
        if self.pos() != pos:
            self.setPos(pos)

    def _update_badge(self) -> None:
        if self.placeholder:
            why = self.error or f"no installed plugin provides {self.spec_id!r}"
            self.badge.set_badge("missing", f"plugin missing: {why}")
        elif self.error:
            self.badge.set_badge("upstream" if self.error == UPSTREAM_ERROR else "error",
                                 self.error)
        else:
            self.badge.set_badge("error", "")

    # -- what a user sees (used by tests) --------------------------------------------------------
    def badge_visible(self) -> bool:
        return self.badge.isVisible()

    def badge_text(self) -> str:
        """The badge's tooltip: the error, or for a placeholder what is missing."""
        return self.badge.text if self.badge.isVisible() else ""

    def shape_text(self) -> str:
        return self.shape_str

    def port(self, kind: str) -> PortItem:
        return self.ports[kind]

    # -- drawing ------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(-NODE_WIDTH / 2 - 2, -NODE_HEIGHT / 2 - 2, NODE_WIDTH + 4, NODE_HEIGHT + 4)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self._rect(), 8, 8)
        return path

    def _rect(self) -> QRectF:
        return QRectF(-NODE_WIDTH / 2, -NODE_HEIGHT / 2, NODE_WIDTH, NODE_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self._rect()
        pen = QPen(_SELECTED if self.isSelected() else _BORDER, 2.5 if self.isSelected() else 1.2)
        if self.placeholder:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(_FILL.get(self.kind, _OTHER_FILL))
        painter.drawRoundedRect(rect, 8, 8)
        text_rect = rect.adjusted(10, 5, -10, -5)
        line = text_rect.height() / 3
        rows = [(self.node_id, self._title_font, _MUTED if self.placeholder else _TEXT),
                (self.display_name, self._small_font, _MUTED),
                (self.shape_str, self._small_font, _ERROR if self.error else _TEXT)]
        for i, (text, font, colour) in enumerate(rows):
            if not text:
                continue
            painter.setFont(font)
            painter.setPen(colour)
            elided = QFontMetricsF(font).elidedText(text, Qt.TextElideMode.ElideRight,
                                                    text_rect.width())
            row = QRectF(text_rect.left(), text_rect.top() + i * line, text_rect.width(), line)
            painter.drawText(row, Qt.AlignmentFlag.AlignCenter, elided)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.update_path()
        return super().itemChange(change, value)


def connection_path(start: QPointF, end: QPointF) -> QPainterPath:
    """A vertical cubic from an output port (``start``) down to an input port (``end``)."""
    bend = max(40.0, abs(end.y() - start.y()) / 2)
    path = QPainterPath(start)
    path.cubicTo(start + QPointF(0, bend), end - QPointF(0, bend), end)
    return path


class EdgeItem(QGraphicsItem):
    """An arrow from ``source``'s output port to ``target``'s input port; selectable."""

    ARROW = 9.0

    def __init__(self, source: NodeItem, target: NodeItem) -> None:
        super().__init__()
        self.source, self.target = source, target
        self._path = QPainterPath()
        self._hit = QPainterPath()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-1)
        self.setToolTip(f"{source.node_id} → {target.node_id}")
        self.update_path()

    @property
    def key(self) -> tuple[str, str]:
        return self.source.node_id, self.target.node_id

    def update_path(self) -> None:
        self.prepareGeometryChange()
        start = self.source.port(OUT).scenePos()
        end = self.target.port(IN).scenePos() - QPointF(0, PORT_RADIUS)
        self._path = connection_path(start, end)
        stroker = QPainterPathStroker()
        stroker.setWidth(12)
        self._hit = stroker.createStroke(self._path)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._hit.boundingRect().adjusted(-self.ARROW, -self.ARROW, self.ARROW, self.ARROW)

    def shape(self) -> QPainterPath:
        return self._hit

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = _SELECTED if self.isSelected() else _BORDER
        painter.setPen(QPen(colour, 2.5 if self.isSelected() else 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        tip = self._path.pointAtPercent(1.0)
        angle = self._path.angleAtPercent(1.0)  # degrees, counter-clockwise, y up
        arrow = QPolygonF([QPointF(0, 0), QPointF(-self.ARROW, -self.ARROW / 2),
                           QPointF(-self.ARROW, self.ARROW / 2)])
        painter.save()
        painter.translate(tip)
        painter.rotate(-angle)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawPolygon(arrow)
        painter.restore()
