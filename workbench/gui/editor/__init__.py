"""The network editor: the project's graph drawn on a ``QGraphicsScene``.

Split as orange-canvas-core splits its canvas: the model is the
:class:`~workbench.gui.document.ProjectDocument` (every edit one undo step), :mod:`.scene` mirrors
its graph as items, :mod:`.items` draws nodes, ports and edges, and :mod:`.view` is the widget
that turns mouse, keyboard and drops into document edits.

The classes are imported on first use, so the palette can import :data:`MIME_SPEC` from here
without loading the editor (and :mod:`.view` can import it without an import cycle).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Mime type of a spec dragged from the palette; the payload is the spec id in UTF-8.
MIME_SPEC = "application/x-snn-workbench-spec"

_LAZY = {
    "NetworkEditor": "workbench.gui.editor.view",
    "NetworkScene": "workbench.gui.editor.scene",
    "NodeItem": "workbench.gui.editor.items",
    "PortItem": "workbench.gui.editor.items",
    "EdgeItem": "workbench.gui.editor.items",
}

__all__ = ["MIME_SPEC", "EdgeItem", "NetworkEditor", "NetworkScene", "NodeItem", "PortItem"]

if TYPE_CHECKING:
    from workbench.gui.editor.items import EdgeItem, NodeItem, PortItem
    from workbench.gui.editor.scene import NetworkScene
    from workbench.gui.editor.view import NetworkEditor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
