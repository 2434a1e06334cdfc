"""Event trace and the analytic cycle model of the spiking core.

:func:`trace` runs the integer network (the arithmetic of ``wb_sim/ir.py``, with dense numpy
ops, sharing no code with ``wb_sim``: ternary spikes, membrane codes and spike-train inputs
included) and keeps what the core's timing depends on: the input events of each layer at each
time step, and for conv layers where they are. :func:`cycles_for`
turns them into the core's cycle count per sample; the Amaranth simulation counts the same
cycles, and ``tests/plugins/test_fpga.py`` checks they agree.

The cycles of one pass of one layer — the arithmetic the plan also sizes its cycle counter
with — are in :mod:`wb_fpga.timing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from wb_sim.ir import IntegerNetwork, IntLayer

from wb_fpga.plan import plan_core
from wb_fpga.timing import CACHED_PASS_EXTRA, conv_pass_cycles, pass_cycles


@dataclass
class Trace:
    """What the core computes for a batch, and the events its timing depends on."""

    logits: np.ndarray  # int64 [B, C]
    predictions: np.ndarray  # int64 [B]
    spike_counts: dict[str, np.ndarray]  # neuron layer name -> int64 [B], summed over T
    events: list[np.ndarray]  # per layer: int64 [B, T] input events (layer 0: non-zero inputs)
    # per layer and step, the input activity bool [B, *in_shape] (where the events are)
    inputs: list[list[np.ndarray]]


def _conv(x: np.ndarray, layer: IntLayer) -> np.ndarray:
    """Dense integer convolution ``[B, C, H, W] -> [B, O, H_out, W_out]``, tap by tap."""
    w = np.asarray(layer.weight, dtype=np.int64)
    k, s, p = int(w.shape[2]), int(layer.stride), int(layer.padding)
    _, h_out, w_out = layer.out_shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out), dtype=np.int64)
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, :, dy:dy + s * (h_out - 1) + 1:s, dx:dx + s * (w_out - 1) + 1:s]
            out += np.tensordot(patch, w[:, :, dy, dx], axes=([1], [1])).transpose(0, 3, 1, 2)
    return out


def _or_pool(spikes: np.ndarray, pool: int) -> np.ndarray:
    b, c, h, w = spikes.shape
    ho, wo = h // pool, w // pool
    return spikes[:, :, : ho * pool, : wo * pool].reshape(b, c, ho, pool, wo, pool).any((3, 5))


def _membrane_code_grid(v: np.ndarray, bits: int, shift: int) -> np.ndarray:
    """The stored membrane: ``clip(rint(v / 2**shift), ±(2**(bits-1) - 1)) * 2**shift``.
    ``np.rint`` rounds half to even; ``v / 2**shift`` is exact in float64 below 2**53."""
    top = (1 << (bits - 1)) - 1
    return np.clip(np.rint(v / float(1 << shift)), -top, top).astype(np.int64) << shift


def trace(net: IntegerNetwork, x_int: np.ndarray) -> Trace:
    """Run the network on ``x_int[B, ...]`` (a spike-train network: ``x[B, T, ...]``) and
    record the events of every layer and step."""
    B, T = len(x_int), int(net.time_steps)
    spike_input = net.input_kind == "spikes"
    steps = (T,) if spike_input else ()
    x = np.asarray(x_int, dtype=np.int64).reshape((B,) + steps + tuple(net.input_shape))
    states = [np.zeros((B,) + tuple(layer.out_shape), dtype=np.int64) for layer in net.layers]
    logits = np.zeros((B, net.n_classes), dtype=np.int64)
    events = [np.zeros((B, T), dtype=np.int64) for _ in net.layers]
    inputs: list[list[np.ndarray]] = [[] for _ in net.layers]
    counts = {layer.name: np.zeros(B, dtype=np.int64) for layer in net.layers
              if layer.neuron is not None}

    def accumulate(layer: IntLayer, signal: np.ndarray) -> np.ndarray:
        if layer.kind == "conv":
            return _conv(signal.reshape((B,) + tuple(layer.in_shape)), layer)
        return signal.reshape(B, -1) @ np.asarray(layer.weight, dtype=np.int64).T

    # a static input never changes: layer 0's sums are the same at every step
    first = None if spike_input else accumulate(net.layers[0], x)
    for t in range(T):
        signal = x[:, t] if spike_input else x
        for li, layer in enumerate(net.layers):
            active = signal.reshape((B,) + tuple(layer.in_shape)) != 0
            inputs[li].append(active)
            events[li][:, t] = active.reshape(B, -1).sum(axis=1)
            acc = first if li == 0 and first is not None else accumulate(layer, signal)
            extra = (1,) * (acc.ndim - 2)
            current = (acc << int(layer.shift)) + np.asarray(layer.bias, dtype=np.int64
                                                             ).reshape((-1,) + extra)
            neuron = layer.neuron
            if neuron is None:
                logits += current
                continue
            v = states[li]
            h = v + current if neuron.leak_shift is None else v - (v >> neuron.leak_shift) \
                + current
            thr = np.asarray(neuron.threshold, dtype=np.int64).reshape((-1,) + extra)
            spikes = (h >= thr).astype(np.int64)
            if neuron.ternary:
                spikes[h <= -thr] = -1  # thresholds >= 1: never both
            if neuron.reset == "soft":
                v = h - thr * spikes
            else:
                v = np.where(spikes != 0, 0, h)
            if neuron.membrane_bits is not None:
                v = _membrane_code_grid(v, int(neuron.membrane_bits), int(neuron.membrane_shift))
            states[li] = v
            counts[layer.name] += (spikes != 0).reshape(B, -1).sum(axis=1)
            if layer.pool:
                spikes = _or_pool(spikes != 0, int(layer.pool)).astype(np.int64)
            signal = spikes
    return Trace(logits, np.argmax(logits, axis=1), counts, events, inputs)


def cycles_for(net: IntegerNetwork, x_int: np.ndarray, parallelism: int, *,
               cache_input: bool | None = None) -> np.ndarray:
    """Cycles from ``start`` to ``done`` per sample (int64 ``[B]``), from the event trace."""
    plan = plan_core(net, parallelism, cache_input=cache_input)
    return cycles_from_trace(plan, trace(net, x_int))


def cycles_from_trace(plan, tr: Trace) -> np.ndarray:
    """The cycle model applied to a :class:`Trace` of the plan's network (see the module doc)."""
    total = np.zeros(tr.events[0].shape[0], dtype=np.int64)
    for lp in plan.layers:
        for t in range(tr.events[lp.index].shape[1]):
            if lp.conv is not None:
                emitted = tr.inputs[lp.index + 1][t]
                total += conv_pass_cycles(lp.conv, tr.inputs[lp.index][t], emitted)
            elif plan.cache_input and lp.index == 0 and t > 0:
                total += lp.c_out + CACHED_PASS_EXTRA
            else:
                total += pass_cycles(tr.events[lp.index][:, t], lp.groups, plan.parallelism,
                                     lp.last_group)
    return total
