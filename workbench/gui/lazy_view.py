"""A placeholder that builds its view the first time the view is needed.

Each pyqtgraph view costs ~25–45 ms to build; the raster, membrane and rate views sit in docks
behind the Training tab, so building them with the window delayed its first paint for views
nobody sees yet. :class:`LazyView` stands in their dock and builds the real view when its tab
is first shown (the dock's ``visibilityChanged``) or when code asks for it (:meth:`widget`), so
``window.raster`` and the like keep working for scripts and tests.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QDockWidget, QVBoxLayout, QWidget


class LazyView(QWidget):
    """Holds ``factory``'s widget once built; :attr:`built` is None until then."""

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self.built: QWidget | None = None
        QVBoxLayout(self).setContentsMargins(0, 0, 0, 0)

    def widget(self) -> QWidget:
        """The view, built now if it was not yet."""
        if self.built is None:
            self.built = self._factory()
            self.layout().addWidget(self.built)
            self.built.show()  # now, not on the next turn of the event loop (Qt's default)
        return self.built

    def build_when_shown(self, dock: QDockWidget) -> None:
        """Build when ``dock`` comes to the front (its tab chosen, or it is floated/shown)."""
        def shown(visible: bool) -> None:
            if visible:
                self.widget()
                dock.visibilityChanged.disconnect(shown)

        dock.visibilityChanged.connect(shown)
