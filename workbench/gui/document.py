"""The open project as an undoable document.

Every edit — from the network editor, the inspector or the training panel — goes through a
method here and becomes one :class:`QUndoCommand`. Commands store snapshots of the project's
editable state (graph and settings; small) taken before and after the edit, so undo and redo
restore exactly what was there, whatever the edit touched. Successive edits of the same field
(typing in a spin box, dragging a node) merge into one undo step.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from workbench.core.model.graph import Node
from workbench.core.model.project import Project, bind_specs
from workbench.core.model.setting_paths import apply_setting
from workbench.core.model.specs import NeuronSpec

_STATE_FIELDS = ("name", "description", "graph", "dataset", "encoder", "time_steps", "training",
                 "energy", "compute", "compression", "deploy", "extras")
_NEXT_MERGE_ID = iter(range(1000, 1 << 30))
_MERGE_IDS: dict[str, int] = {}


def _merge_id(key: str) -> int:
    if key not in _MERGE_IDS:
        _MERGE_IDS[key] = next(_NEXT_MERGE_ID)
    return _MERGE_IDS[key]


class _StateCommand(QUndoCommand):
    def __init__(self, doc: ProjectDocument, text: str, before: dict[str, Any],
                 after: dict[str, Any], merge_key: str = "") -> None:
        super().__init__(text)
        self.doc, self.before, self.after, self.merge_key = doc, before, after, merge_key

    def id(self) -> int:  # noqa: A003 - Qt's name
        return _merge_id(self.merge_key) if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt override
        if not isinstance(other, _StateCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self.doc._restore(self.after)

    def undo(self) -> None:
        self.doc._restore(self.before)


class ProjectDocument(QObject):
    """``changed`` fires after every edit, undo and redo; ``graph_edited`` only when the graph
    (and so the shape of the weights) may have changed."""

    changed = Signal()
    graph_edited = Signal()
    dirty_changed = Signal(bool)

    def __init__(self, project: Project, registry: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.registry = registry
        self.notes = bind_specs(project, registry)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        #: False once the graph changed since the weights file was written or loaded
        self.weights_match_graph = True

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    # -- state -----------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

    def _snapshot(self) -> dict[str, Any]:
        return {f: copy.deepcopy(getattr(self.project, f)) for f in _STATE_FIELDS}

    def _restore(self, state: dict[str, Any]) -> None:
        key_before = network_key(self.project)
        for f, value in state.items():
            setattr(self.project, f, copy.deepcopy(value))
        if key_before != network_key(self.project):
            self.weights_match_graph = False
            self.graph_edited.emit()
        self.changed.emit()

    def edit(self, text: str, change, merge_key: str = "") -> None:
        """Apply ``change(project)`` as one undoable step named ``text``."""
        before = self._snapshot()
        change(self.project)
        after = self._snapshot()
        self._restore(before)  # the command's redo() applies it, so undo/redo stay symmetric
        if before == after:
            return
        self.undo_stack.push(_StateCommand(self, text, before, after, merge_key))

    # -- graph edits ---------------------------------------------------------------------------
    def node_stem(self, spec_id: str) -> str:
        name = spec_id.split(".", 1)[-1]
        return {"spiking_conv": "conv", "spiking_linear": "fc", "linear": "fc",
                "conv2d": "conv", "max_pool": "pool", "avg_pool": "pool"}.get(name, name)

    def add_node(self, spec_id: str, *, position: tuple[float, float] | None = None,
                 after: str | None = None, params: dict[str, Any] | None = None) -> str:
        """Add a node; wire it after ``after`` (default: the current output node)."""
        node_id = self.project.graph.unique_id(self.node_stem(spec_id))
        spec = self.registry.get(spec_id)
        version = spec.spec_version if spec is not None else 1

        def change(p: Project) -> None:
            graph = p.graph
            source = after if after is not None else (graph.sinks()[-1] if graph.sinks() else None)
            graph.nodes.append(Node(node_id, spec_id, dict(params or {}), version, position))
            if source is not None and source in graph.ids():
                for dst in graph.outputs_of(source):  # insert into the chain
                    graph.edges.remove((source, dst))
                    graph.edges.append((node_id, dst))
                graph.edges.append((source, node_id))

        self.edit(f"Add {node_id}", change)
        return node_id

    def remove_nodes(self, node_ids: list[str]) -> None:
        """Delete nodes; a node with one input and one output is bridged, keeping the chain."""
        def change(p: Project) -> None:
            graph = p.graph
            for node_id in node_ids:
                ins, outs = graph.inputs_of(node_id), graph.outputs_of(node_id)
                graph.edges = [e for e in graph.edges if node_id not in e]
                if len(ins) == 1 and len(outs) == 1:
                    graph.edges.append((ins[0], outs[0]))
                graph.nodes = [n for n in graph.nodes if n.id != node_id]

        self.edit(f"Delete {', '.join(node_ids)}", change)

    def connect(self, src: str, dst: str) -> bool:
        graph = self.project.graph
        if src == dst or (src, dst) in graph.edges:
            return False
        self.edit(f"Connect {src} → {dst}", lambda p: p.graph.edges.append((src, dst)))
        return True

    def disconnect(self, src: str, dst: str) -> None:
        self.edit(f"Disconnect {src} → {dst}",
                  lambda p: p.graph.edges.remove((src, dst)) if (src, dst) in p.graph.edges else None)

    def duplicate_nodes(self, node_ids: list[str]) -> list[str]:
        """Copy nodes (with their params) after the last of them in the chain."""
        new_ids: list[str] = []
        anchor = node_ids[-1] if node_ids else None
        for node_id in node_ids:
            node = self.project.graph.node(node_id)
            position = (node.position[0] + 30, node.position[1] + 30) if node.position else None
            anchor = self.add_node(node.spec, position=position, after=anchor,
                                   params=copy.deepcopy(node.params))
            new_ids.append(anchor)
        return new_ids

    def move_in_chain(self, node_id: str, step: int) -> bool:
        """Swap a node with its neighbour in a sequential chain (``step`` -1 up, +1 down)."""
        graph = self.project.graph
        neighbour = (graph.inputs_of(node_id) if step < 0 else graph.outputs_of(node_id))
        if len(neighbour) != 1:
            return False
        a, b = (neighbour[0], node_id) if step < 0 else (node_id, neighbour[0])
        if graph.outputs_of(a) != [b] or graph.inputs_of(b) != [a]:
            return False

        def change(p: Project) -> None:  # rewire ... -> a -> b -> ... into ... -> b -> a -> ...
            g = p.graph
            before, after_ = g.inputs_of(a), g.outputs_of(b)
            g.edges = [e for e in g.edges if a not in e and b not in e]
            g.edges += [(s, b) for s in before] + [(b, a)] + [(a, d) for d in after_]
            order = g.ids()
            ia, ib = order.index(a), order.index(b)
            g.nodes[ia], g.nodes[ib] = g.nodes[ib], g.nodes[ia]
            if g.nodes[ia].position and g.nodes[ib].position:
                g.nodes[ia].position, g.nodes[ib].position = g.nodes[ib].position, g.nodes[ia].position

        self.edit(f"Move {node_id} {'up' if step < 0 else 'down'}", change)
        return True

    def set_node_param(self, node_id: str, name: str, value: Any) -> None:
        def change(p: Project) -> None:
            node = p.graph.node(node_id)
            spec = self.registry.get(node.spec)
            param = spec.param(name) if spec is not None else None
            if param is not None and param.kind != "neuron" and value == param.default:
                node.params.pop(name, None)  # keep files short: only what differs
            else:
                node.params[name] = copy.deepcopy(value)

        self.edit(f"Set {node_id}.{name}", change, merge_key=f"param:{node_id}:{name}")

    def move_node(self, node_id: str, position: tuple[float, float]) -> None:
        def change(p: Project) -> None:
            p.graph.node(node_id).position = (float(position[0]), float(position[1]))

        self.edit(f"Move {node_id}", change)  # one step per drag: the editor commits on release

    def set_positions(self, positions: dict[str, tuple[float, float]], text: str = "Auto-layout") -> None:
        def change(p: Project) -> None:
            for node in p.graph.nodes:
                if node.id in positions:
                    node.position = positions[node.id]

        self.edit(text, change)

    # -- project settings ----------------------------------------------------------------------
    def set_setting(self, path: str, value: Any, text: str = "") -> None:
        """Set a dotted field of the project (``training.epochs``, ``dataset.params.path``)."""
        def change(p: Project) -> None:
            apply_setting(p, path, value)

        self.edit(text or f"Set {path}", change, merge_key=f"setting:{path}")

    def neuron_specs(self) -> list[NeuronSpec]:
        return list(self.registry.of_kind("neuron"))


def network_key(project: Project) -> tuple[Any, ...]:
    """What the built network and its weights depend on: nodes, their specs and params, the
    wiring, and what feeds the first node — the dataset and the encoder (an encoder may change
    the per-step shape, e.g. a signal of C channels becomes C inputs per step)."""
    graph = project.graph
    return (tuple((n.id, n.spec, repr(sorted(n.params.items()))) for n in graph.nodes),
            tuple(graph.edges), project.dataset.id, project.encoder.id,
            repr(sorted(project.encoder.params.items())))
