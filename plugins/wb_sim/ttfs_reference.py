"""Our torch reference of a :class:`~wb_sim.ttfs_ir.TTFSNetwork`: the closed form, dense.

It shares no code with :mod:`wb_sim.ttfs_simulate` on purpose: the simulator walks a priority
queue of events and keeps a state per neuron; this sorts every neuron's inputs by time and
evaluates all prefixes at once. With the ``k`` earliest inputs (summed weight ``S_k``, summed
``q * tau`` ``P_k``) the potential is the line ``S_k * tau - P_k`` up to the next input, so the
first tick at or above the threshold is ``ceil((threshold + P_k) / S_k)``; the neuron fires at
the first prefix whose candidate comes no later than the next input (an input adds nothing at
its own tick) and no later than the horizon. Inputs that never fire sit at ``horizon + 1``,
where they change nothing. Everything is int64 (exact); a conv layer is unfolded into one row of
inputs per output position, its padding set to "never fires".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wb_sim.reference import _fan_out
from wb_sim.simulate import SimResult
from wb_sim.ttfs_ir import TTFSLayer, TTFSNetwork

#: samples per block: a block holds a few [rows, inputs, outputs] int64 tensors
BLOCK = 16


def _rows(layer: TTFSLayer, t: torch.Tensor, silent: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs [N, I] per neuron row, weights [O, I])``: one row per sample for a linear
    layer, per sample and output position for a conv."""
    if layer.kind == "linear":
        return t, torch.from_numpy(layer.weight)
    c, h, w = layer.in_shape
    images = t.reshape(-1, c, h, w).double()
    p = layer.padding
    images = F.pad(images, (p, p, p, p), value=float(silent))
    k = layer.weight.shape[-1]
    fields = F.unfold(images, k, stride=layer.stride)  # [B, C*k*k, L]: exact small integers
    rows = fields.transpose(1, 2).reshape(-1, fields.shape[1]).round().to(torch.int64)
    return rows, torch.from_numpy(layer.weight.reshape(layer.weight.shape[0], -1))


def _first_times(t_in: torch.Tensor, weight: torch.Tensor, threshold: torch.Tensor,
                 horizon: int) -> torch.Tensor:
    """Firing ticks ``[N, O]`` of the closed form (``horizon + 1``: silent)."""
    silent = horizon + 1
    order = t_in.argsort(dim=1, stable=True)
    t_sorted = t_in.gather(1, order)  # [N, I]
    w_sorted = weight.t()[order]  # [N, I, O]
    s = w_sorted.cumsum(dim=1)
    p = (w_sorted * t_sorted.unsqueeze(-1)).cumsum(dim=1)
    t_next = torch.cat([t_sorted[:, 1:], torch.full_like(t_sorted[:, :1], silent)], dim=1)
    rising = s > 0
    numerator = threshold.view(1, 1, -1) + p
    candidate = -torch.div(-numerator, torch.where(rising, s, 1), rounding_mode="floor")
    # the horizon applies to the first crossing only: a later prefix's line, taken before its
    # own inputs arrived, can cross early without the potential ever doing so
    ok = rising & (candidate <= t_next.unsqueeze(-1))
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)
    chosen = candidate.gather(1, first).squeeze(1)
    return torch.where(ok.any(dim=1) & (chosen <= horizon), chosen,
                       torch.full_like(chosen, silent))


def torch_ttfs_forward(net: TTFSNetwork, t_in: np.ndarray) -> SimResult:
    """Run ``net`` on integer input ticks ``[B, D]`` with dense torch ops."""
    t_all = torch.from_numpy(np.asarray(t_in, dtype=np.int64).reshape(len(t_in), -1))
    batch = t_all.shape[0]
    outs, counts, events = [], {layer.name: [] for layer in net.layers}, []
    for start in range(0, batch, BLOCK):
        t = t_all[start:start + BLOCK]
        n = t.shape[0]
        block_events = torch.zeros(n, dtype=torch.float64)
        for layer in net.layers:
            fired = (t <= net.horizon).double().reshape(n, -1)
            block_events += fired @ _fan_out(layer).reshape(-1)
            rows, weight = _rows(layer, t, net.silent)
            thresholds = torch.from_numpy(layer.threshold)
            times = _first_times(rows, weight, thresholds, net.horizon)  # [N*L, C_out]
            if layer.kind == "conv":  # rows are (sample, position): back to C, H, W
                positions = layer.n_out // layer.out_shape[0]
                times = times.reshape(n, positions, -1).transpose(1, 2)
            t = times.reshape(n, -1)
            counts[layer.name].append((t <= net.horizon).sum(dim=1))
        outs.append(t)
        events.append(block_events)
    logits = -torch.cat(outs).numpy() if outs else np.zeros((0, net.n_classes), np.int64)
    spike_counts = {k: torch.cat(v).numpy().astype(np.int64) if v else np.zeros(0, np.int64)
                    for k, v in counts.items()}
    synaptic = (torch.cat(events).round().numpy().astype(np.int64) if events
                else np.zeros(0, np.int64))
    updates = np.zeros(batch, dtype=np.int64)  # a dense pass has no per-event touches
    return SimResult(logits.argmax(axis=1).astype(np.int64), logits.astype(np.int64),
                     spike_counts, synaptic, np.zeros(batch, dtype=np.int64), updates)
