"""Binarising the weight layers of *any* compiled network (the ``binarize`` method).

:func:`plan` runs one batch through the network (the core's ``trace_layers``) and records, in
call order, every ``Conv1d``/``Conv2d``/``Linear`` it uses; it then picks the layers to binarise:

- kept in full precision: the **first** layer (every layer fed the network input itself, or,
  when none is, the first one called), the **last** one called (the classifier), and whatever
  a node declares through a ``full_precision_layers()`` method (the BESTformer's first
  tokenizer conv and both heads);
- binarised: all others. A layer the batch never reached is left alone (and reported).

A layer directly followed by a batch norm is binarised without scale (as in BESTformer: the BN
absorbs it). A layer with no batch norm after it (an MLP's hidden layer) would feed ``±1``
weighted sums straight into a neuron, so it gets the XNOR-Net per-channel scale
``mean |W[c]|`` [R, our reading for networks outside the paper], stored as the
``QuantizedTensor``'s per-channel scale.

:func:`apply` switches fake-quant on — a BESTformer layer through its own ``binary`` switch,
any other layer through a ``torch.nn.utils.parametrize`` parametrisation of its weight (the
straight-through estimator of :func:`~wb_bestformer.binary.binarize`) — and :func:`freeze`
removes the parametrisations and records the ``±1`` (times scale) weights as 1-bit
:class:`~workbench.core.quantized.QuantizedTensor`\\ s. Parameter names never change, so the
frozen network loads into the graph it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from wb_bestformer.binary import BINARY_LAYERS, binarize, binary_quant, channel_scale
from workbench.pluginhost import attach, detach_quant, layer_name, trace_layers


@dataclass
class Plan:
    """What :func:`plan` found: qualified module names, in call order."""

    modules: dict[str, nn.Module]
    order: list[str]
    binarize: list[str] = field(default_factory=list)
    full_precision: list[str] = field(default_factory=list)
    scaled: list[str] = field(default_factory=list)  # no batch norm follows
    unused: list[str] = field(default_factory=list)

    def report(self) -> dict:
        return {"binarized_layers": [layer_name(n) for n in self.binarize],
                "full_precision_layers": [layer_name(n) for n in self.full_precision],
                "scaled_layers": [layer_name(n) for n in self.scaled],
                "unused_layers": [layer_name(n) for n in self.unused]}


class BinaryWeight(nn.Module):
    """Parametrisation ``W -> binarize(W)`` (times ``mean |W[c]|`` when ``scaled``)."""

    def __init__(self, scaled: bool) -> None:
        super().__init__()
        self.scaled = scaled

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        b = binarize(weight)
        if self.scaled:
            b = b * channel_scale(weight).view(-1, *([1] * (weight.dim() - 1)))
        return b


def plan(model: nn.Module, x: torch.Tensor) -> Plan:
    """Trace one forward of ``model`` on ``x`` and decide which layers to binarise."""
    modules = dict(model.named_modules())
    trace = trace_layers(model, x)
    calls, weight_layers = trace.calls, set(trace.order)
    follows_bn: dict[str, bool] = {}
    for i, name in enumerate(calls):
        if name in weight_layers and name not in follows_bn:
            nxt = modules[calls[i + 1]] if i + 1 < len(calls) else None
            follows_bn[name] = isinstance(nxt, nn.modules.batchnorm._BatchNorm)
    result = Plan(modules, list(trace.order), unused=list(trace.unused))
    keep = set(trace.ends)
    declared = {id(layer) for m in modules.values()
                if callable(getattr(m, "full_precision_layers", None))
                for layer in m.full_precision_layers()}
    keep |= {n for n in trace.order if id(modules[n]) in declared}
    for name in trace.order:
        if name in keep:
            result.full_precision.append(name)
        else:
            result.binarize.append(name)
            if not follows_bn[name] and not isinstance(modules[name], BINARY_LAYERS):
                result.scaled.append(name)
    return result


def apply(p: Plan) -> None:
    """Switch fake-quant on for every layer ``p`` binarises."""
    scaled = set(p.scaled)
    for name in p.binarize:
        module = p.modules[name]
        detach_quant(module)  # an earlier quantisation no longer describes the weight
        if isinstance(module, BINARY_LAYERS):
            module.set_binary(True)
        else:
            parametrize.register_parametrization(module, "weight", BinaryWeight(name in scaled))


def freeze(p: Plan) -> None:
    """Fix every binarised layer at its ``±1`` (times scale) weights, recorded as 1-bit."""
    scaled = set(p.scaled)
    for name in p.binarize:
        module = p.modules[name]
        if parametrize.is_parametrized(module, "weight"):
            latent = module.parametrizations.weight.original.detach().clone()
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        else:
            latent = module.weight.detach().clone()
        scale = channel_scale(latent) if name in scaled else None
        if isinstance(module, BINARY_LAYERS):
            module.binary = True
        if isinstance(module, BINARY_LAYERS) and module.frozen:
            continue
        attach(module, binary_quant(latent, scale))
