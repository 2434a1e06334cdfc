"""The event-driven simulator of a :class:`~wb_sim.ttfs_ir.TTFSNetwork`: the golden model.

Each layer keeps a priority queue of its input spikes, earliest first. Popping a spike at tick
``tau`` first fires every neuron whose predicted crossing has come (at the tick it predicted),
then delivers the spike along the input's fan-out list: only the neurons it reaches are
touched. A neuron's potential is a straight line between two of its input events, so it keeps
three integers -- its potential ``V`` at its last event, the slope ``S`` (the summed weight of
the inputs that have fired) and the tick of that event -- and the crossing is predicted exactly:

    next crossing = last + ceil((threshold - V) / S)      when S > 0 (none otherwise)

An input at ``tau`` adds nothing at ``tau`` itself (``max(0, tau - tau_i)`` is 0 there), so the
order of spikes within a tick does not matter. The spikes of one layer are the input events of
the next. Counters: ``synaptic_events`` is the fired inputs' fan-out (one accumulate per synapse
reached), ``neuron_updates`` the neuron touches those events made.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wb_sim.simulate import SimResult
from wb_sim.ttfs_ir import TTFSLayer, TTFSNetwork
from workbench.pluginhost import DeployError

NEVER = np.iinfo(np.int64).max


@dataclass
class FanOut:
    """Per input: the neurons it reaches and the weights it reaches them with."""

    targets: list[np.ndarray]  # int64 arrays, flat output indices
    weights: list[np.ndarray]  # int64 arrays, the same length


def fan_out(layer: TTFSLayer) -> FanOut:
    """The synapses of ``layer`` listed per input, flat in C, H, W order (a conv's taps
    enumerated position by position; padding reaches nothing)."""
    q = layer.weight
    if layer.kind == "linear":
        targets = np.arange(q.shape[0], dtype=np.int64)
        return FanOut([targets] * q.shape[1], [q[:, i].copy() for i in range(q.shape[1])])
    c_out, c_in, k, _ = q.shape
    _, h, w = layer.in_shape
    _, h_out, w_out = layer.out_shape
    oy, ox = np.meshgrid(np.arange(h_out), np.arange(w_out), indexing="ij")
    ins, outs, ws = [], [], []
    for ci in range(c_in):
        for dy in range(k):
            for dx in range(k):
                iy = oy * layer.stride - layer.padding + dy
                ix = ox * layer.stride - layer.padding + dx
                inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
                pos_in = (ci * h * w + iy * w + ix)[inside]
                pos_out = (oy * w_out + ox)[inside]
                for co in range(c_out):
                    ins.append(pos_in)
                    outs.append(co * h_out * w_out + pos_out)
                    ws.append(np.full(pos_in.shape, q[co, ci, dy, dx], dtype=np.int64))
    ins_all, outs_all, ws_all = (np.concatenate(a).astype(np.int64) for a in (ins, outs, ws))
    order = np.argsort(ins_all, kind="stable")
    ins_all, outs_all, ws_all = ins_all[order], outs_all[order], ws_all[order]
    bounds = np.searchsorted(ins_all, np.arange(c_in * h * w + 1))
    return FanOut(np.split(outs_all, bounds[1:-1]), np.split(ws_all, bounds[1:-1]))


def _layer_times(synapses: FanOut, threshold: np.ndarray, t_in: np.ndarray, horizon: int
                 ) -> tuple[np.ndarray, int, int]:
    """One sample through one layer: ``(t_out [O], synaptic events, neuron updates)``."""
    silent = horizon + 1
    n_out = threshold.shape[0]
    potential = np.zeros(n_out, dtype=np.int64)
    slope = np.zeros(n_out, dtype=np.int64)
    last = np.zeros(n_out, dtype=np.int64)
    crossing = np.full(n_out, NEVER, dtype=np.int64)
    t_out = np.full(n_out, silent, dtype=np.int64)
    queue = [(int(t), int(i)) for i, t in enumerate(t_in) if t <= horizon]
    heapq.heapify(queue)
    events = updates = 0
    while queue:
        now, source = heapq.heappop(queue)
        due = crossing <= now  # fired on the way here, at the tick each predicted
        if due.any():
            t_out[due] = crossing[due]
            crossing[due] = NEVER
        targets, weights = synapses.targets[source], synapses.weights[source]
        events += targets.size
        waiting = t_out[targets] == silent  # a neuron that fired is done
        targets, weights = targets[waiting], weights[waiting]
        updates += targets.size
        potential[targets] += slope[targets] * (now - last[targets])
        last[targets] = now
        slope[targets] += weights
        rising = slope[targets] > 0
        gap = threshold[targets] - potential[targets]  # > 0: it has not crossed yet
        step = -((-gap) // np.where(rising, slope[targets], 1))  # ceil(gap / S)
        crossing[targets] = np.where(rising, now + step, NEVER)
    due = crossing <= horizon
    t_out[due] = crossing[due]
    return t_out, events, updates


def simulate_ttfs(net: TTFSNetwork, t_in: np.ndarray) -> SimResult:
    """Run ``net`` on integer input times ``t_in[B, D]`` (ticks; ``net.silent`` = never),
    event by event; bit-exact by design."""
    t = _as_ticks(net, t_in)
    batch = t.shape[0]
    prepared = [(fan_out(layer), layer.neuron_thresholds()) for layer in net.layers]
    spike_counts = {layer.name: np.zeros(batch, dtype=np.int64) for layer in net.layers}
    events = np.zeros(batch, dtype=np.int64)
    updates = np.zeros(batch, dtype=np.int64)
    logits = np.zeros((batch, net.n_classes), dtype=np.int64)
    for b in range(batch):
        times = t[b]
        for layer, (synapses, threshold) in zip(net.layers, prepared):
            times, n_events, n_updates = _layer_times(synapses, threshold, times, net.horizon)
            spike_counts[layer.name][b] = int((times <= net.horizon).sum())
            events[b] += n_events
            updates[b] += n_updates
        logits[b] = -times
    return SimResult(logits.argmax(axis=1).astype(np.int64), logits, spike_counts, events,
                     np.zeros(batch, dtype=np.int64), updates)


def iter_simulate_ttfs(net: TTFSNetwork, t_in: np.ndarray, chunk: int = 8
                       ) -> Iterator[SimResult]:
    """Stream ``t_in`` through :func:`simulate_ttfs` ``chunk`` samples at a time."""
    if chunk < 1:
        raise DeployError(f"chunk must be at least 1, got {chunk}", where="chunk")
    t = _as_ticks(net, t_in)
    for start in range(0, t.shape[0], chunk):
        yield simulate_ttfs(net, t[start:start + chunk])


def _as_ticks(net: TTFSNetwork, t_in: np.ndarray) -> np.ndarray:
    t = np.asarray(t_in)
    size = net.layers[0].n_in
    if t.dtype.kind not in "iu" or t.ndim < 1 or (t.shape[0] and t[0].size != size):
        raise DeployError(f"the firing-time network takes integer ticks [B, {size}]; got "
                          f"{t.dtype} {list(t.shape)} (quantise times with "
                          "TTFSNetwork.quantize_times)", where="input")
    if t.size and (t.min() < 0 or t.max() > net.silent):
        raise DeployError(f"input ticks must lie in 0..{net.silent} ({net.silent}: never "
                          "fires)", where="input")
    return t.reshape(t.shape[0], size).astype(np.int64)
