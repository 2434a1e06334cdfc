"""The network graph: nodes with a spec id and parameters, and directed edges.

Pure data, no torch. Sequential chains are the common case; a node with two incoming edges
(a residual add) makes branches. The order of a node's incoming edges is the order of its
inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.core.model.errors import CompileError

_NODE_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Node:
    """One layer or block of the network.

    ``spec`` is the contribution id (``"wb_core.linear"``); ``params`` holds only what was set,
    so a spec's new defaults reach old projects. ``placeholder`` marks a node whose plugin is
    not installed: it keeps its raw params so saving the project loses nothing.
    """

    id: str
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    spec_version: int = 1
    position: tuple[float, float] | None = None
    placeholder: bool = False

    def copy(self) -> Node:
        return Node(self.id, self.spec, dict(self.params), self.spec_version, self.position,
                    self.placeholder)


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def inputs_of(self, node_id: str) -> list[str]:
        return [src for src, dst in self.edges if dst == node_id]

    def outputs_of(self, node_id: str) -> list[str]:
        return [dst for src, dst in self.edges if src == node_id]

    def sources(self) -> list[str]:
        return [n.id for n in self.nodes if not self.inputs_of(n.id)]

    def sinks(self) -> list[str]:
        return [n.id for n in self.nodes if not self.outputs_of(n.id)]

    def copy(self) -> Graph:
        return Graph([n.copy() for n in self.nodes], list(self.edges))

    def unique_id(self, stem: str) -> str:
        """A node id not yet used, made from ``stem`` (``conv`` -> ``conv3``)."""
        stem = re.sub(r"\W", "_", stem) or "node"
        taken = set(self.ids())
        i = 1
        while f"{stem}{i}" in taken:
            i += 1
        return f"{stem}{i}"

    def check_structure(self) -> None:
        """Raise :class:`CompileError` for bad ids, dangling edges or cycles."""
        seen: set[str] = set()
        for n in self.nodes:
            if not _NODE_ID_RE.match(n.id):
                raise CompileError("ids are letters, digits and '_' and do not start with a digit",
                                   node=n.id)
            if n.id in seen:
                raise CompileError("two nodes share this id", node=n.id)
            seen.add(n.id)
        for src, dst in self.edges:
            for end in (src, dst):
                if end not in seen:
                    raise CompileError(f"edge {src} -> {dst} names a node that does not exist",
                                       node=end)
        if not self.nodes:
            raise CompileError("the network has no nodes; add a layer from the palette")
        self.topological_order()

    def topological_order(self) -> list[str]:
        """Node ids so that every node comes after its inputs; ties keep the file order."""
        indegree = {n.id: 0 for n in self.nodes}
        for _, dst in self.edges:
            indegree[dst] += 1
        order: list[str] = []
        ready = [n.id for n in self.nodes if indegree[n.id] == 0]
        while ready:
            current = ready.pop(0)
            order.append(current)
            for dst in self.outputs_of(current):
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
        if len(order) != len(self.nodes):
            stuck = next(n for n in self.ids() if n not in order)
            raise CompileError("the graph has a cycle through this node", node=stuck)
        return order

    @classmethod
    def chain(cls, nodes: Iterable[Node]) -> Graph:
        """A sequential network: each node feeds the next."""
        nodes = list(nodes)
        return cls(nodes, [(a.id, b.id) for a, b in zip(nodes, nodes[1:])])
