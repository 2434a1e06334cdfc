"""The Edit menu's node commands (delete, duplicate, auto-layout), what a double-click in the
palette does, and the validation of the graph as it is edited (shape badges in the editor)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer

from workbench.core.build.report import CompileReport
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import Component
from workbench.gui.actions import make_action
from workbench.gui.document import network_key
from workbench.gui.panels.palette import NODE_KINDS

log = logging.getLogger(__name__)

VALIDATE_DELAY_MS = 150
#: palette kinds that choose a project setting: (setting, undo text)
_SETTING_OF_KIND = {"dataset": ("dataset", "Choose dataset"),
                    "encoder": ("encoder", "Choose encoder"),
                    "learning_rule": ("training.rule", "Choose learning rule"),
                    "energy_model": ("energy.table", "Choose cost table")}


class EditActions(QObject):
    """``window`` provides ``editor``, ``doc``, ``session``, ``palette``, ``probes`` and the
    status bar; :attr:`report` is the last validation's (None when it could not run)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.report: CompileReport | None = None
        self._validated_key = ""
        self._timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS)
        self._timer.timeout.connect(self.validate_now)
        window.palette.spec_activated.connect(self._on_spec_activated)
        self.actions = [make_action(window, "Delete selected nodes (Del)", self.delete_selection),
                        make_action(window, "Duplicate selected nodes", self.duplicate_selection,
                                    "Ctrl+D"),
                        make_action(window, "Auto-layout", self.auto_layout, "Ctrl+L")]

    def watch(self, doc: Any) -> None:
        """Validate ``doc`` shortly after each edit that could change a shape."""
        doc.changed.connect(self._validate_soon)

    # -- commands ----------------------------------------------------------------------------
    def _on_spec_activated(self, spec_id: str, kind: str) -> None:
        doc = self.window.doc
        if kind in NODE_KINDS:
            self.window.editor.select_node(doc.add_node(spec_id))
        elif kind in _SETTING_OF_KIND:
            path, text = _SETTING_OF_KIND[kind]
            doc.set_setting(path, spec_id if kind == "energy_model" else Component(spec_id), text)

    def delete_selection(self) -> None:
        if ids := self.window.editor.selected_node_ids():
            self.window.doc.remove_nodes(ids)

    def duplicate_selection(self) -> None:
        if ids := self.window.editor.selected_node_ids():
            self.window.doc.duplicate_nodes(ids)

    def auto_layout(self) -> None:
        from workbench.core.model.layout import layered_layout

        self.window.doc.set_positions(layered_layout(self.window.doc.project.graph))

    # -- validation --------------------------------------------------------------------------
    def _validation_key(self) -> str:
        """What validation depends on: the network (graph, dataset, encoder), the dataset's
        params, and which nodes are placeholders."""
        p = self.window.doc.project
        return repr((network_key(p), p.dataset, [n.placeholder for n in p.graph.nodes]))

    def _validate_soon(self) -> None:
        if self._validation_key() != self._validated_key:  # skip moves and settings edits
            self._timer.start()

    def validate_now(self) -> CompileReport | None:
        window = self.window
        self._validated_key = self._validation_key()
        try:
            self.report = window.session.validate()
        except WorkbenchError as exc:
            self.report = None
            window.statusBar().showMessage(str(exc), 10_000)
            log.error("%s", exc)
        window.editor.set_report(self.report)
        if self.report is not None:
            window.probes.set_sample_count(len(window.session.data().test))
        return self.report
