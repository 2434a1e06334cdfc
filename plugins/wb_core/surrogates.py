"""Surrogate gradients for the Heaviside spike function.

The forward pass of a spike is ``S = Heaviside(x)`` with ``x = H - V_th``; its derivative is zero
almost everywhere, so training replaces it by a smooth pseudo-derivative ``dS/dx = g(x)``. Each
surrogate here gives ``g`` in closed form: the fused multi-step neurons (:mod:`wb_core.neurons`)
use it directly in their hand-written backward pass, and :func:`spike` wraps it in an autograd
function for code that steps a neuron one time step at a time.
"""

from __future__ import annotations

import math

import torch

#: surrogate name -> its default sharpness/width parameter (docs/wb_core.md).
DEFAULT_ALPHA = {"sigmoid": 4.0, "atan": 2.0, "triangle": 1.0, "rectangle": 1.0}
NAMES = tuple(DEFAULT_ALPHA)


def surrogate_grad(name: str, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Closed-form pseudo-derivative ``g(x)`` of the named surrogate.

    - ``sigmoid``: ``alpha * sig(alpha x) * (1 - sig(alpha x))`` (SpikingJelly's default, alpha 4)
    - ``atan``: ``alpha / 2 / (1 + (pi/2 * alpha * x)^2)`` (alpha 2)
    - ``triangle``: ``max(0, a - |x|) / a^2`` with width ``a = alpha`` (TET/STBP code, a = 1)
    - ``rectangle``: ``1[|x| < a/2] / a`` with width ``a = alpha``
    """
    if name == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)
    if name == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    if name == "triangle":
        return torch.clamp(alpha - x.abs(), min=0.0) / (alpha * alpha)
    if name == "rectangle":
        return (x.abs() < alpha / 2.0).to(x.dtype) / alpha
    raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(NAMES)}")


def heaviside(x: torch.Tensor, *, at_zero: bool) -> torch.Tensor:
    """``1[x >= 0]`` when ``at_zero`` (parameterisation A), else ``1[x > 0]`` (B)."""
    return (x >= 0 if at_zero else x > 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, name, alpha, at_zero):  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return heaviside(x, at_zero=at_zero)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_grad(ctx.name, x, ctx.alpha), None, None, None


def spike(x: torch.Tensor, name: str = "sigmoid", alpha: float | None = None,
          at_zero: bool = True) -> torch.Tensor:
    """Heaviside forward, surrogate ``name`` backward."""
    a = DEFAULT_ALPHA[name] if alpha is None else alpha
    return _SpikeFunction.apply(x, name, a, at_zero)
