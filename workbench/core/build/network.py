"""The torch module a graph compiles to."""

from __future__ import annotations

from typing import Any

import torch

from workbench.core.build.report import CompileReport


class CompiledNetwork(torch.nn.Module):
    """Runs the graph's nodes in topological order on a time-major ``[T, B, ...]`` input.

    ``layers[node_id]`` is each node's module, so parameters are named ``<node>.<param>`` in
    the state dict and in ``weights.safetensors``. ``last_maps`` holds the attention maps of
    the last forward for blocks that return ``(out, maps)``.
    """

    def __init__(self, modules: dict[str, torch.nn.Module], order: list[str],
                 inputs: dict[str, list[str]], report: CompileReport) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleDict(modules)
        self.order = list(order)
        self.inputs = dict(inputs)
        self.report = report
        self.output_node = order[-1] if order else ""
        sinks = [n for n in order if not any(n in v for v in inputs.values())]
        if sinks:
            self.output_node = sinks[0]
        self.last_maps: dict[str, Any] = {}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.report.nodes[self.order[0]].in_shapes[0]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.report.nodes[self.output_node].out_shape or ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {}
        for node_id in self.order:
            args = [values[s] for s in self.inputs[node_id]] or [x]
            out = self.layers[node_id](*args)
            if isinstance(out, tuple):
                out, maps = out
                if maps:  # empty unless a probe switched the module's record_maps on
                    self.last_maps[node_id] = maps
            values[node_id] = out
        return values[self.output_node]
