"""The quantisers of QT-SNN (docs/qt_snn.md): LSQ for weights and membranes, TTQ for weights.

**LSQ** (learned step size quantisation, Esser et al., ICLR 2020) with a symmetric grid of
``2^b - 1`` levels::

    Q(x; s, b) = s * clamp(round(x / s), -(2^(b-1) - 1), 2^(b-1) - 1)

``round`` passes the gradient straight through (inside the clamp range; outside it the
gradient to ``x`` is 0), and the step ``s`` is learnt: its gradient is LSQ's
``round(x/s) - x/s`` inside the range and ``±(2^(b-1) - 1)`` outside, scaled by
``g = 1 / sqrt(N * (2^(b-1) - 1))`` with ``N`` the number of values the step serves (the
weights of a layer, or the neurons of a layer for its membrane). The forward pass computes
exactly ``s * clamp(round(x / s))``: with ``s`` a power of two every operation is exact, which
the fixed-point check of :mod:`wb_qt_snn.integer` relies on. A step is used as ``|s|``, never
below :data:`SCALE_FLOOR`.

**Power-of-two steps** (``pow2=True``, the layers' default): the step used is ``|s|`` rounded to
the nearest power of two (``2^round(log2|s|)``; the gradient passes straight through to the
learnt ``s``). Weight and membrane steps that are powers of two of each other make the trained
network's arithmetic exactly the integer network's (shifts, no rounding of scales): what the
integer simulator and the FPGA core run is then the float model itself.

**TTQ** (trained ternary quantisation, Zhu et al., ICLR 2017), the alternative for weights:
``W_t = +W_p`` where ``W > delta``, ``-W_n`` where ``W < -delta``, 0 otherwise, with
``delta = t * max|W|`` and two learnt magnitudes ``W_p``, ``W_n`` per layer. Backward, as in
the paper: ``dL/dW = W_p * g`` (positive part), ``W_n * g`` (negative part), ``g`` (the
zeros); ``dL/dW_p = sum of g over the positive part``, ``dL/dW_n = -sum over the negative``.
"""

from __future__ import annotations

import math

import torch

#: the smallest step a quantiser uses (a learnt step that reached 0 would divide by 0)
SCALE_FLOOR = 1e-8
#: TTQ's threshold factor t of ``delta = t * max|W|`` (the paper's value)
TTQ_THRESHOLD = 0.05


def largest_code(bits: int) -> int:
    """``2^(b-1) - 1``: the grid is ``-top .. top``, ``2^b - 1`` levels including 0."""
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits}")
    return 2 ** (int(bits) - 1) - 1


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return torch.round(x)  # half to even

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad


class _ScaleGrad(torch.autograd.Function):
    """Identity forward (the value itself, so exact arithmetic stays exact); the gradient is
    multiplied by ``g`` (LSQ's gradient scale)."""

    @staticmethod
    def forward(ctx, x, g):  # type: ignore[override]
        ctx.g = g
        return x.clone()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad * ctx.g, None


def lsq_gradient_scale(count: int, bits: int) -> float:
    """LSQ's ``g = 1 / sqrt(N * Qp)`` for a step serving ``count`` values."""
    return 1.0 / math.sqrt(max(int(count), 1) * largest_code(bits))


class _Pow2STE(torch.autograd.Function):
    """``2^round(log2 s)`` forward, the identity backward."""

    @staticmethod
    def forward(ctx, s):  # type: ignore[override]
        return torch.exp2(torch.round(torch.log2(s)))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad


def usable_scale(scale: torch.Tensor, pow2: bool = False) -> torch.Tensor:
    """``|s|``, at least :data:`SCALE_FLOOR` (exact for any normal positive ``s``); with
    ``pow2`` the nearest power of two of it."""
    s = scale.abs().clamp_min(SCALE_FLOOR)
    return _Pow2STE.apply(s) if pow2 else s


def lsq(x: torch.Tensor, scale: torch.Tensor, bits: int, count: int,
        pow2: bool = False) -> torch.Tensor:
    """``Q(x; s, b)`` with LSQ's gradients; ``count`` = N of the gradient scale; ``pow2``
    uses the nearest power of two of ``s``."""
    top = largest_code(bits)
    s = _ScaleGrad.apply(usable_scale(scale, pow2), lsq_gradient_scale(count, bits))
    return _RoundSTE.apply(torch.clamp(x / s, -top, top)) * s


def lsq_codes(x: torch.Tensor, scale: torch.Tensor, bits: int,
              pow2: bool = False) -> torch.Tensor:
    """The integer codes ``clamp(round(x / s))`` (int64, no gradient): ``Q = s * codes``."""
    top = largest_code(bits)
    with torch.no_grad():
        return torch.clamp(torch.round(x / usable_scale(scale, pow2)), -top,
                           top).to(torch.int64)


def lsq_initial_scale(x: torch.Tensor, bits: int) -> torch.Tensor:
    """LSQ's initial step ``2 * mean|x| / sqrt(Qp)`` (a 0-d tensor; 1/Qp for all-zero x)."""
    top = largest_code(bits)
    with torch.no_grad():
        mean = x.detach().abs().mean()
        return torch.where(mean > 0, 2.0 * mean / math.sqrt(top),
                           torch.full_like(mean, 1.0 / top))


class _Ternary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, w_pos, w_neg, delta):  # type: ignore[override]
        pos = w > delta
        neg = w < -delta
        ctx.save_for_backward(pos, neg, w_pos, w_neg)
        return torch.where(pos, w_pos, torch.where(neg, -w_neg, torch.zeros_like(w)))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        pos, neg, w_pos, w_neg = ctx.saved_tensors
        grad_w = torch.where(pos, w_pos * grad, torch.where(neg, w_neg * grad, grad))
        grad_pos = (grad * pos).sum().reshape(w_pos.shape)
        grad_neg = -(grad * neg).sum().reshape(w_neg.shape)
        return grad_w, grad_pos, grad_neg, None


def ttq_delta(w: torch.Tensor, t: float = TTQ_THRESHOLD) -> torch.Tensor:
    """``delta = t * max|W|`` (detached): weights within it become 0."""
    return t * w.detach().abs().amax()


def ttq(w: torch.Tensor, w_pos: torch.Tensor, w_neg: torch.Tensor,
        t: float = TTQ_THRESHOLD) -> torch.Tensor:
    """TTQ's ternary weight ``{-W_n, 0, +W_p}`` with the paper's gradients."""
    return _Ternary.apply(w, w_pos, w_neg, ttq_delta(w, t))


def ttq_initial_magnitude(w: torch.Tensor, t: float = TTQ_THRESHOLD) -> torch.Tensor:
    """Initial ``W_p = W_n``: the mean ``|W|`` of the weights beyond ``delta`` (0-d)."""
    with torch.no_grad():
        big = w.abs() > ttq_delta(w, t)
        count = big.sum()
        total = (w.abs() * big).sum()
        return torch.where(count > 0, total / count.clamp_min(1),
                           torch.full_like(total, SCALE_FLOOR))
