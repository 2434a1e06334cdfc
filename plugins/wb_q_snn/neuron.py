"""The quantised-membrane LIF neuron of Q-SNN (Wei et al. 2024; see docs/q_snn.md).

LIF parameterisation B (docs/wb_core.md) with the state stored at low precision::

    u_pre[t] = lam * u[t-1] + x[t]                 # charge
    s[t]     = 1[u_pre[t] - theta > 0]             # fire (triangle surrogate, a = 1)
    u        = u_pre[t] * (1 - s[t])               # hard reset to 0, reset not detached
    u[t]     = Q_b(u)                              # quantised state, used at the next step

with ``Q_b`` = :func:`quantize_membrane`: ``tanh``, a per-tensor scale ``max|v|`` (detached,
guarded at 1e-8), ``2^b - 1`` symmetric levels, straight-through rounding.

Why plain autograd per step (unlike the fused neuron of ``wb_core``): the quantiser makes the
state recursion non-linear, and Q-SNN runs on few time steps, so a hand-written backward would
buy little. The state is never kept between calls: every ``forward`` starts from rest.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from wb_core.surrogates import spike

#: guard of the per-tensor scale: an all-zero state would otherwise give 0/0 (docs/q_snn.md)
SCALE_FLOOR = 1e-8


class QNeuronState(NamedTuple):
    v: torch.Tensor  # quantised membrane potential after reset (the stored state)


def membrane_levels(bits: int) -> int:
    """Largest integer code ``2^(b-1) - 1``; the grid has ``2^b - 1`` levels including 0."""
    return 2 ** (bits - 1) - 1


def quantize_membrane(u: torch.Tensor, bits: int, use_tanh: bool = True) -> torch.Tensor:
    """``Q_b(u)``: the stored state on ``2^b - 1`` symmetric levels (docs/q_snn.md).

    The scale is one number for the whole tensor (batch included, as in the official code) and
    is treated as a constant in backward; rounding passes the gradient straight through.
    """
    v = torch.tanh(u) if use_tanh else u
    scale = v.detach().abs().amax().clamp_min(SCALE_FLOOR)
    top = membrane_levels(bits)
    scaled = torch.clamp(v / scale, -1.0, 1.0) * top
    rounded = scaled + (torch.round(scaled) - scaled).detach()  # straight-through round
    return rounded * (scale / top)


class QuantizedLIF(torch.nn.Module):
    """LIF (B) with a quantised membrane, time-major ``[T, B, ...]`` in and out.

    Honours the neuron contract of ``wb_core.neurons``: ``step``, ``initial_state``, the
    multi-step ``forward``, ``threshold`` and, when ``record_membrane`` is set (probes do), the
    charged potentials ``u_pre[T, B, ...]`` (before reset, detached) in ``last_membrane``.
    """

    def __init__(self, lam: float = 0.5, theta: float = 1.0, membrane_bits: int = 8,
                 membrane_tanh: bool = True, surrogate_alpha: float = 1.0) -> None:
        super().__init__()
        if not 2 <= int(membrane_bits) <= 16:
            raise ValueError(f"membrane_bits must be in 2..16, got {membrane_bits}")
        self.lam = float(lam)
        self.theta = float(theta)
        self.membrane_bits = int(membrane_bits)
        self.membrane_tanh = bool(membrane_tanh)
        self.surrogate_alpha = float(surrogate_alpha)
        self.record_membrane = False
        self.last_membrane: torch.Tensor | None = None

    @property
    def threshold(self) -> float:
        return self.theta

    def initial_state(self, x: torch.Tensor) -> QNeuronState:
        """The resting state (0) for one time step shaped like ``x`` (``[B, ...]``)."""
        return QNeuronState(v=torch.zeros_like(x))

    def _charge(self, x: torch.Tensor, state: QNeuronState) -> torch.Tensor:
        return self.lam * state.v + x

    def _fire_and_store(self, u_pre: torch.Tensor) -> tuple[torch.Tensor, QNeuronState]:
        s = spike(u_pre - self.theta, "triangle", self.surrogate_alpha, at_zero=False)
        u = u_pre * (1.0 - s)  # hard reset; the spike keeps its surrogate gradient here
        return s, QNeuronState(v=quantize_membrane(u, self.membrane_bits, self.membrane_tanh))

    def step(self, x: torch.Tensor, state: QNeuronState) -> tuple[torch.Tensor, QNeuronState]:
        """Advance one time step; returns ``(spikes, new_state)`` with the quantised state."""
        return self._fire_and_store(self._charge(x, state))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial_state(x[0])
        spikes, charged = [], []
        for t in range(x.shape[0]):
            u_pre = self._charge(x[t], state)
            s, state = self._fire_and_store(u_pre)
            spikes.append(s)
            if self.record_membrane:
                charged.append(u_pre.detach())
        self.last_membrane = torch.stack(charged) if self.record_membrane else None
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (f"lam={self.lam:g}, theta={self.theta:g}, membrane_bits={self.membrane_bits}, "
                f"membrane_tanh={self.membrane_tanh}, surrogate=triangle({self.surrogate_alpha:g})")


def qlif(lam: float = 0.5, theta: float = 1.0, membrane_bits: int = 8,
         membrane_tanh: bool = True) -> QuantizedLIF:
    """Factory of ``wb_q_snn.qlif``."""
    return QuantizedLIF(lam=lam, theta=theta, membrane_bits=membrane_bits,
                        membrane_tanh=membrane_tanh)
