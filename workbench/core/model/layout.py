"""Automatic placement of a graph's nodes: layers by depth, top to bottom."""

from __future__ import annotations

from workbench.core.model.graph import Graph

ROW_HEIGHT = 110.0
COLUMN_WIDTH = 220.0


def layered_layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Each node one row below its deepest input; nodes sharing a row sit side by side,
    centred on x = 0. A chain becomes a straight column."""
    try:
        order = graph.topological_order()
    except Exception:  # a cycle: fall back to file order
        order = graph.ids()
    depth: dict[str, int] = {}
    for node_id in order:
        inputs = [depth[s] for s in graph.inputs_of(node_id) if s in depth]
        depth[node_id] = max(inputs) + 1 if inputs else 0
    rows: dict[int, list[str]] = {}
    for node_id in order:
        rows.setdefault(depth[node_id], []).append(node_id)
    positions = {}
    for row, ids in rows.items():
        for i, node_id in enumerate(ids):
            positions[node_id] = ((i - (len(ids) - 1) / 2) * COLUMN_WIDTH, row * ROW_HEIGHT)
    return positions
