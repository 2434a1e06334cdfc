"""What a STDBP step's backward pass touched, counted on firing times.

The counters of :mod:`wb_core.backward_metrics` read spike trains (a neuron fired where its
output is non-zero) and hook neuron modules; here a layer's output is a firing time, the neuron
fired where that time is finite, and the neurons live inside the ReL-PSP layers themselves. The
metrics mean the same as there, so runs of both rules compare:

- ``backward_events``: the (neuron, sample) pairs that fired, over all layers. STDBP works only
  on these: a silent neuron passes no gradient.
- ``dense_backward_events``: every (neuron, sample) pair, what a dense rule would touch.
- ``silent_fraction.<layer>``: the fraction of a layer's neurons (a conv: every channel at every
  position) that fired for no sample of the batch. A layer silent as a whole is logged as a
  warning once (a silent layer blocks all gradient below it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from wb_stdbp.layers import SpikeTimeLayer
from workbench.pluginhost import layer_name

log = logging.getLogger(__name__)


def time_layers(model: torch.nn.Module) -> dict[str, SpikeTimeLayer]:
    """Layer (graph node) name -> spike-time layer, in the model's order."""
    return {(layer_name(q).split(".")[0] or "model"): m for q, m in model.named_modules()
            if isinstance(m, SpikeTimeLayer)}


class _StepCounts:
    """One forward pass's counts, kept as tensors until :meth:`metrics` (one synchronisation)."""

    def __init__(self) -> None:
        self.fired: list[torch.Tensor] = []
        self.dense = 0
        self.silent: dict[str, torch.Tensor] = {}

    def hook(self, name: str):
        def count(module: torch.nn.Module, args: Any, out: torch.Tensor) -> None:
            fired = torch.isfinite(out.detach())
            self.fired.append(fired.sum())
            self.dense += fired.numel()
            # [T, B, neurons...] -> did each neuron fire for any sample?
            self.silent[name] = (~fired.flatten(0, 1).any(0)).to(torch.float64).mean()

        return count

    def metrics(self) -> dict[str, float]:
        names = list(self.silent)
        values = torch.stack([*(c.to(torch.float64) for c in self.fired),
                              *(self.silent[n] for n in names)]).tolist() if names else []
        out = {"backward_events": float(sum(values[:len(self.fired)])),
               "dense_backward_events": float(self.dense)}
        out.update({f"silent_fraction.{n}": float(v)
                    for n, v in zip(names, values[len(self.fired):], strict=True)})
        return out


class SpikeTimeMetrics:
    """``with metrics.recording() as step: out = model(x)`` counts that forward pass;
    :meth:`step_metrics` turns the counts into metrics and warns about wholly silent layers."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._silent_layers: set[str] = set()

    def reductions(self) -> dict[str, str]:
        keys = {"backward_events": "sum", "dense_backward_events": "sum"}
        keys.update({f"silent_fraction.{n}": "mean" for n in time_layers(self.model)})
        return keys

    @contextmanager
    def recording(self) -> Iterator[_StepCounts]:
        step = _StepCounts()
        handles = [module.register_forward_hook(step.hook(name))  # type: ignore[attr-defined]
                   for name, module in time_layers(self.model).items()]
        try:
            yield step
        finally:
            for handle in handles:
                handle.remove()

    def step_metrics(self, step: _StepCounts) -> dict[str, float]:
        metrics = step.metrics()
        for key, value in metrics.items():
            if not key.startswith("silent_fraction."):
                continue
            layer = key.removeprefix("silent_fraction.")
            if value >= 1.0 and layer not in self._silent_layers:
                log.warning("layer %s: no neuron fired for any sample of this batch, so STDBP "
                            "passes it and every layer before it no gradient (raise the "
                            "weights' mean, lower theta or raise the horizon)", layer)
                self._silent_layers.add(layer)
            elif value < 1.0:
                self._silent_layers.discard(layer)
        return metrics
