"""Trained firing-time network -> :class:`~wb_sim.ttfs_ir.TTFSNetwork` (arithmetic in
``ttfs_ir.py``).

The network is a chain of layers that declare a rectified-linear-PSP neuron
(``firing_time_neuron``, docs/plugins.md), with flattens and dropouts between them; the last
layer is the read-out by the earliest spike. Weights are quantised per output channel,
symmetric (or taken as they are when a compression quantised them); each neuron's threshold is
rounded up once, so the integer neuron compares exactly what the float one would with the
rounded weights. Input and firing times live on a grid of ``2**-time_bits``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from wb_sim.convert import chain_issues, int_weight, plain_conv, signed_bits
from wb_sim.ttfs_ir import TTFSLayer, TTFSNetwork
from workbench.pluginhost import (
    RELPSP,
    CompiledNetwork,
    DeployError,
    FitIssue,
    emits_spike_times,
    firing_time_neuron,
)

#: products and sums stay exact in int64 (and in the float64 of a dense reference) below this
EXACT_BOUND = 2 ** 52


def is_firing_time_network(model: CompiledNetwork) -> bool:
    """Whether any layer passes firing times: then the whole network is time-to-first-spike."""
    return any(emits_spike_times(m) or callable(getattr(m, "spike_events", None))
               for node in model.order for m in model.layers[node].modules())


def _steps(model: CompiledNetwork) -> tuple[list[tuple[str, nn.Module]], list[FitIssue]]:
    """The firing-time layers in order, and what has no integer form (each naming its node)."""
    issues = chain_issues(model)
    if issues:
        return [], issues
    steps: list[tuple[str, nn.Module]] = []
    horizons: dict[float, str] = {}
    for node in model.order:
        module = model.layers[node]
        if isinstance(module, (nn.Flatten, nn.Dropout)):
            continue  # identity at inference; a flatten keeps the times in C, H, W order
        neuron = firing_time_neuron(module)
        if neuron is None:
            what = ("passes firing times but does not declare its neuron (firing_time_neuron)"
                    if emits_spike_times(module) else
                    f"{type(module).__name__} has no form in the integer firing-time network")
            issues.append(FitIssue(node, f"{what}; it knows layers of rectified-linear-PSP "
                                         "neurons (wb_stdbp.relpsp_linear, relpsp_conv), "
                                         "flatten and dropout"))
            continue
        if neuron.kernel != RELPSP:
            issues.append(FitIssue(node, f"the {neuron.kernel} PSP has no integer form: only "
                                         "the rectified linear PSP grows by a whole number of "
                                         "weight units per tick; use kernel = relpsp"))
            continue
        if isinstance(module, nn.Conv2d) and not plain_conv(module):
            issues.append(FitIssue(node, "only square convolutions with equal strides and "
                                         "padding, no dilation and no groups are supported"))
            continue
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or getattr(module, "bias",
                                                                       None) is not None:
            issues.append(FitIssue(node, "a firing-time layer must be a linear or conv layer "
                                         "without bias"))
            continue
        horizons.setdefault(float(neuron.horizon), node)
        steps.append((node, module))
    if len(horizons) > 1:
        first, *others = horizons.items()
        issues.append(FitIssue(others[0][1], f"horizon {others[0][0]:g} differs from "
                                             f"{first[0]:g} of {first[1]!r}; the integer "
                                             "network has one horizon (one 'silent' time) for "
                                             "every layer"))
    if not issues and model.order and model.order[-1] != (steps[-1][0] if steps else ""):
        issues.append(FitIssue(model.order[-1], "the network must end with a firing-time layer, "
                                                "whose earliest spike is the prediction"))
    return steps, issues


def check_ttfs(model: CompiledNetwork) -> list[FitIssue]:
    """What in a firing-time ``model`` has no integer form (empty: it converts)."""
    return _steps(model)[1]


def to_ttfs(model: CompiledNetwork, *, time_bits: int = 8, weight_bits: int = 8,
            name: str = "") -> TTFSNetwork:
    """Convert a trained firing-time network to integers; raises :class:`DeployError` naming
    the node for anything :func:`check_ttfs` reports."""
    if not 0 <= time_bits <= 24:
        raise DeployError(f"time_bits must be in 0..24, got {time_bits}", where="time_bits")
    if not 2 <= weight_bits <= 32:
        raise DeployError(f"weight_bits must be in 2..32, got {weight_bits}",
                          where="weight_bits")
    steps, issues = _steps(model)
    if issues:
        first = issues[0]
        raise DeployError(f"cannot convert to integers: {first.message}",
                          where=f"node {first.node!r}" if first.node else "network")
    if not steps:
        raise DeployError("the network has no firing-time layer", where="network")
    horizon_time = float(firing_time_neuron(steps[0][1]).horizon)
    horizon = math.floor(horizon_time * 2 ** time_bits)
    notes = [(f"firing times on a grid of 2^-{time_bits} time units: the horizon "
              f"{horizon_time:g} is tick {horizon}; input times rounded to the nearest tick")]
    layers = []
    with torch.no_grad():
        for node, module in steps:
            layers.append(_layer(model, node, module, time_bits, weight_bits, notes))
    for layer in layers:
        reach = int(np.abs(layer.weight.reshape(layer.weight.shape[0], -1)).sum(axis=1).max())
        if reach * (horizon + 1) >= EXACT_BOUND:
            raise DeployError(f"the potential can reach {reach} x {horizon + 1}, beyond exact "
                              "integers; lower time_bits or weight_bits",
                              where=f"node {layer.name!r}")
    return TTFSNetwork(layers, int(time_bits), horizon, name, notes)


def _layer(model: CompiledNetwork, node: str, module: nn.Module, time_bits: int,
           weight_bits: int, notes: list[str]) -> TTFSLayer:
    info = model.report.nodes[node]
    q, s = int_weight(module, weight_bits, node, notes, per_tensor=False)
    theta = float(firing_time_neuron(module).theta)
    tick = 2.0 ** -time_bits
    live = s > 0
    # V_float = s * tick * V_int >= theta  <=>  V_int >= theta / (s * tick): integers compare
    # against its ceiling exactly. A channel without weights never fires (V stays 0 < 1).
    threshold = np.where(live, np.ceil(theta / (np.where(live, s, 1.0) * tick)), 1.0)
    if not live.all():
        notes.append(f"{node}: {int((~live).sum())} neuron(s) with all-zero weights never fire")
    in_shape = tuple(int(v) for v in info.in_shapes[0])
    out_shape = tuple(int(v) for v in (info.out_shape or ()))
    stride = padding = 0
    if isinstance(module, nn.Conv2d):
        kind, stride, padding = "conv", int(module.stride[0]), int(module.padding[0])
    else:
        kind, in_shape, stride = "linear", (int(np.prod(in_shape)),), 1
    return TTFSLayer(node, kind, q, signed_bits(q), threshold.astype(np.int64), in_shape,
                     out_shape, stride, padding)


def input_times(net: TTFSNetwork, encode: Any, x: np.ndarray) -> np.ndarray:
    """The encoder's firing times for the real-valued samples ``x[B, ...]``, on the network's
    tick grid: int64 ``[B, D]`` (made on the host, as the encoder's spikes are for a spike
    train network)."""
    with torch.no_grad():
        times = encode(torch.from_numpy(np.ascontiguousarray(x)))
    t = times.detach().cpu().double().numpy()
    if t.ndim > 1 and t.shape[:2] == (1, len(x)):
        t = t[0]  # [1, B, ...]: the times are one pass, not steps
    return net.quantize_times(t.reshape(len(x), -1))
