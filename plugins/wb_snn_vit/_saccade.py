"""The saccadic neuron of SSSA (SNN-ViT, Wang et al. 2025; docs/snn_vit.md, SSSA).

It integrates a per-token salience ``P[T, ...]`` over time with a learnable lower-triangular
mixing matrix and thresholds it into a binary mask::

    M_w  = tril(A, -1) * mask + diag(softplus(a) + 1e-3)     # strictly-lower part free,
                                                             # diagonal positive (invertible)
    H[t] = sum_{s <= t} M_w[t, s] P[s]
    S[t] = Heaviside(H[t] - V_th[t])                         # Heaviside(0) = 1

``M_w`` starts as the identity (``A = 0``, ``a = softplus^-1(1 - 1e-3)``). ``V_th`` is learnable,
one value per step, initialised on the first training forward from ``H[t]`` [R] by the
``threshold_rule``:

- ``"selective"`` (default): ``V_th[t] > 0`` always (kept through a softplus), starting at the
  smallest value of ``H[t]`` that selects at most half of the tokens (and never at or below 0).
  A token with zero potential (no query or no key spike so far) is never selected, and tokens
  tied at the median cannot make the mask all ones.
- ``"median"``: ``V_th[t]`` free, starting at the median of ``H[t]``. Where more than half of
  the tokens have ``H = 0`` (an untrained network's silent queries) the median is 0 and
  ``Heaviside(0) = 1`` selects every token; training then tends to lower the threshold further.

The backward pass uses the sigmoid surrogate (alpha 4) on ``(H - V_th) / sigma_H[t]``, where
``sigma_H`` is a detached running std of ``H[t]`` (momentum 0.1, like BatchNorm) [R]; with
``surrogate_norm=False`` ``sigma_H = 1``.

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
THRESHOLD_RULES = ("selective", "median")


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


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``x`` with ``softplus(x) = y`` for ``y > 0`` (stable for small and large ``y``)."""
    return y + torch.log(-torch.expm1(-y))


def selective_start(flat: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Per row of ``flat [T, M]``: the smallest value ``v`` in the row with ``v > 0`` that
    selects (``h >= v``) at most half of the row, i.e. the first value above the lower median.

    Where the upper half is one tied value, that value (its tokens are the most salient);
    where this is not positive, the smallest positive value (every token with positive
    potential); where no value is positive, ``fallback`` (nothing is salient yet).
    """
    ordered = flat.sort(dim=1).values
    median = ordered[:, (ordered.shape[1] - 1) // 2].unsqueeze(1)
    inf = torch.full_like(ordered, math.inf)
    above = torch.where(ordered > median, ordered, inf).amin(1)
    start = torch.where(above.isfinite(), above, ordered[:, -1])
    positive = torch.where(ordered > 0, ordered, inf).amin(1)
    start = torch.where(start > 0, start, positive)
    return torch.where(start.isfinite(), start, fallback.to(start.dtype))


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
    threshold_rule : {"selective", "median"}
        ``selective``: ``V_th > 0`` (softplus), starting where at most half of the tokens are
        selected; ``median``: ``V_th`` free, starting at the median of ``H[t]``.
    """

    def __init__(self, time_steps: int, *, surrogate_norm: bool = True, alpha: float = 4.0,
                 momentum: float = 0.1, threshold_units: str = "std",
                 threshold_rule: str = "selective") -> None:
        super().__init__()
        if time_steps < 1:
            raise ValueError(f"time_steps must be at least 1, got {time_steps}")
        if threshold_units not in THRESHOLD_UNITS:
            raise ValueError(f"threshold_units must be one of {THRESHOLD_UNITS}, "
                             f"got {threshold_units!r}")
        if threshold_rule not in THRESHOLD_RULES:
            raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}, "
                             f"got {threshold_rule!r}")
        self.threshold_units = threshold_units
        self.threshold_rule = threshold_rule
        self.time_steps = int(time_steps)
        self.surrogate_norm = bool(surrogate_norm)
        self.alpha = float(alpha)
        self.momentum = float(momentum)
        n = self.time_steps
        self.A = nn.Parameter(torch.zeros(n, n))
        diag = torch.full((n,), 1.0 - DIAG_EPS, dtype=torch.float64)
        self.a = nn.Parameter(inverse_softplus(diag).to(torch.get_default_dtype()))
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
        v = self.v_th[:steps]
        if self.threshold_rule == "selective":
            v = nn.functional.softplus(v)
        return v if self.threshold_units == "salience" else v * self.h_std[:steps]

    def set_threshold(self, values: torch.Tensor) -> None:
        """Set the effective ``V_th`` of the first ``len(values)`` steps (the inverse of
        :meth:`threshold`); a ``selective`` threshold must be positive."""
        steps = values.shape[0]
        self._check_steps(steps)
        with torch.no_grad():
            v = values.to(self.v_th.dtype)
            if self.threshold_units == "std":
                v = v / self.h_std[:steps]
            if self.threshold_rule == "selective":
                if bool((v <= 0).any()):
                    raise ValueError("a selective saccadic threshold must be positive; use "
                                     "threshold_rule='median' for a free one")
                v = inverse_softplus(v)
            self.v_th[:steps] = v

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
        """Training statistics: on the first call set ``V_th[t]`` from ``H[t]`` (the
        ``threshold_rule``) [R] and the running std to the batch std; afterwards update the
        running std."""
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
                if self.threshold_rule == "median":
                    self.set_threshold(flat.median(dim=1).values)
                else:
                    self.set_threshold(selective_start(flat, self.h_std[:steps]))
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
                f"alpha={self.alpha:g}, threshold_units={self.threshold_units}, "
                f"threshold_rule={self.threshold_rule}")
