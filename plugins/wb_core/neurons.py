"""Integrate-and-fire neurons with explicit state (docs/wb_core.md: the two LIF forms).

One generic charge equation covers all three neurons of this plugin::

    H[t] = a * V[t-1] + b * X[t] + c           # charge
    S[t] = Heaviside(H[t] - V_th)              # fire
    V[t] = H[t] * (1 - S[t]) + V_reset * S[t]  # hard reset   (soft: V[t] = H[t] - V_th * S[t])

- LIF, parameterisation A (Spikformer/SpikingJelly): ``a = 1 - 1/tau``, ``b = 1/tau``,
  ``c = V_reset/tau``, fires at ``H >= V_th``.
- LIF, parameterisation B (TET/STBP): ``a = lam``, ``b = 1``, ``c = 0``, fires at ``H > theta``.
- IF: ``a = 1``, ``b = 1``, ``c = 0``.

Why a hand-written backward: stepping the neuron through autograd builds ~6 graph nodes per time
step. :class:`_MultiStep` runs the whole ``[T, ...]`` sequence as one autograd node and walks the
time loop backwards by hand with the surrogate's closed-form derivative; the result equals the
autograd graph of :meth:`SpikingNeuron.step` (checked in the tests) at a fraction of the
overhead. The state is never stored between calls: every ``forward`` starts from rest.

Where a compiler is at hand the same loops run fused (:mod:`wb_core.fused`), chosen by the
project's ``compute.kernels``: ``eager`` keeps this module's loops, ``fused`` compiles them,
``auto`` fuses layers large enough to repay the one-off compile. Under a whole-network
``torch.compile`` the eager loops are traced instead (the compiler fuses them itself).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from wb_core import fused
from wb_core.surrogates import DEFAULT_ALPHA, heaviside, spike, surrogate_grad
from workbench.pluginhost import WorkbenchError, kernel_mode


class NeuronState(NamedTuple):
    v: torch.Tensor  # membrane potential after reset, same units as the threshold


class _Dynamics(NamedTuple):
    a: float
    b: float
    c: float
    v_th: float
    v_reset: float
    hard_reset: bool
    detach_reset: bool
    at_zero: bool
    surrogate: str
    alpha: float


def _forward_loop(x: torch.Tensor, v: torch.Tensor, d: _Dynamics):
    """Run the sequence without autograd; return spikes and the charged potentials H."""
    spikes = torch.empty_like(x)
    charged = torch.empty_like(x)
    for t in range(x.shape[0]):
        h = d.a * v + d.b * x[t] if d.c == 0 else d.a * v + d.b * x[t] + d.c
        s = heaviside(h - d.v_th, at_zero=d.at_zero)
        if d.hard_reset:
            v = h * (1.0 - s) + d.v_reset * s if d.v_reset else h * (1.0 - s)
        else:
            v = h - d.v_th * s
        spikes[t] = s
        charged[t] = h
    return spikes, charged, v


def _use_fused(x: torch.Tensor) -> bool:
    mode = kernel_mode()
    if mode == "eager" or torch.compiler.is_compiling() or not x.is_floating_point():
        return False
    return mode == "fused" or x[0].numel() >= fused.AUTO_MIN_NEURONS


def _fused_or_none(kind: str, d: _Dynamics, *tensors: torch.Tensor, shape: torch.Size):
    out = fused.run(kind, d.surrogate, *tensors, shape=shape,
                    p=fused.params(d, tensors[0].dtype, tensors[0].device))
    if out is None and kernel_mode() == "fused":
        raise WorkbenchError(f"the fused spiking kernels do not compile on this machine "
                             f"({fused.broken()}); set the kernels to auto or eager",
                             where="compute.kernels")
    return out


def _run_forward(x: torch.Tensor, v0: torch.Tensor, d: _Dynamics, use_fused: bool):
    out = _fused_or_none("forward", d, x, v0, shape=x.shape) if use_fused else None
    return (out[0], out[1], use_fused) if out is not None else (*_forward_loop(x, v0, d)[:2],
                                                                 False)


class _MultiStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, d, use_fused=False):  # type: ignore[override]
        spikes, charged, ctx.fused = _run_forward(x, v0, d, use_fused)
        # The membranes are for probes only: no gradient flows into them. Without the second
        # line autograd would still hand backward a zero-filled gradient of the whole
        # sequence's size for them (measured: 3 % of a VGG-style training step on the CPU).
        ctx.mark_non_differentiable(charged)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(spikes, charged)
        ctx.d = d
        return spikes, charged

    @staticmethod
    def backward(ctx, grad_spikes, _grad_charged):  # type: ignore[override]
        spikes, charged = ctx.saved_tensors
        d: _Dynamics = ctx.d
        if grad_spikes is None:  # the spikes fed nothing that needs a gradient
            return None, None, None, None
        if ctx.fused:
            out = _fused_or_none("backward", d, grad_spikes, spikes, charged, shape=spikes.shape)
            if out is not None:
                return out[0], out[1], None, None
        grad_x = torch.empty_like(charged)
        grad_v = torch.zeros_like(charged[0])  # dL/dV[t], flowing back from H[t+1]
        for t in range(charged.shape[0] - 1, -1, -1):
            h, s = charged[t], spikes[t]
            sg = surrogate_grad(d.surrogate, h - d.v_th, d.alpha)
            # dV[t]/dH[t]: the reset path through S[t] counts only without detach_reset.
            if d.hard_reset:
                dv_dh = 1.0 - s
                if not d.detach_reset:
                    dv_dh = dv_dh + (d.v_reset - h) * sg
            else:
                dv_dh = 1.0 - d.v_th * sg if not d.detach_reset else 1.0
            grad_h = grad_spikes[t] * sg + grad_v * dv_dh
            grad_x[t] = d.b * grad_h
            grad_v = d.a * grad_h
        return grad_x, grad_v, None, None


class SpikingNeuron(torch.nn.Module):
    """A layer of integrate-and-fire neurons, time-major ``[T, B, ...]`` in and out.

    Set ``record_membrane = True`` (probes do) and each ``forward`` keeps the charged potentials
    ``H[T, B, ...]`` (before reset, detached) in ``last_membrane``; off by default, it costs
    nothing then.
    """

    #: spikes are 0 or 1, never negative: the backward metrics find silent neurons with one
    #: reduction instead of two (a subclass with signed spikes must say False)
    non_negative_spikes = True

    def __init__(self, dynamics: _Dynamics) -> None:
        super().__init__()
        self.dynamics = dynamics
        self.record_membrane = False
        self.last_membrane: torch.Tensor | None = None

    @property
    def threshold(self) -> float:
        return self.dynamics.v_th

    def initial_state(self, x: torch.Tensor) -> NeuronState:
        """The resting state for one time step shaped like ``x`` (``[B, ...]``)."""
        return NeuronState(v=torch.full_like(x, self.dynamics.v_reset))

    def step(self, x: torch.Tensor, state: NeuronState) -> tuple[torch.Tensor, NeuronState]:
        """Advance one time step through autograd; returns ``(spikes, new_state)``."""
        d = self.dynamics
        h = d.a * state.v + d.b * x + d.c
        s = spike(h - d.v_th, d.surrogate, d.alpha, d.at_zero)
        s_reset = s.detach() if d.detach_reset else s
        if d.hard_reset:
            v = h * (1.0 - s_reset) + d.v_reset * s_reset
        else:
            v = h - d.v_th * s_reset
        return s, NeuronState(v=v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v0 = torch.full_like(x[0], self.dynamics.v_reset)
        use_fused = _use_fused(x)
        if torch.is_grad_enabled() and x.requires_grad:
            spikes, charged = _MultiStep.apply(x, v0, self.dynamics, use_fused)
        else:
            spikes, charged, _ = _run_forward(x, v0, self.dynamics, use_fused)
        self.last_membrane = charged.detach() if self.record_membrane else None
        return spikes

    def extra_repr(self) -> str:
        d = self.dynamics
        return (
            f"a={d.a:g}, b={d.b:g}, v_th={d.v_th:g}, reset={'hard' if d.hard_reset else 'soft'}, "
            f"surrogate={d.surrogate}({d.alpha:g})"
        )


def _alpha(surrogate: str, surrogate_alpha: float) -> float:
    return surrogate_alpha if surrogate_alpha > 0 else DEFAULT_ALPHA[surrogate]


def lif(
    tau: float = 2.0,
    v_th: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "hard",
    detach_reset: bool = True,
    surrogate: str = "sigmoid",
    surrogate_alpha: float = 4.0,
) -> SpikingNeuron:
    """LIF, parameterisation A: ``H = V + (X - (V - V_reset)) / tau``; fires at ``H >= V_th``."""
    return SpikingNeuron(
        _Dynamics(
            a=1.0 - 1.0 / tau, b=1.0 / tau, c=v_reset / tau, v_th=v_th, v_reset=v_reset,
            hard_reset=reset == "hard", detach_reset=detach_reset, at_zero=True,
            surrogate=surrogate, alpha=_alpha(surrogate, surrogate_alpha),
        )
    )


def lif_b(
    lam: float = 0.5,
    theta: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = False,
    surrogate: str = "triangle",
    surrogate_alpha: float = 1.0,
) -> SpikingNeuron:
    """LIF, parameterisation B: ``u = lam * u + x``; fires at ``u > theta``; resets to 0."""
    return SpikingNeuron(
        _Dynamics(
            a=lam, b=1.0, c=0.0, v_th=theta, v_reset=0.0, hard_reset=reset == "hard",
            detach_reset=detach_reset, at_zero=False,
            surrogate=surrogate, alpha=_alpha(surrogate, surrogate_alpha),
        )
    )


def integrate_and_fire(
    v_th: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "hard",
    detach_reset: bool = True,
    surrogate: str = "sigmoid",
    surrogate_alpha: float = 4.0,
) -> SpikingNeuron:
    """IF: ``H = V + X`` (no leak); fires at ``H >= V_th``."""
    return SpikingNeuron(
        _Dynamics(
            a=1.0, b=1.0, c=0.0, v_th=v_th, v_reset=v_reset, hard_reset=reset == "hard",
            detach_reset=detach_reset, at_zero=True,
            surrogate=surrogate, alpha=_alpha(surrogate, surrogate_alpha),
        )
    )
