"""The saccadic neuron of SSSA (SNN-ViT, Wang et al. 2025; docs/snn_vit.md, SSSA).

It integrates a per-token salience ``P[T, ...]`` over time with a learnable lower-triangular
mixing matrix and thresholds it into a binary mask::

    M_w  = tril(A, -1) * mask + diag(softplus(a) + 1e-3)     # strictly-lower part free,
                                                             # diagonal positive (invertible)
    H[t] = sum_{s <= t} M_w[t, s] P[s]
    S[t] = Heaviside(H[t] - V_th[t])                         # Heaviside(0) = 1

``M_w`` starts as the identity (``A = 0``, ``a = softplus^-1(1 - 1e-3)``). ``V_th`` is learnable,
one value per step, initialised on the first training forward to the median of ``H[t]`` [R], so
about half of the tokens are selected. The backward pass uses the sigmoid surrogate (alpha 4) on
``(H - V_th) / sigma_H[t]``, where ``sigma_H`` is a detached running std of ``H[t]`` (momentum
0.1, like BatchNorm) [R]; with ``surrogate_norm=False`` ``sigma_H = 1``.

``threshold_units`` says in which units the learnable vector ``v_th`` is kept [R]:

- ``"std"`` (default): ``V_th[t] = v_th[t] · sigma_H[t]``, the threshold in units of the running
  std of ``H[t]``. The rate salience is ~0.01–0.1, so an optimiser step of ``lr = 1e-3`` on a raw
  threshold is a large fraction of its scale; in std units the step is ``1e-3 sigma``, and the
  threshold follows the salience scale while it changes in training (fixed in eval).
- ``"salience"``: ``V_th[t] = v_th[t]``, the printed form.

The sizes are fixed at construction (``time_steps``, the largest T): a run with fewer steps uses
the leading ``T×T`` block of ``M_w`` and the first T thresholds, which is exactly the causal
truncation of the longer run.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: the diagonal of ``M_w`` is ``softplus(a) + DIAG_EPS``
DIAG_EPS = 1e-3
THRESHOLD_UNITS = ("std", "salience")


class _SaccadeSpike(torch.autograd.Function):
    """``Heaviside(H - V_th)`` forward; sigmoid surrogate on ``(H - V_th) / sigma`` backward.

    The forward compares ``H - V_th`` with 0 directly (a division could round a tiny negative
    difference to ``-0.0``, which ``>= 0`` would count as a spike).
    """

    @staticmethod
    def forward(ctx, h, v_th, sigma, alpha):  # type: ignore[override]
        diff = h - v_th
        ctx.save_for_backward(diff, sigma)
        ctx.alpha = alpha
        return (diff >= 0).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        diff, sigma = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * diff / sigma)
        grad_h = grad_out * ctx.alpha * sig * (1.0 - sig) / sigma
        grad_v = -grad_h.sum(dim=tuple(range(1, grad_h.dim())), keepdim=True)
        return grad_h, grad_v, None, None


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class SaccadicNeuron(nn.Module):
    """Learnable time mixing ``M_w`` and vector threshold ``V_th`` over the first dimension.

    Parameters
    ----------
    time_steps : int
        Largest number of time steps T (size of ``M_w`` and ``V_th``).
    surrogate_norm : bool
        Divide the surrogate's argument by the running std of ``H[t]``.
    alpha : float
        Sharpness of the sigmoid surrogate (4, as the LIF's).
    momentum : float
        Momentum of the running std (BatchNorm convention: new = (1 - m) old + m batch).
    threshold_units : {"std", "salience"}
        Units of the learnable ``v_th``: multiples of the running std of ``H[t]``, or salience.
    """

    def __init__(self, time_steps: int, *, surrogate_norm: bool = True, alpha: float = 4.0,
                 momentum: float = 0.1, threshold_units: str = "std") -> None:
        super().__init__()
        if time_steps < 1:
            raise ValueError(f"time_steps must be at least 1, got {time_steps}")
        if threshold_units not in THRESHOLD_UNITS:
            raise ValueError(f"threshold_units must be one of {THRESHOLD_UNITS}, "
                             f"got {threshold_units!r}")
        self.threshold_units = threshold_units
        self.time_steps = int(time_steps)
        self.surrogate_norm = bool(surrogate_norm)
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        n = self.time_steps
        self.A = nn.Parameter(torch.zeros(n, n))
        self.a = nn.Parameter(torch.full((n,), _inverse_softplus(1.0 - DIAG_EPS)))
        self.v_th = nn.Parameter(torch.zeros(n))
        self.register_buffer("mask", torch.tril(torch.ones(n, n), -1), persistent=False)
        self.register_buffer("h_std", torch.ones(n))
        self.register_buffer("initialised", torch.tensor(False))

    # -- parameters ----------------------------------------------------------------------------
    def _check_steps(self, steps: int) -> None:
        if steps > self.time_steps:
            raise ValueError(
                f"the saccadic neuron was built for at most {self.time_steps} time steps, got "
                f"{steps}; raise the block's time_steps parameter"
            )

    def weight(self, steps: int | None = None) -> torch.Tensor:
        """The effective ``M_w`` (leading ``steps × steps`` block): lower-triangular, positive
        diagonal."""
        w = self.A * self.mask + torch.diag(nn.functional.softplus(self.a) + DIAG_EPS)
        if steps is None:
            return w
        self._check_steps(steps)
        return w[:steps, :steps]

    def threshold(self, steps: int | None = None) -> torch.Tensor:
        """The effective ``V_th`` (first ``steps`` steps), in units of the potential ``H``."""
        steps = self.time_steps if steps is None else steps
        self._check_steps(steps)
        if self.threshold_units == "salience":
            return self.v_th[:steps]
        return self.v_th[:steps] * self.h_std[:steps]

    def folded_threshold(self, steps: int) -> torch.Tensor:
        """``M_w^{-1} V_th`` for the first ``steps`` steps (the V2 form, see docs/snn_vit.md)."""
        w = self.weight(steps)
        rhs = self.threshold(steps).unsqueeze(-1)
        return torch.linalg.solve_triangular(w, rhs, upper=False).squeeze(-1)

    # -- forward -------------------------------------------------------------------------------
    def potential(self, p: torch.Tensor) -> torch.Tensor:
        """``H = M_w ·_time P`` for ``P[T, ...]``."""
        steps = p.shape[0]
        w = self.weight(steps).to(p.dtype)
        return (w @ p.reshape(steps, -1)).view(p.shape)

    def observe(self, h: torch.Tensor) -> None:
        """Training statistics: on the first call set ``V_th[t]`` to the median of ``H[t]`` [R]
        and the running std to the batch std; afterwards update the running std."""
        steps = h.shape[0]
        with torch.no_grad():
            flat = h.detach().reshape(steps, -1)
            std = flat.std(dim=1, unbiased=False).to(self.h_std.dtype)
            old = self.h_std[:steps]
            first = not bool(self.initialised)
            new = std if first else (1.0 - self.momentum) * old + self.momentum * std
            # A step with constant H (e.g. no key spike anywhere) says nothing about the scale.
            self.h_std[:steps] = torch.where(std > 0, new, old)
            if first:
                median = flat.median(dim=1).values.to(self.v_th.dtype)
                if self.threshold_units == "std":
                    median = median / self.h_std[:steps]
                self.v_th[:steps] = median
            self.initialised.fill_(True)

    def sigma(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        shape = (steps,) + (1,) * (like.dim() - 1)
        if not self.surrogate_norm:
            return torch.ones(shape, dtype=like.dtype, device=like.device)
        return self.h_std[:steps].to(like.dtype).clamp_min(1e-12).view(shape)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """``train_v1``: mask ``S[T, ...]`` from the salience ``P[T, ...]``."""
        steps = p.shape[0]
        h = self.potential(p)
        if self.training:
            self.observe(h)
        shape = (steps,) + (1,) * (p.dim() - 1)
        v_th = self.threshold(steps).to(p.dtype).view(shape)
        return _SaccadeSpike.apply(h, v_th, self.sigma(steps, p), self.alpha)

    def forward_v2(self, q: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        """``v2``: ``S[t] = Heaviside(q[t] - (M_w^{-1} V_th)[t] / kappa[t])``.

        ``q[T, ..., N]`` are the (normalised) query counts, ``kappa[T, ...]`` the (normalised)
        key activity. Where ``kappa[t] = 0`` the rule does not divide and gives
        ``Heaviside(-V_th[t])`` for every token (what step 3 gives with a diagonal ``M_w``).
        No surrogate: the mask carries no gradient in this inference form.
        """
        steps = q.shape[0]
        if self.training:
            self.observe(self.potential(q * kappa.unsqueeze(-1)))
        shape = (steps,) + (1,) * (kappa.dim() - 1)
        theta = self.folded_threshold(steps).to(q.dtype).view(shape)
        active = kappa > 0
        safe = torch.where(active, kappa, torch.ones_like(kappa))
        limit = (theta / safe).unsqueeze(-1)
        silent = (-self.threshold(steps).to(q.dtype) >= 0).view(*shape, 1)
        s = torch.where(active.unsqueeze(-1), q - limit >= 0, silent)
        return s.to(q.dtype).detach()

    def extra_repr(self) -> str:
        return (f"time_steps={self.time_steps}, surrogate_norm={self.surrogate_norm}, "
                f"alpha={self.alpha:g}, threshold_units={self.threshold_units}")
