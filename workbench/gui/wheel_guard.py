"""The mouse wheel scrolls the panel, not the number under the cursor.

Qt gives a wheel event to whatever spin box or combo box is under the pointer, so scrolling a
long form (the Deploy panel, the inspector) silently changed values it passed over: a chunk
size from 8 to 14, a fit check reset. One application-wide filter makes such a widget take the
wheel only while it has the keyboard focus (the user clicked into it); otherwise the event goes
to the scroll area around it, as the user meant.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QWidget,
)

_GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    """Ignores wheel events on unfocused spin boxes and combo boxes (see the module)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt's name
        # every event of the app passes here: isinstance is ~6× cheaper than event.type()
        if isinstance(event, QWheelEvent) and isinstance(watched, _GUARDED):
            widget: QWidget = watched
            if not widget.hasFocus():
                # StrongFocus: a wheel over it must not give it the focus either
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
                area = _scroll_area_around(widget)
                if area is not None:  # the panel around it scrolls, as the user meant
                    QApplication.sendEvent(area.viewport(), event)
                return True
        return False


def _scroll_area_around(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def install_wheel_guard(app: QApplication | None = None) -> WheelGuard:
    """Install the guard on ``app`` (default: the running application) once; returns it."""
    app = app or QApplication.instance()
    guard = getattr(app, "_wb_wheel_guard", None)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
        app._wb_wheel_guard = guard  # one per application, kept alive with it
    return guard
