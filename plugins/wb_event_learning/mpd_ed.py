"""MPD-ED: membrane-potential-dependent event-driven learning of LIF neurons (our reading of
Wei et al., "Event-Driven Learning for Spiking Neural Networks", arXiv 2403.00270, 2024; see
docs/event_learning.md).

The forward pass is the wb_core LIF neuron it replaces, unchanged (same charge, fire and reset,
bit for bit). Only the backward pass differs: the spike's local derivative is

    dS[t]/dH[t] := S[t] * g(H[t] - theta[t]),   g(x) = (1/a) * max(0, 1 - |x|/a)

so it is non-zero only where the neuron spiked (and its charged potential lay within ``a`` of
the threshold): backward work follows the spikes, not the ``T x neurons`` grid. Between events
the gradient still flows back in time through the membrane's leak; the reset is treated as a
constant (detached), so a hard reset cuts that path at a spike and a soft reset leaves it whole.

``threshold_fn(t, state) -> theta[t]`` sets the threshold of every step (default: the neuron's
constant threshold). It is the place for an adaptive threshold: the backward rule above uses
whatever threshold the forward pass fired against and passes no gradient into the threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from wb_core.neurons import NeuronState, SpikingNeuron, _Dynamics
from wb_core.surrogates import heaviside, surrogate_grad


class ThresholdState(NamedTuple):
    """What a ``threshold_fn`` sees at step ``t`` (all shaped like one step, ``[B, ...]``)."""

    v: torch.Tensor  # membrane potential after the previous step's reset, V[t-1]
    h: torch.Tensor  # charged potential of this step, H[t], before it is compared
    spike_count: torch.Tensor  # spikes each neuron emitted before step t


#: ``threshold_fn(t, state)`` -> the threshold of step t: a float or a tensor that broadcasts
#: against ``state.h``
ThresholdFn = Callable[[int, ThresholdState], "float | torch.Tensor"]


def _forward_loop(x: torch.Tensor, v: torch.Tensor, d: _Dynamics,
                  threshold_fn: ThresholdFn | None):
    """The wb_core LIF loop, with the threshold of each step from ``threshold_fn``; returns
    spikes, charged potentials and the thresholds used (``None`` when constant)."""
    spikes = torch.empty_like(x)
    charged = torch.empty_like(x)
    thresholds = torch.empty_like(x) if threshold_fn is not None else None
    count = torch.zeros_like(x[0]) if threshold_fn is not None else None
    for t in range(x.shape[0]):
        # the same expressions as wb_core.neurons._forward_loop: the forward is bit-identical
        h = d.a * v + d.b * x[t] if d.c == 0 else d.a * v + d.b * x[t] + d.c
        theta: float | torch.Tensor = d.v_th
        if threshold_fn is not None:
            theta = threshold_fn(t, ThresholdState(v=v, h=h, spike_count=count))
            thresholds[t] = theta
        s = heaviside(h - theta, at_zero=d.at_zero)
        if d.hard_reset:
            v = h * (1.0 - s) + d.v_reset * s if d.v_reset else h * (1.0 - s)
        else:
            v = h - theta * s
        if count is not None:
            count = count + s
        spikes[t] = s
        charged[t] = h
    return spikes, charged, thresholds


class _EventDrivenMultiStep(torch.autograd.Function):
    """The whole ``[T, ...]`` sequence as one autograd node with the event-gated backward."""

    @staticmethod
    def forward(ctx, x, v0, d, width, threshold_fn):  # type: ignore[override]
        spikes, charged, thresholds = _forward_loop(x, v0, d, threshold_fn)
        ctx.mark_non_differentiable(charged)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the membranes
        ctx.save_for_backward(spikes, charged,
                              *(() if thresholds is None else (thresholds,)))
        ctx.d, ctx.width = d, width
        return spikes, charged

    @staticmethod
    def backward(ctx, grad_spikes, _grad_charged):  # type: ignore[override]
        if grad_spikes is None:  # the spikes fed nothing that needs a gradient
            return None, None, None, None, None
        spikes, charged, *rest = ctx.saved_tensors
        thresholds = rest[0] if rest else None
        d: _Dynamics = ctx.d
        grad_x = torch.empty_like(charged)
        grad_v = torch.zeros_like(charged[0])  # dL/dV[t], flowing back from H[t+1]
        for t in range(charged.shape[0] - 1, -1, -1):
            h, s = charged[t], spikes[t]
            theta = d.v_th if thresholds is None else thresholds[t]
            # the event gate: no spike, no local derivative
            local = s * surrogate_grad("triangle", h - theta, ctx.width)
            # dV[t]/dH[t] with the reset detached: a hard reset cuts the path at a spike
            grad_h = grad_spikes[t] * local + (grad_v * (1.0 - s) if d.hard_reset else grad_v)
            grad_x[t] = d.b * grad_h
            grad_v = d.a * grad_h
        return grad_x, grad_v, None, None, None


def local_derivative(spikes: torch.Tensor, charged: torch.Tensor, theta: float | torch.Tensor,
                     width: float) -> torch.Tensor:
    """``dS/dH`` as the backward pass uses it: ``S * g(H - theta)``, zero without a spike."""
    return spikes * surrogate_grad("triangle", charged - theta, width)


class EventDrivenLIF(SpikingNeuron):
    """A wb_core LIF (or IF) neuron whose backward pass is event-driven (MPD-ED).

    Built from the ``dynamics`` of the neuron it replaces, it fires exactly as that neuron does;
    ``surrogate_width`` is ``a`` of the masked triangle ``g``. ``threshold_fn`` (optional) gives
    the threshold of each step; with a hard reset the potential returns to the reset value, with
    a soft reset the step's threshold is subtracted.
    """

    #: read by :mod:`wb_core.backward_metrics`: backward work happens only at spikes
    event_driven_backward = True

    def __init__(self, dynamics: _Dynamics, *, surrogate_width: float = 1.0,
                 threshold_fn: ThresholdFn | None = None) -> None:
        super().__init__(dynamics)
        if surrogate_width <= 0:
            raise ValueError(f"surrogate_width must be > 0, got {surrogate_width}")
        self.surrogate_width = float(surrogate_width)
        self.threshold_fn = threshold_fn

    @classmethod
    def replacing(cls, neuron: SpikingNeuron, **options) -> EventDrivenLIF:
        """The event-driven twin of ``neuron`` (same dynamics, membrane recording as it was)."""
        twin = cls(neuron.dynamics, **options)
        twin.record_membrane = neuron.record_membrane
        twin.train(neuron.training)
        return twin

    def step(self, x: torch.Tensor, state: NeuronState) -> tuple[torch.Tensor, NeuronState]:
        """One step through autograd with the event-gated derivative (constant threshold
        unless ``threshold_fn`` is set, which sees step 0 and no past spikes here)."""
        d = self.dynamics
        h = d.a * state.v + d.b * x + d.c
        theta = d.v_th if self.threshold_fn is None else self.threshold_fn(
            0, ThresholdState(v=state.v, h=h, spike_count=torch.zeros_like(h)))
        s = _GatedSpike.apply(h, theta, self.surrogate_width, d.at_zero)
        s_const = s.detach()
        v = (h * (1.0 - s_const) + d.v_reset * s_const) if d.hard_reset else h - theta * s_const
        return s, NeuronState(v=v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v0 = torch.full_like(x[0], self.dynamics.v_reset)
        if torch.is_grad_enabled() and x.requires_grad:
            spikes, charged = _EventDrivenMultiStep.apply(x, v0, self.dynamics,
                                                          self.surrogate_width, self.threshold_fn)
        else:
            spikes, charged, _ = _forward_loop(x, v0, self.dynamics, self.threshold_fn)
        self.last_membrane = charged.detach() if self.record_membrane else None
        return spikes

    def extra_repr(self) -> str:
        custom = ", threshold_fn" if self.threshold_fn is not None else ""
        return f"{super().extra_repr()}, MPD-ED(a={self.surrogate_width:g}){custom}"


class _GatedSpike(torch.autograd.Function):
    """Heaviside forward; ``S * g(H - theta)`` backward (for :meth:`EventDrivenLIF.step`)."""

    @staticmethod
    def forward(ctx, h, theta, width, at_zero):  # type: ignore[override]
        s = heaviside(h - theta, at_zero=at_zero)
        ctx.save_for_backward(h, s)
        ctx.theta, ctx.width = theta, width
        return s

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        h, s = ctx.saved_tensors
        return grad_out * local_derivative(s, h, ctx.theta, ctx.width), None, None, None
