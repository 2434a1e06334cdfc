"""The same single-spike neuron with an alpha-shaped post-synaptic potential, for comparison.

``K(x) = (x / tau) * exp(1 - x / tau)`` for ``x > 0`` (0 before the input spike): the PSP rises
to 1 at ``x = tau`` and decays after, the classic SpikeProp kernel. There is no closed form for
the firing time, but between two input spikes the potential still has a simple shape. With the
``k`` earliest inputs and ``A = sum w_i e^(t_i/tau)``, ``B = sum w_i t_i e^(t_i/tau)``:

    V(t) = (e / tau) * e^(-t/tau) * (A t - B)

which (for ``A > 0``) rises to a single peak at ``t* = B/A + tau`` and falls after; for
``A <= 0`` it never climbs to a positive threshold. So the first interval
``(t_(k), t_(k+1)]`` whose highest point reaches ``theta`` holds the spike, and bisection on
the rising part finds it to float64 precision (:func:`alpha_times`): exact where a time grid
could step over a brief crossing.

The gradient is the implicit-function rule of SpikeProp at ``V(t_j) = theta``:
``dt_j/dq = -(dV/dq) / (dV/dt)``, i.e. ``dt_j/dw_ij = -K(t_j - t_i) / V'(t_j)`` and
``dt_j/dt_i = w_ij K'(t_j - t_i) / V'(t_j)`` on causal pairs, clipped like STDBP. ``V'`` near 0
(a crossing that only grazes the threshold) is where this kernel's gradient explodes, the
weakness the linear kernel removes.
"""

from __future__ import annotations

import math

import torch

from wb_stdbp.relpsp import GRADIENT_CLIP, causal_pairs, finite_or_zero, sorted_prefixes

#: bisection halvings: an interval of the horizon's length shrinks below 1e-13
BISECTION_STEPS = 48
#: the largest ``horizon / tau``: e^(t/tau) must stay finite in float64 (e^709 is the limit)
MAX_HORIZON_OVER_TAU = 500.0


def alpha_kernel(x: torch.Tensor, tau: float) -> torch.Tensor:
    """``K(x) = (x/tau) e^(1 - x/tau)`` for ``x > 0``, else 0."""
    positive = x > 0
    x = torch.where(positive, x, torch.zeros_like(x))
    return torch.where(positive, x / tau * torch.exp(1.0 - x / tau), torch.zeros_like(x))


def alpha_slope(x: torch.Tensor, tau: float) -> torch.Tensor:
    """``K'(x) = (1/tau) e^(1 - x/tau) (1 - x/tau)`` for ``x > 0``, else 0."""
    positive = x > 0
    x = torch.where(positive, x, torch.zeros_like(x))
    return torch.where(positive, torch.exp(1.0 - x / tau) * (1.0 - x / tau) / tau,
                       torch.zeros_like(x))


def alpha_times(t_in: torch.Tensor, weight: torch.Tensor, theta: float, horizon: float,
                tau: float) -> torch.Tensor:
    """Firing times ``[N, O]`` (``inf``: silent up to ``horizon``) of alpha-PSP neurons with
    weights ``[O, I]`` driven by input times ``[N, I]``."""
    dtype = t_in.dtype
    t_in, weight = t_in.to(torch.float64), weight.to(torch.float64)
    t_sorted, t_next, w_sorted = sorted_prefixes(t_in, weight)
    fired = torch.isfinite(t_sorted)
    # exponents relative to each sample's first input, so e^(t/tau) spans at most horizon/tau
    start = t_sorted[:, :1].nan_to_num(posinf=0.0)
    t_rel = torch.where(fired, t_sorted - start, torch.zeros_like(t_sorted))
    grow = torch.exp(t_rel / tau).unsqueeze(-1) * w_sorted  # w_i e^(t_i/tau), [N, I, O]
    a = grow.cumsum(dim=1)
    b = (grow * t_rel.unsqueeze(-1)).cumsum(dim=1)

    def potential(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return math.e / tau * torch.exp(-t / tau) * (a * t - b)  # t relative to ``start``

    low = t_rel.unsqueeze(-1).expand_as(a)
    high = (torch.minimum(t_next, torch.full_like(t_next, horizon)) - start).unsqueeze(-1)
    high = high.expand_as(a)
    rising = (a > 0) & fired.unsqueeze(-1) & (low < high)
    peak = torch.where(rising, b / torch.where(rising, a, 1.0) + tau, low)
    peak = torch.minimum(torch.maximum(peak, low), high)
    ok = rising & (potential(peak, a, b) >= theta)

    def at_first(values: torch.Tensor) -> torch.Tensor:
        return values.gather(1, ok.to(torch.uint8).argmax(dim=1, keepdim=True)).squeeze(1)

    a_k, b_k, lo, hi = at_first(a), at_first(b), at_first(low), at_first(peak)
    for _ in range(BISECTION_STEPS):  # V rises on [lo, hi]: V(lo) < theta <= V(hi)
        mid = 0.5 * (lo + hi)
        above = potential(mid, a_k, b_k) >= theta
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    t_out = torch.where(ok.any(dim=1), hi + start, torch.full_like(hi, math.inf))
    return t_out.to(dtype)


def alpha_jacobians(t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, tau: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dt_out/dw, dt_out/dt_in)``, each ``[N, O, I]``, by the implicit-function rule at
    ``V(t_j) = theta``; 0 off the causal pairs; clipped to :data:`GRADIENT_CLIP`."""
    mask = causal_pairs(t_in, t_out).to(weight.dtype)
    lag = (finite_or_zero(t_out).unsqueeze(-1) - finite_or_zero(t_in).unsqueeze(1)) * mask
    kernel, slope = alpha_kernel(lag, tau) * mask, alpha_slope(lag, tau) * mask
    v_slope = (weight.unsqueeze(0) * slope).sum(-1)  # dV/dt at t_j, >= 0 at an up-crossing
    inverse = 1.0 / v_slope.clamp(min=torch.finfo(weight.dtype).tiny).unsqueeze(-1)
    d_weight = (-kernel * inverse).clamp(-GRADIENT_CLIP, GRADIENT_CLIP) * mask
    d_input = (weight.unsqueeze(0) * slope * inverse).clamp(-GRADIENT_CLIP, GRADIENT_CLIP) * mask
    return d_weight, d_input


class AlphaFunction(torch.autograd.Function):
    """``t_out = alpha_times(...)`` with the SpikeProp (implicit-function) backward."""

    @staticmethod
    def forward(ctx, t_in: torch.Tensor, weight: torch.Tensor, theta: float, horizon: float,
                tau: float) -> torch.Tensor:
        t_out = alpha_times(t_in, weight, theta, horizon, tau)
        ctx.save_for_backward(t_in, weight, t_out)
        ctx.tau = tau
        return t_out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        t_in, weight, t_out = ctx.saved_tensors
        d_weight, d_input = alpha_jacobians(t_in, weight, t_out, ctx.tau)
        grad_out = torch.where(torch.isfinite(t_out), grad_out, torch.zeros_like(grad_out))
        grad_weight = torch.einsum("no,noi->oi", grad_out, d_weight)
        grad_input = torch.einsum("no,noi->ni", grad_out, d_input)
        return grad_input, grad_weight, None, None, None


def alpha_spike_times(t_in: torch.Tensor, weight: torch.Tensor, theta: float, horizon: float,
                      tau: float) -> torch.Tensor:
    """Alpha-PSP firing times ``[N, O]`` that back-propagate by the implicit-function rule."""
    return AlphaFunction.apply(t_in, weight, theta, horizon, tau)
