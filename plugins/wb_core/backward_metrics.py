"""What a training step's backward pass touched, per step, for any learning rule.

A learning rule reports these as extra metrics of ``train_step`` (docs/event_learning.md):

- ``backward_events``: the (neuron, time step, sample) pairs the backward pass evaluates a local
  spike derivative at. A surrogate-gradient neuron evaluates one at every pair; a neuron whose
  backward is event-driven (it sets ``event_driven_backward = True``) only where it spiked.
  A layer of single-spike neurons whose output is firing times (``emits_spike_times = True``,
  time-to-first-spike) is event-driven by nature: a neuron fired where its time is finite
  (``inf`` is silence, 0 a spike), and only those pairs carry gradient.
- ``dense_backward_events``: every pair, T x neurons x samples: what BPTT touches.
- ``silent_fraction.<layer>``: the fraction of a layer's neurons that never fired in the batch.
  An event-driven rule gives them no gradient at all, its known weak spot; a layer that is
  silent as a whole is logged as a warning.
- ``grad_norm.<layer>``: the L2 norm of the gradient of a layer's parameters.

A layer is the graph node a module belongs to (``layers.hidden1.neuron`` -> ``hidden1``); when
a node holds several neuron modules, each is its own layer (``block1.attn.neuron_q``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from workbench.pluginhost import emits_spike_times, is_neuron_module, layer_name

log = logging.getLogger(__name__)


def _node(qualified: str) -> str:
    """``layers.hidden1.fc`` -> ``hidden1``; a module outside a compiled graph keeps its path
    (the model itself is ``model``)."""
    return layer_name(qualified).split(".")[0] or "model"


def neuron_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Layer name -> neuron module (or layer of spike-time neurons), in the model's order."""
    found = [(q, m) for q, m in model.named_modules()
             if is_neuron_module(m) or emits_spike_times(m)]
    per_node: dict[str, int] = {}
    for qualified, _ in found:
        per_node[_node(qualified)] = per_node.get(_node(qualified), 0) + 1
    return {(_node(q) if per_node[_node(q)] == 1 else layer_name(q)): m for q, m in found}


def parameter_layers(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Layer (graph node) name -> its trainable parameters, in the model's order."""
    layers: dict[str, list[torch.nn.Parameter]] = {}
    for qualified, param in model.named_parameters():
        if param.requires_grad:
            module_path = qualified.rpartition(".")[0]
            layers.setdefault(_node(module_path), []).append(param)
    return layers


class _StepCounts:
    """The spike counts of one forward pass, kept as tensors until :meth:`metrics` (one device
    synchronisation per step instead of one per layer)."""

    def __init__(self) -> None:
        self.spikes: list[torch.Tensor] = []  # the event-driven neurons' spike counts
        self.dense_events = 0  # pairs of the neurons with a surrogate (dense) backward
        self.dense = 0
        self.silent: dict[str, torch.Tensor] = {}
        self.event_driven: set[str] = set()  # the layers whose backward follows the spikes

    def hook(self, layer: str, module: torch.nn.Module):
        times = emits_spike_times(module)
        non_negative = getattr(module, "non_negative_spikes", False) is True
        event_driven = times or bool(getattr(module, "event_driven_backward", False))
        if event_driven:
            self.event_driven.add(layer)

        def count(_module: torch.nn.Module, _args: Any, out: Any) -> None:
            out = (out[0] if isinstance(out, tuple) else out).detach()
            flat = out.flatten(0, 1)  # [T*B, neurons...]
            self.dense += out.numel()
            if event_driven:  # where each neuron fired: a time is finite, a spike non-zero
                self.spikes.append((torch.isfinite(flat) if times else flat != 0).sum())
            else:
                self.dense_events += out.numel()
            # one value per neuron: did it fire at any step, for any sample of the batch?
            if times:
                silent = ~torch.isfinite(flat).any(0)
            elif non_negative:  # 0/1 spikes: silent where the largest is 0
                silent = flat.amax(0) == 0
            else:
                # spikes may be ±1: silent where both extremes are 0. Two plain reductions
                # over the batch cost a quarter of a `!= 0` mask and its any(), on every step
                silent = (flat.amax(0) == 0) & (flat.amin(0) == 0)
            self.silent[layer] = silent.to(torch.float64).mean()

        return count

    def metrics(self) -> dict[str, float]:
        names = list(self.silent)
        counts = [c.to(torch.float64) for c in self.spikes]
        values = torch.stack([*counts, *(self.silent[n] for n in names)]).tolist() \
            if names else []
        out = {"backward_events": float(self.dense_events + sum(values[:len(counts)])),
               "dense_backward_events": float(self.dense)}
        out.update({f"silent_fraction.{n}": float(v)
                    for n, v in zip(names, values[len(counts):], strict=True)})
        return out


class BackwardMetrics:
    """Counts a training step's backward events, silent neurons and gradient norms.

    ``with metrics.recording() as step: out = model(x)`` hooks every neuron module for that
    forward pass only; ``step.metrics()`` gives the counts and :meth:`grad_norms` (called after
    ``loss.backward()``, before any clipping) the gradient norms. ``reductions`` is what the
    trainer's ``metric_reductions`` should say for them.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._warned_silent: set[str] = set()

    def reductions(self) -> dict[str, str]:
        keys = {"backward_events": "sum", "dense_backward_events": "sum"}
        keys.update({f"silent_fraction.{n}": "mean" for n in neuron_layers(self.model)})
        keys.update({f"grad_norm.{n}": "mean" for n in parameter_layers(self.model)})
        return keys

    @contextmanager
    def recording(self) -> Iterator[_StepCounts]:
        step = _StepCounts()
        handles = [module.register_forward_hook(step.hook(layer, module))
                   for layer, module in neuron_layers(self.model).items()]
        try:
            yield step
        finally:
            for handle in handles:
                handle.remove()

    def step_metrics(self, step: _StepCounts) -> dict[str, float]:
        """``step``'s counts. The first batch in which a layer is wholly silent is logged as a
        warning (once per layer and trainer: a layer on the edge of firing would otherwise
        warn every other batch) when its neurons' backward is event-driven: such a layer gets
        no gradient. (A surrogate gradient reaches a silent layer: no warning then.)"""
        metrics = step.metrics()
        for key, value in metrics.items():
            layer = key.removeprefix("silent_fraction.")
            if (layer != key and value >= 1.0 and layer in step.event_driven
                    and layer not in self._warned_silent):
                self._warned_silent.add(layer)
                log.warning("layer %s: no neuron fired in a whole training batch; an "
                            "event-driven rule passes it no gradient (lower its threshold or "
                            "raise its input)", layer)
        return metrics

    def grad_norms(self) -> dict[str, float]:
        """``grad_norm.<layer>``: the L2 norm of each layer's parameter gradients (0.0 for a
        layer that received none)."""
        layers = parameter_layers(self.model)
        norms = []
        for params in layers.values():
            grads = [torch.linalg.vector_norm(p.grad.detach().float())
                     for p in params if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack(grads)) if grads
                         else torch.zeros(()))
        if not norms:
            return {}
        values = torch.stack(norms).tolist()
        return {f"grad_norm.{name}": float(v) for name, v in zip(layers, values, strict=True)}
