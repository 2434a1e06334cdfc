"""Our torch integer inference: the arithmetic of ``ir.py`` with dense torch ops.

It shares no code with :mod:`wb_sim.simulate` on purpose: the simulator scatters events, this
runs every layer as one dense ``linear`` / ``conv2d`` per step, so agreeing bit for bit checks
both. The operation counts are derived the dense way too: active inputs times a structural
fan-out map (how many output neurons each input position reaches).

Why float64 for the products: torch's CPU ``matmul`` and ``conv2d`` have no int64 kernels. The
operands are integers and every partial sum stays below 2**53 (checked), so float64 represents
them all exactly and the result, cast back to int64, is the exact integer sum whatever order the
kernel adds in. Everything after the accumulation (shift, bias, leak, threshold, reset) runs on
int64 tensors, where ``>>`` is an arithmetic shift as in numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wb_sim.ir import IntegerNetwork, IntLayer
from wb_sim.simulate import SimResult, as_int_input, check_network
from workbench.pluginhost import DeployError

_EXACT = 2.0 ** 53


def _dense(layer: IntLayer, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The exact integer accumulation ``W x`` of one step, as int64."""
    if layer.kind == "linear":
        out = F.linear(x.reshape(x.shape[0], -1), weight)
    else:
        out = F.conv2d(x.reshape((x.shape[0],) + tuple(layer.in_shape)), weight,
                       stride=layer.stride, padding=layer.padding)
    return torch.round(out).to(torch.int64)


def _fan_out(layer: IntLayer) -> torch.Tensor:
    """Synapses each input entry drives (float64, shaped like one input)."""
    if layer.kind == "linear":
        return torch.full((int(np.prod(layer.in_shape)),), float(layer.weight.shape[0]),
                          dtype=torch.float64)
    c_out, c_in, k, _ = layer.weight.shape
    _, h, w = layer.in_shape
    _, h_out, w_out = layer.out_shape
    s, p = layer.stride, layer.padding
    # conv_transpose of an all-ones output with an all-ones kernel counts, per input position,
    # the (output position, kernel tap) pairs that read it; output_padding restores the rows
    # and columns a strided conv never reaches.
    pad_h, pad_w = h - ((h_out - 1) * s - 2 * p + k), w - ((w_out - 1) * s - 2 * p + k)
    taps = F.conv_transpose2d(torch.ones(1, 1, h_out, w_out, dtype=torch.float64),
                              torch.ones(1, 1, k, k, dtype=torch.float64), stride=s, padding=p,
                              output_padding=(pad_h, pad_w))
    return (taps[0, 0] * c_out).expand(c_in, h, w)


def _requantize(v: torch.Tensor, bits: int, shift: int) -> torch.Tensor:
    """The stored membrane code of ``ir.requantize``, by another route: torch's ``round``
    (half to even) on exact float64 quotients (|v| < 2**53, checked by the accumulator bound)."""
    top = (1 << (bits - 1)) - 1
    code = torch.round(v.to(torch.float64) / float(1 << shift)).clamp(-top, top)
    return code.to(torch.int64) * (1 << shift)


def _check_exact(layer: IntLayer, peak_input: int) -> None:
    worst = np.abs(layer.weight.reshape(layer.weight.shape[0], -1)).sum(axis=1).max(initial=0)
    if float(worst) * max(peak_input, 1) >= _EXACT:
        raise DeployError("the accumulator can exceed 2**53, beyond what the float64 reference "
                          "represents exactly; use fewer weight or input bits",
                          where=f"node {layer.name!r}")


def torch_integer_forward(net: IntegerNetwork, x_int: Any) -> SimResult:
    """Run ``net`` on ``x_int[B, ...]`` with dense torch ops; same :class:`SimResult`."""
    check_network(net)
    x_np = as_int_input(net, x_int)
    batch = x_np.shape[0]
    x = torch.from_numpy(x_np)
    weights, biases, thresholds = [], [], []
    for index, layer in enumerate(net.layers):
        _check_exact(layer, int(np.abs(x_np).max(initial=0)) if index == 0 else 1)
        weights.append(torch.from_numpy(layer.weight).to(torch.float64))
        extra = (1,) * (len(layer.out_shape) - 1)
        biases.append(torch.from_numpy(layer.bias).to(torch.int64).reshape((-1,) + extra))
        thresholds.append(None if layer.neuron is None else
                          torch.from_numpy(layer.neuron.threshold).to(torch.int64)
                          .reshape((-1,) + extra))
    first = net.layers[0]
    spiking_input = net.input_kind == "spikes"
    if spiking_input:  # spikes made on the host: layer 0 accumulates them like any spike
        dense_macs = torch.zeros(batch, dtype=torch.float64)
    else:
        first_acc = _dense(first, x.to(torch.float64), weights[0])
        fan_in_first = _fan_out(first).reshape(-1)
        dense_macs = ((x.reshape(batch, -1) != 0).to(torch.float64) * fan_in_first).sum(1)
    fan_outs = [_fan_out(layer).reshape(-1) for layer in net.layers]
    states = [torch.zeros((batch,) + tuple(layer.out_shape), dtype=torch.int64)
              if layer.neuron is not None else None for layer in net.layers]
    counts = {layer.name: torch.zeros(batch, dtype=torch.int64)
              for layer in net.layers if layer.neuron is not None}
    logits = torch.zeros(batch, net.n_classes, dtype=torch.int64)
    readout_membrane = torch.zeros_like(logits)  # an integrating read-out's running sum
    events = torch.zeros(batch, dtype=torch.float64)
    for t in range(net.time_steps):
        spikes_in = x[:, t].to(torch.float64) if spiking_input else None
        for index, layer in enumerate(net.layers):
            if index == 0 and not spiking_input:
                acc = first_acc
            else:
                acc = _dense(layer, spikes_in, weights[index])
                events += (spikes_in.reshape(batch, -1).abs() * fan_outs[index]).sum(1)
            current = torch.bitwise_left_shift(acc, layer.shift) + biases[index]
            if layer.neuron is None:
                if layer.integrate:
                    readout_membrane = readout_membrane + current
                    current = readout_membrane
                logits += current
                continue
            v = states[index]
            h = v + current if layer.neuron.leak_shift is None else \
                v - torch.bitwise_right_shift(v, layer.neuron.leak_shift) + current
            spikes = (h >= thresholds[index]).to(torch.int64)
            if layer.neuron.ternary:
                spikes = spikes - (h <= -thresholds[index]).to(torch.int64)
            fired = spikes != 0
            if layer.neuron.reset == "hard":
                states[index] = torch.where(fired, torch.zeros_like(h), h)
            else:
                states[index] = h - thresholds[index] * spikes
            if layer.neuron.membrane_bits is not None:
                states[index] = _requantize(states[index], layer.neuron.membrane_bits,
                                            layer.neuron.membrane_shift)
            counts[layer.name] += fired.reshape(batch, -1).sum(1)
            spikes_in = spikes.to(torch.float64)
            if layer.pool:
                spikes_in = F.max_pool2d(spikes_in, layer.pool)
    return SimResult(
        predictions=torch.argmax(logits, dim=1).numpy().astype(np.int64),
        logits=logits.numpy(), spike_counts={k: v.numpy() for k, v in counts.items()},
        synaptic_events=events.round().to(torch.int64).numpy(),
        dense_macs=dense_macs.round().to(torch.int64).numpy(),
        neuron_updates=np.full(batch, net.time_steps * sum(
            int(np.prod(layer.out_shape)) for layer in net.layers if layer.neuron is not None),
            dtype=np.int64))
