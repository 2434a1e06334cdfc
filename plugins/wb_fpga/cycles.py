"""Event trace and the analytic cycle model of the spiking core.

:func:`trace` runs the integer network (the arithmetic of ``wb_sim/ir.py``) in numpy and keeps
what the core's timing depends on: how many input events each layer sees at each time step.
:func:`cycles_for` turns those counts into the core's cycle count per sample; the Amaranth
simulation counts the same cycles, and ``tests/plugins/test_fpga.py`` checks they agree.

One pass of layer ``l`` at step ``t`` with ``n`` input events, ``G`` groups of ``P`` neurons
(the last one ``P_last``)::

    1                                   LAYER_START
    n + F                               ACC of group 0 (F = ACC_FLUSH memory-read cycles)
    (G - 1) * max(n + F + 1, P + 1)     each further group: its ACC + HANDOFF, or waiting for
                                        the serial neuron unit to finish the previous group
    1 + P_last + 3                      last HANDOFF, then the neuron unit issues P_last
                                        neurons (one per cycle) and its two stages empty

i.e. ``pass = (n + F + 1) + (G - 1) * max(n + F + 1, P + 1) + P_last + 4``. Layer 0 at
``t > 0`` with the input cache: ``C_out + 5`` (no accumulation, one neuron per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wb_sim.ir import IntegerNetwork

#: cycles of a cached layer-0 pass beyond its C_out neuron issues: LAYER_START, CACHED, and the
#: drain of the neuron unit's pipeline seen by WAIT_DRAIN.
CACHED_PASS_EXTRA = 5


@dataclass
class Trace:
    """What the core computes for a batch, and the event counts its timing depends on."""

    logits: np.ndarray  # int64 [B, C]
    predictions: np.ndarray  # int64 [B]
    spike_counts: dict[str, np.ndarray]  # neuron layer name -> int64 [B], summed over T
    events: list[np.ndarray]  # per layer: int64 [B, T] input events (layer 0: non-zero inputs)


def trace(net: IntegerNetwork, x_int: np.ndarray) -> Trace:
    """Run a chain of linear layers on ``x_int[B, ...]`` and record the event counts."""
    x = np.asarray(x_int, dtype=np.int64).reshape(len(x_int), -1)
    B, T = x.shape[0], int(net.time_steps)
    states = [np.zeros((B, layer.weight.shape[0]), dtype=np.int64) for layer in net.layers]
    logits = np.zeros((B, net.layers[-1].weight.shape[0]), dtype=np.int64)
    events = [np.zeros((B, T), dtype=np.int64) for _ in net.layers]
    counts = {layer.name: np.zeros(B, dtype=np.int64) for layer in net.layers
              if layer.neuron is not None}
    first = x @ np.asarray(net.layers[0].weight, dtype=np.int64).T  # the input never changes
    for t in range(T):
        signal = x
        for li, layer in enumerate(net.layers):
            events[li][:, t] = np.count_nonzero(signal, axis=1)
            acc = first if li == 0 else signal @ np.asarray(layer.weight, dtype=np.int64).T
            current = (acc << int(layer.shift)) + np.asarray(layer.bias, dtype=np.int64)
            neuron = layer.neuron
            if neuron is None:
                logits += current
                continue
            v = states[li]
            h = v + current if neuron.leak_shift is None else v - (v >> neuron.leak_shift) \
                + current
            thr = np.asarray(neuron.threshold, dtype=np.int64)
            spikes = h >= thr
            if neuron.reset == "soft":
                states[li] = h - thr * spikes
            else:
                states[li] = np.where(spikes, 0, h)
            counts[layer.name] += spikes.sum(axis=1)
            signal = spikes.astype(np.int64)
    return Trace(logits, np.argmax(logits, axis=1), counts, events)


def pass_cycles(n: np.ndarray, groups: int, parallelism: int, last_group: int) -> np.ndarray:
    """Cycles of one accumulate-and-fire pass with ``n`` input events (vectorised over ``n``)."""
    from wb_fpga.plan import ACC_FLUSH

    n = np.asarray(n, dtype=np.int64)
    group = n + ACC_FLUSH + 1
    return group + (groups - 1) * np.maximum(group, parallelism + 1) + last_group + 4


def cycles_for(net: IntegerNetwork, x_int: np.ndarray, parallelism: int, *,
               cache_input: bool | None = None) -> np.ndarray:
    """Cycles from ``start`` to ``done`` per sample (int64 ``[B]``), from the event counts."""
    from wb_fpga.plan import plan_core

    plan = plan_core(net, parallelism, cache_input=cache_input)
    return cycles_from_events(plan, trace(net, x_int).events)


def cycles_from_events(plan, events: list[np.ndarray]) -> np.ndarray:
    """The cycle model applied to per-layer event counts ``[B, T]`` (see the module doc)."""
    total = np.zeros(events[0].shape[0], dtype=np.int64)
    for lp, counts in zip(plan.layers, events):
        for t in range(counts.shape[1]):
            if plan.cache_input and lp.index == 0 and t > 0:
                total += lp.c_out + CACHED_PASS_EXTRA
            else:
                total += pass_cycles(counts[:, t], lp.groups, plan.parallelism, lp.last_group)
    return total
