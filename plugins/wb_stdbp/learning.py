"""STDBP training of time-to-first-spike networks.

The loss is the softmax cross-entropy over negative output firing times,
``L = -log softmax(-t_out)[y]``: the right class should fire first, and the others later. A
silent output counts as firing at the horizon ``t_h`` (never ``inf``, so the loss stays finite
when no output fires); it passes no gradient back, as every silent neuron under STDBP.

A neuron that stays silent gets no gradient from that loss, so it would stay silent for
good; a dead output neuron caps the accuracy. The optional *silence penalty* (ours, not the
paper's) adds ``silence_penalty * mean relu(theta - V_j(t_h))`` over the silent (neuron, sample)
pairs of every ReL-PSP layer: it raises the potential a silent neuron reaches at the horizon
until it fires again, and is 0 for every neuron that fires.

The trainer is ``wb_core.bptt``'s with this loss (it overrides ``forward_loss``): the same
optimiser, schedule, clipping and backward metrics; the backward pass itself is the layers'
STDBP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from wb_core.learning import BPTTTrainer

from wb_stdbp.layers import SpikeTimeLayer
from workbench.pluginhost import earliest_spike

#: the silent value when the network has no ReL-PSP layer to say its horizon
DEFAULT_HORIZON = 10.0


def first_spike_loss(t_out: torch.Tensor, y: torch.Tensor, horizon: float) -> torch.Tensor:
    """``-log softmax(-t)[y]`` over ``[1, B, C]`` (or ``[B, C]``) output times; silent outputs
    (``inf``) count as ``horizon``."""
    times = t_out[-1] if t_out.dim() == 3 else t_out
    times = torch.where(torch.isfinite(times), times, torch.full_like(times, horizon))
    return F.cross_entropy(-times, y)


def silence_deficit(layer: SpikeTimeLayer, t_in: torch.Tensor, t_out: torch.Tensor
                    ) -> torch.Tensor:
    """``mean relu(theta - V(t_h))`` over ``layer``'s (neuron, sample) pairs, counting only the
    silent ones (a neuron that fired contributes 0)."""
    silent = ~torch.isfinite(t_out.detach())
    short = (layer.theta - layer.potential_at_horizon(t_in)).clamp(min=0.0)
    return torch.where(silent, short, torch.zeros_like(short)).mean()


@contextmanager
def layer_calls(model: torch.nn.Module) -> Iterator[list[tuple[SpikeTimeLayer, torch.Tensor,
                                                                   torch.Tensor]]]:
    """The ``(layer, input, output)`` of every spike-time layer in one forward pass."""
    calls: list[tuple[SpikeTimeLayer, torch.Tensor, torch.Tensor]] = []

    def keep(module, args, out):
        calls.append((module, args[0], out))

    handles = [m.register_forward_hook(keep) for m in model.modules()
               if isinstance(m, SpikeTimeLayer)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


class STDBPTrainer(BPTTTrainer):
    """``wb_core.bptt``'s trainer (optimiser, schedule, clipping, the backward metrics of
    :mod:`wb_core.backward_metrics`, counted on the layers' firing times) with this rule's loss,
    :func:`first_spike_loss` plus the optional silence penalty; the gradients are the layers'
    STDBP, and a batch's answers are read by the earliest output spike.
    """

    readout = staticmethod(earliest_spike)

    def __init__(self, model: torch.nn.Module, *, epochs: int, steps_per_epoch: int,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float = 0.9, schedule: str = "cosine", min_lr_ratio: float = 0.0,
                 grad_clip: float = 0.0, silence_penalty: float = 1.0) -> None:
        super().__init__(model, epochs=epochs, steps_per_epoch=steps_per_epoch,
                         optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                         momentum=momentum, schedule=schedule, min_lr_ratio=min_lr_ratio,
                         grad_clip=grad_clip)
        self.silence_penalty = silence_penalty
        layers = [m for m in model.modules() if isinstance(m, SpikeTimeLayer)]
        self.horizon = layers[-1].horizon if layers else DEFAULT_HORIZON  # the output's

    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with layer_calls(self.model) as calls:
            out = self.model(x)
        loss = first_spike_loss(out, y, self.horizon)
        if self.silence_penalty > 0 and calls:
            loss = loss + self.silence_penalty * sum(silence_deficit(*call) for call in calls)
        return out, loss
