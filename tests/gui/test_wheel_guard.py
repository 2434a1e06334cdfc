"""Scrolling over a form never changes the value under the pointer (issue #12: a wheel over the
Deploy panel changed its chunk size from 8 to 14 on the way down)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea, QSpinBox, QVBoxLayout, QWidget

pytestmark = pytest.mark.gui


def _wheel(widget: QWidget, notches: int = 3) -> None:
    """A real wheel turn over the middle of ``widget`` (downwards, ``notches`` clicks)."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                        QPoint(0, -120 * notches), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_form_not_the_spin_box_under_it(make_main_window, qtbot):
    make_main_window()  # installs the guard, as the app does
    area = QScrollArea()
    form = QWidget()
    layout = QVBoxLayout(form)
    boxes = [QSpinBox(maximum=100, value=50) for _ in range(40)]
    for box in boxes:
        layout.addWidget(box)
    area.setWidget(form)
    area.resize(200, 150)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    box = boxes[1]
    before = area.verticalScrollBar().value()

    _wheel(box)
    assert box.value() == 50  # passed over: unchanged
    assert area.verticalScrollBar().value() > before  # and the form scrolled instead

    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    _wheel(box)
    assert box.value() != 50  # clicked into: the wheel is the user's way to change it


def test_a_spin_box_of_the_window_ignores_a_passing_wheel(make_main_window, qtbot):
    window = make_main_window()
    boxes = [b for b in window.findChildren(QSpinBox) if b.isVisible() and b.isEnabled()]
    assert boxes
    box = boxes[0]
    window.setFocus()
    value = box.value()
    _wheel(box)
    assert box.value() == value
