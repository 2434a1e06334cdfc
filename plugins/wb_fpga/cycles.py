"""Event trace and the analytic cycle model of the spiking core.

:func:`trace` runs the integer network (the arithmetic of ``wb_sim/ir.py``, with dense numpy
ops, sharing no code with ``wb_sim``) and keeps what the core's timing depends on: the input
events of each layer at each time step, and for conv layers where they are. :func:`cycles_for`
turns them into the core's cycle count per sample; the Amaranth simulation counts the same
cycles, and ``tests/plugins/test_fpga.py`` checks they agree.

A linear pass of layer ``l`` at step ``t`` with ``n`` input events, ``G`` groups of ``P``
neurons (the last one ``P_last``)::

    1                                   LAYER_START
    n + F                               ACC of group 0 (F = ACC_FLUSH memory-read cycles)
    (G - 1) * max(n + F + 1, P + 1)     each further group: its ACC + HANDOFF, or waiting for
                                        the serial neuron unit to finish the previous group
    1 + P_last + 3                      last HANDOFF, then the neuron unit issues P_last
                                        neurons (one per cycle) and its two stages empty

i.e. ``pass = (n + F + 1) + (G - 1) * max(n + F + 1, P + 1) + P_last + 4``. Layer 0 at
``t > 0`` with the input cache: ``C_out + 5`` (no accumulation, one neuron per cycle).

A conv pass (:mod:`wb_fpga.conv`)::

    1                                   LAYER_START
    sum over events max(1, ny*nx*G)     SCATTER: one cycle per valid kernel tap and group
    1                                   DRAIN: the last tap's membrane read
    windows * G * (win**2 + 1)          SWEEP: win**2 reads per window and group, + 1 for the
                                        last read and the OR of the window
    sum over windows, groups max(0, m - 1)   EMIT: the further spiking channels of each OR
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from wb_sim.ir import IntegerNetwork, IntLayer

#: cycles of a cached layer-0 pass beyond its C_out neuron issues: LAYER_START, CACHED, and the
#: drain of the neuron unit's pipeline seen by WAIT_DRAIN.
CACHED_PASS_EXTRA = 5
#: cycles of a conv pass besides the scatter and the sweep: LAYER_START and the scatter's drain.
CONV_PASS_EXTRA = 2


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


def trace(net: IntegerNetwork, x_int: np.ndarray) -> Trace:
    """Run the network on ``x_int[B, ...]`` and record the events of every layer and step."""
    B, T = len(x_int), int(net.time_steps)
    x = np.asarray(x_int, dtype=np.int64).reshape((B,) + tuple(net.input_shape))
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

    first = accumulate(net.layers[0], x)  # the input never changes
    for t in range(T):
        signal = x
        for li, layer in enumerate(net.layers):
            active = signal.reshape((B,) + tuple(layer.in_shape)) != 0
            inputs[li].append(active)
            events[li][:, t] = active.reshape(B, -1).sum(axis=1)
            acc = first if li == 0 else accumulate(layer, signal)
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
            spikes = h >= thr
            if neuron.reset == "soft":
                states[li] = h - thr * spikes
            else:
                states[li] = np.where(spikes, 0, h)
            counts[layer.name] += spikes.reshape(B, -1).sum(axis=1)
            if layer.pool:
                spikes = _or_pool(spikes, int(layer.pool))
            signal = spikes.astype(np.int64)
    return Trace(logits, np.argmax(logits, axis=1), counts, events, inputs)


def pass_cycles(n: np.ndarray, groups: int, parallelism: int, last_group: int) -> np.ndarray:
    """Cycles of one linear accumulate-and-fire pass with ``n`` input events (vectorised)."""
    from wb_fpga.plan import ACC_FLUSH

    n = np.asarray(n, dtype=np.int64)
    group = n + ACC_FLUSH + 1
    return group + (groups - 1) * np.maximum(group, parallelism + 1) + last_group + 4


def conv_pass_cycles(geom, active: np.ndarray, emitted: np.ndarray) -> np.ndarray:
    """Cycles of one conv pass per sample: input activity ``active[B, C_in, H_in, W_in]``,
    the events it emits ``emitted[B, C_out, Hp, Wp]`` (the next layer's input)."""
    return (CONV_PASS_EXTRA + geom.scatter_cycles(active) + geom.sweep_base_cycles
            + geom.emit_cycles(emitted))


def cycles_for(net: IntegerNetwork, x_int: np.ndarray, parallelism: int, *,
               cache_input: bool | None = None) -> np.ndarray:
    """Cycles from ``start`` to ``done`` per sample (int64 ``[B]``), from the event trace."""
    from wb_fpga.plan import plan_core

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


def cycle_bound(plan) -> int:
    """Cycles of the densest possible sample (every input an event, every output a spike),
    for the width of the cycle counter."""
    total = 0
    for t in range(plan.time_steps):
        for lp in plan.layers:
            if lp.conv is not None:
                total += CONV_PASS_EXTRA + lp.conv.max_cycles()
            elif plan.cache_input and lp.index == 0 and t > 0:
                total += lp.c_out + CACHED_PASS_EXTRA
            else:
                total += int(pass_cycles(np.array([lp.c_in]), lp.groups, plan.parallelism,
                                         lp.last_group)[0])
    return total + 1
