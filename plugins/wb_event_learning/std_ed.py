"""STD-ED: event-driven learning from spike timing, in its dynamic-threshold (DTA) reading.

Wei et al., "Event-Driven Learning for Spiking Neural Networks", arXiv 2403.00270 (2024), trains
single-spike neurons through their firing times: the backward pass runs only through neurons and
synapses that spiked. The paper's equations are read here through the same first author's
DTA-TTFS scheme (ICCV 2023), which docs/std_ed.md describes:

- every layer integrates input spikes that arrive in ``[0, 1]`` and may fire only inside its
  own window ``[1, 2]``, against a threshold that falls linearly, ``θ(t) = 2 − t``;
- with ``I_j = Σ w_ij t_i`` and ``W_j = Σ w_ij`` over the inputs that fired, the potential in
  the window is ``V_j(t) = W_j t − I_j``, so the neuron fires at the closed form
  ``t_j = (2 + I_j) / (1 + W_j)``; it hands ``t_j − 1`` (again in ``[0, 1]``) to the next layer;
- the last layer does not fire: its logits are the potentials at the end of the window,
  ``V_k(2) = Σ w_ik (2 − t_i)``.

Firing times travel as ``[1, B, features]`` tensors with ``inf`` for a neuron that never fired
(``spike_code="times"``). Gradients are analytical and reach only inputs that fired, and only
through neurons that fired inside the window (a spike placed at the window start is a constant).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from wb_core.learning import BPTTTrainer

Shape = tuple[int, ...]

#: |dt/dI| and |dt/dW| are clipped here: near 1 + W = 0 they grow without bound (the DTA code
#: clips dt/dW at the same value)
GRAD_CLIP = 1e5
#: the output window [WINDOW_START, WINDOW_END] in which a layer may fire
WINDOW_START, WINDOW_END = 1.0, 2.0
#: default initialisation, N(INIT_MEAN / fan_in, (INIT_STD / sqrt(fan_in))²): the positive mean
#: puts V(2) = Σ w (2 − t) above 0 for most inputs, so most neurons fire at start (docs/std_ed.md)
INIT_MEAN, INIT_STD = 1.0, 0.5


class _FiringTime(torch.autograd.Function):
    """``(I, W) -> t``: the closed-form firing time with the three branches, and its
    analytical derivatives, non-zero only where the neuron fired inside the window."""

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, weight_sum: torch.Tensor) -> torch.Tensor:
        at_start, inside, times = _branches(drive, weight_sum)
        ctx.save_for_backward(drive, weight_sum, inside)
        return torch.where(at_start, torch.full_like(times, WINDOW_START), times)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        drive, weight_sum, inside = ctx.saved_tensors
        # silent and window-start neurons: a safe denominator, their derivative is zeroed below
        denom = torch.where(inside, 1.0 + weight_sum, torch.ones_like(weight_sum))
        d_drive = (1.0 / denom).clamp(-GRAD_CLIP, GRAD_CLIP)
        d_weight_sum = (-(2.0 + drive) / denom**2).clamp(-GRAD_CLIP, GRAD_CLIP)
        zero = torch.zeros_like(grad)
        return (torch.where(inside, grad * d_drive, zero),
                torch.where(inside, grad * d_weight_sum, zero))


def _branches(drive: torch.Tensor, weight_sum: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(at_start, inside, times)``: the masks of neurons already above threshold at the
    window start and of those that cross it inside the window, and the firing times (``inf``
    where the neuron stays silent, the closed form elsewhere)."""
    with torch.no_grad():
        denom = 1.0 + weight_sum
        # checked first: V(1) − θ(1) = W − I − 1 >= 0 means the neuron fires as the window opens
        at_start = weight_sum - drive >= 1.0
        rising = denom > 0  # V − θ grows with slope 1 + W; otherwise it never reaches θ
        closed = (2.0 + drive) / torch.where(rising, denom, torch.ones_like(denom))
        inside = ~at_start & rising & (closed <= WINDOW_END)
        times = torch.where(inside, closed, torch.full_like(closed, math.inf))
    return at_start, inside, times


def firing_times(times: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Firing times ``t_j`` in the window ``[1, 2]`` (``inf``: silent) of neurons with weights
    ``weight[out, in]`` fed input times ``times[..., in]`` in ``[0, 1]`` (``inf``: no spike)."""
    fired = torch.isfinite(times)
    # where(), not a product: an input that never fired adds nothing and gets no gradient
    drive = torch.where(fired, times, torch.zeros_like(times)) @ weight.t()
    weight_sum = fired.to(weight.dtype) @ weight.t()
    return _FiringTime.apply(drive, weight_sum)


def _init_weights(weight: torch.Tensor, mean: float, std: float) -> None:
    fan_in = weight.shape[1]
    with torch.no_grad():
        weight.normal_(mean / fan_in, std / math.sqrt(fan_in))


def _flat_features(in_shapes: list[Shape], what: str) -> int:
    if len(in_shapes) != 1:
        raise ValueError(f"{what} takes one input, got {len(in_shapes)}")
    shape = tuple(in_shapes[0])
    if len(shape) != 1:
        raise ValueError(f"{what} expects a flat [D] input of firing times, got {list(shape)}; "
                         "put a flatten before it")
    return shape[0]


class STDEDLinear(nn.Linear):
    """A fully connected layer of single-spike neurons firing in the window ``[1, 2]``.

    Takes firing times ``[1, B, in]`` in ``[0, 1]`` (``inf``: no spike) and returns the layer's
    firing times shifted back to ``[0, 1]`` (``t_j − 1``, ``inf`` for a silent neuron), ready
    for the next layer. No bias: every term of the potential is a synapse that fired."""

    emits_spike_times = True  # probes record its times (the Spike times tab, inspect)

    def __init__(self, in_features: int, out_features: int, *,
                 init_mean: float = INIT_MEAN, init_std: float = INIT_STD) -> None:
        super().__init__(in_features, out_features, bias=False)
        _init_weights(self.weight, init_mean, init_std)

    def spike_events(self, x: torch.Tensor) -> torch.Tensor:
        """The inputs that fired (the energy ledger counts each × fan-out)."""
        return torch.isfinite(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return firing_times(x, self.weight) - WINDOW_START


class STDEDReadout(nn.Linear):
    """The output layer: no firing; the logit of class k is its potential at the end of the
    window, ``V_k(2) = Σ w_ik (2 − t_i)`` over the inputs that fired. Returns ``[1, B, C]``."""

    def __init__(self, in_features: int, classes: int, *,
                 init_mean: float = 0.0, init_std: float = INIT_STD) -> None:
        super().__init__(in_features, classes, bias=False)
        _init_weights(self.weight, init_mean, init_std)

    def spike_events(self, x: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fired = torch.isfinite(x)
        elapsed = torch.where(fired, WINDOW_END - x, torch.zeros_like(x))
        return elapsed @ self.weight.t()


def std_ed_linear(in_shapes: list[Shape], out_features: int = 256) -> STDEDLinear:
    """Block factory of ``wb_event_learning.std_ed_linear``."""
    return STDEDLinear(_flat_features(in_shapes, "an STD-ED layer"), out_features)


def std_ed_readout(in_shapes: list[Shape], classes: int = 10) -> STDEDReadout:
    """Block factory of ``wb_event_learning.std_ed_readout``."""
    return STDEDReadout(_flat_features(in_shapes, "an STD-ED read-out"), classes)


# -- the learning rule ---------------------------------------------------------------------------
class STDEDTrainer:
    """Cross-entropy on the read-out's logits with ``wb_core.bptt``'s trainer (optimiser,
    schedule, clipping), which it wraps: the mean over T = 1 of the logits is the logits
    themselves.

    Its metrics are every rule's (:mod:`wb_core.backward_metrics`), counted on the hidden
    layers' firing times (they declare ``emits_spike_times``): ``backward_events`` is the number
    of (sample, hidden neuron) pairs that fired, the only places the backward pass does work
    (summed over an epoch); ``dense_backward_events`` is every pair, what a time-step method
    would visit (summed); ``silent_fraction.<layer>`` is the share of a layer's neurons that
    fired for no sample of the batch, and ``grad_norm.<layer>`` (means). A layer silent for a
    whole batch passes no gradient back at all: it is logged as a warning."""

    def __init__(self, model: nn.Module, *, epochs: int, steps_per_epoch: int,
                 **params: Any) -> None:
        self.model = model
        self.inner = BPTTTrainer(model, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                 loss="mean_ce", **params)
        self.metric_reductions = self.inner.metric_reductions

    @property
    def lr(self) -> float:
        return self.inner.lr

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return self.inner.train_step(x, y)
