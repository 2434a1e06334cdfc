"""What compiling a graph learned: per-node shapes and errors (pure data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.core.model.errors import CompileError
from workbench.core.model.specs import Spec


@dataclass
class NodeInfo:
    """What compilation learned about one node."""

    spec: Spec | None = None
    params: dict[str, Any] = field(default_factory=dict)
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_shape: tuple[int, ...] | None = None
    error: str = ""


@dataclass
class CompileReport:
    """Per-node shapes and errors; ``ok`` when every node compiled."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    error: str = ""  # a graph-level problem (cycle, no nodes, several outputs)

    @property
    def ok(self) -> bool:
        return not self.error and all(not i.error for i in self.nodes.values())

    def first_error(self) -> CompileError | None:
        if self.error:
            return CompileError(self.error)
        for node_id, info in self.nodes.items():
            if info.error:
                return CompileError(info.error, node=node_id)
        return None
