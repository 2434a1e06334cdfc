"""The ternary LIF neuron of QT-SNN (Wang et al. 2025; our reading, docs/qt_snn.md)::

    U[t]   = lam * H_q[t-1] + I[t]                   # charge; H_q[-1] = 0
    S[t]   = sign(U[t]) * 1[|U[t]| >= v_th]           # fire {-1, 0, +1}; equality fires
    H[t]   = U[t] * (1 - |S[t]|)                      # hard reset on either polarity
    H_q[t] = Q(H[t]; s_u, b_u)                        # the stored membrane (LSQ, wb_qt_snn.quant)

``s_u`` is one learnt step per layer (initialised to ``v_th / (2^(b_u-1) - 1)``, so the codes
span the range ``(-v_th, v_th)`` that a potential can keep after the reset). The surrogate is
rectangular on ``|U| - v_th`` with width ``a`` (default 1)::

    dS/dU = (1/a) * 1[ | |U| - v_th | < a/2 ]

(the derivative of ``sign(U) * Theta(|U| - v_th)`` is ``delta(|U| - v_th)`` for both
polarities). The reset's ``|S|`` is treated as a constant in backward, and so the gradient to
``U`` through ``H`` is ``1 - |S|``. With ``quantize_membrane=False`` the membrane stays full
precision (``H_q = H``).

The neuron follows the contract of ``wb_core.neurons``: ``step``, ``initial_state``, the
multi-step ``forward(x[T, B, ...])`` (fresh state every call), ``threshold``, and with
``record_membrane`` the charged potentials ``U[T, B, ...]`` in ``last_membrane``. It also
describes itself for integer conversion in :attr:`TernaryLIF.dynamics`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from wb_qt_snn.quant import largest_code, lsq, usable_scale


class TernaryState(NamedTuple):
    v: torch.Tensor  # the stored membrane H_q after reset (quantised unless switched off)


class TernaryDynamics(NamedTuple):
    """The neuron in the terms integer converters read (those of ``wb_core.neurons`` plus the
    ternary spikes and the membrane code): ``H = a*V + b*X + c``, fires at ``|H| >= v_th``
    (``at_zero``), hard reset to 0, the stored potential a ``membrane_bits`` code on a grid of
    ``membrane_scale`` (None: full precision)."""

    a: float
    b: float
    c: float
    v_th: float
    v_reset: float
    hard_reset: bool
    at_zero: bool
    ternary: bool
    membrane_bits: int | None
    membrane_scale: float


class _TernarySpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, v_th, width):  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.v_th, ctx.width = v_th, width
        return torch.sign(u) * (u.abs() >= v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * rectangle_surrogate(u, ctx.v_th, ctx.width), None, None


def rectangle_surrogate(u: torch.Tensor, v_th: float, width: float) -> torch.Tensor:
    """``dS/dU = 1[| |U| - v_th | < width/2] / width``."""
    return ((u.abs() - v_th).abs() < width / 2.0).to(u.dtype) / width


def ternary_spike(u: torch.Tensor, v_th: float, width: float = 1.0) -> torch.Tensor:
    """``sign(U) * 1[|U| >= v_th]`` forward, the rectangular surrogate backward."""
    return _TernarySpike.apply(u, float(v_th), float(width))


class TernaryLIF(nn.Module):
    """A layer of ternary LIF neurons with a quantised membrane, ``[T, B, ...]`` in and out."""

    ternary = True  # its spikes are -1, 0 or +1

    def __init__(self, lam: float = 0.5, v_th: float = 1.0, membrane_bits: int = 4,
                 quantize_membrane: bool = True, surrogate_width: float = 1.0,
                 pow2_scales: bool = True) -> None:
        super().__init__()
        if not v_th > 0:
            raise ValueError(f"v_th must be positive, got {v_th}")
        if not surrogate_width > 0:
            raise ValueError(f"surrogate_width must be positive, got {surrogate_width}")
        top = largest_code(membrane_bits)  # checks 2..16
        self.lam = float(lam)
        self.v_th = float(v_th)
        self.membrane_bits = int(membrane_bits)
        self.quantize_membrane = bool(quantize_membrane)
        self.surrogate_width = float(surrogate_width)
        self.pow2_scales = bool(pow2_scales)  # the step used: the nearest power of two
        #: s_u, the step of the stored membrane (learnt; unused without quantize_membrane)
        self.membrane_scale = nn.Parameter(torch.tensor(self.v_th / top))
        self.record_membrane = False
        self.last_membrane: torch.Tensor | None = None

    @property
    def threshold(self) -> float:
        return self.v_th

    @property
    def dynamics(self) -> TernaryDynamics:
        return TernaryDynamics(
            a=self.lam, b=1.0, c=0.0, v_th=self.v_th, v_reset=0.0, hard_reset=True,
            at_zero=True, ternary=True,
            membrane_bits=self.membrane_bits if self.quantize_membrane else None,
            membrane_scale=float(usable_scale(self.membrane_scale.detach(), self.pow2_scales)))

    def initial_state(self, x: torch.Tensor) -> TernaryState:
        """The resting state (0) for one time step shaped like ``x`` (``[B, ...]``)."""
        return TernaryState(v=torch.zeros_like(x))

    def _store(self, h: torch.Tensor) -> torch.Tensor:
        if not self.quantize_membrane:
            return h
        neurons = math.prod(h.shape[1:]) if h.dim() > 1 else h.numel()
        return lsq(h, self.membrane_scale.to(h.dtype), self.membrane_bits, neurons,
                   self.pow2_scales)

    def _fire(self, u: torch.Tensor) -> tuple[torch.Tensor, TernaryState]:
        s = ternary_spike(u, self.v_th, self.surrogate_width)
        h = u * (1.0 - s.detach().abs())  # hard reset on either polarity
        return s, TernaryState(v=self._store(h))

    def step(self, x: torch.Tensor, state: TernaryState) -> tuple[torch.Tensor, TernaryState]:
        """Advance one time step; returns ``(spikes, new_state)``."""
        return self._fire(self.lam * state.v + x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial_state(x[0])
        spikes, charged = [], []
        for t in range(x.shape[0]):
            u = self.lam * state.v + x[t]
            s, state = self._fire(u)
            spikes.append(s)
            if self.record_membrane:
                charged.append(u.detach())
        self.last_membrane = torch.stack(charged) if self.record_membrane else None
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        membrane = (f"membrane_bits={self.membrane_bits}" if self.quantize_membrane
                    else "membrane=float")
        return (f"lam={self.lam:g}, v_th={self.v_th:g}, {membrane}, "
                f"surrogate=rectangle({self.surrogate_width:g})")


def ternary_lif(lam: float = 0.5, v_th: float = 1.0, membrane_bits: int = 4,
                quantize_membrane: bool = True, surrogate_width: float = 1.0,
                pow2_scales: bool = True) -> TernaryLIF:
    """Factory of ``wb_qt_snn.ternary_lif``."""
    return TernaryLIF(lam=lam, v_th=v_th, membrane_bits=membrane_bits,
                      quantize_membrane=quantize_membrane, surrogate_width=surrogate_width,
                      pow2_scales=pow2_scales)
