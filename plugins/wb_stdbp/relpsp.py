"""The ReL-PSP neuron in closed form and its STDBP gradient (Zhang et al., IEEE TNNLS 2022).

A non-leaky neuron that fires at most once; an input spike at ``t_i`` adds a post-synaptic
potential that grows linearly from that instant, ``K(x) = max(0, x)``:

    V_j(t) = sum_i w_ij * max(0, t - t_i),     t_j = the first t with V_j(t) >= theta

Between two input spikes ``V_j`` is a straight line, so the firing time has a closed form.
Over the causal set ``C_j = {i : t_i < t_j}``:

    t_j = (theta + sum_{i in C_j} w_ij t_i) / sum_{i in C_j} w_ij      (the sum of w above 0)

found by sorting the inputs by time and trying each prefix of ``k`` earliest inputs
(:func:`relpsp_times`). A neuron whose potential never reaches ``theta`` before the horizon
``t_h`` is silent: its time is ``inf``.

STDBP (spike-timing-dependent back-propagation) differentiates that formula; only causal pairs
carry gradient, with ``W_C = sum_{i in C_j} w_ij``:

    dt_j/dw_ij = (t_i - t_j) / W_C,      dt_j/dt_i = w_ij / W_C

and a silent neuron passes no gradient at all (:class:`STDBPFunction`).

Memory: both directions hold a few ``[N, outputs, inputs]`` tensors, ``N`` the samples (times
positions, for a convolution). The digits MLP (64-256-256-10) at batch 64 needs ~16 MB per
tensor; a convolution with large receptive fields on big maps (say 32 channels of 3x3 over
12x12 positions on 16 input channels, batch 64: 42 M entries, ~170 MB each) is where this
dense formulation stops fitting a laptop and an event-list implementation would be needed.
The prefix sums run along the last, contiguous dimension (4x faster than along a middle one),
and the backward contracts the gradient into the causal mask without forming both Jacobians
(2-5x faster on the digits MLP's layers) unless a Jacobian entry could reach the clip.
"""

from __future__ import annotations

import math

import torch

#: the bound on every Jacobian entry: ``W_C`` near 0 would otherwise give huge gradients
GRADIENT_CLIP = 1e5


def sorted_inputs(t_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(order, t_sorted, t_next)``, each ``[N, I]``: the inputs' order by time, their times in
    that order, and the time of the next input (``inf`` after the last)."""
    order = t_in.argsort(dim=-1)
    t_sorted = t_in.gather(-1, order)
    t_next = torch.cat([t_sorted[:, 1:], torch.full_like(t_sorted[:, :1], math.inf)], dim=1)
    return order, t_sorted, t_next


def sorted_prefixes(t_in: torch.Tensor, weight: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs sorted by time, and each output's weights in that order.

    ``t_in [N, I]`` (``inf``: silent), ``weight [O, I]`` -> ``(t_sorted [N, I],
    t_next [N, I]`` (the time of the next input, ``inf`` after the last), ``w_sorted [N, I, O]``
    with silent inputs' weights set to 0, so prefix sums never see them).
    """
    order, t_sorted, t_next = sorted_inputs(t_in)
    fired = torch.isfinite(t_sorted)
    w_sorted = weight.t()[order] * fired.unsqueeze(-1).to(weight.dtype)
    return t_sorted, t_next, w_sorted


def relpsp_times(t_in: torch.Tensor, weight: torch.Tensor, theta: float, horizon: float
                 ) -> torch.Tensor:
    """Firing times ``[N, O]`` of ReL-PSP neurons with weights ``[O, I]`` driven by input
    times ``[N, I]``; ``inf`` for a neuron that stays below ``theta`` up to ``horizon``.

    For each prefix of ``k`` earliest inputs whose weight sum is positive, the candidate
    ``(theta + sum w t) / sum w`` is the time the line through those inputs reaches ``theta``;
    it is the spike when it falls after the ``k``-th input and no later than the next one
    (``t_(k) < cand <= t_(k+1)``). The first such ``k`` wins: the neuron fires once.
    """
    order, t_sorted, t_next = sorted_inputs(t_in)
    n, outputs = t_in.shape[0], weight.shape[0]
    # [N, O, I]: each output's weights in its sample's input order
    w_sorted = weight.unsqueeze(0).expand(n, -1, -1).gather(
        2, order.unsqueeze(1).expand(-1, outputs, -1))
    w_sum = w_sorted.cumsum(dim=-1)
    wt_sum = (w_sorted * finite_or_zero(t_sorted).unsqueeze(1)).cumsum(dim=-1)
    # A prefix whose weight sum is <= 0 never climbs: its quotient (any value, inf or nan) is
    # never accepted. Nor is a prefix ending in a silent input (inf < anything is false), so
    # silent inputs' weights need not be zeroed.
    candidate = (wt_sum + theta) / w_sum
    ok = (w_sum > 0) & (t_sorted.unsqueeze(1) < candidate) & (candidate <= t_next.unsqueeze(1))
    # The accepted candidates lie in disjoint intervals (t_(k), t_(k+1)] that follow each other
    # in k, so the first accepted prefix is the one with the smallest candidate.
    t_out = torch.where(ok, candidate, math.inf).amin(dim=-1)
    return torch.where(t_out <= horizon, t_out, math.inf)


def causal_pairs(t_in: torch.Tensor, t_out: torch.Tensor) -> torch.Tensor:
    """``[N, O, I]``: input ``i`` spiked strictly before output ``j`` fired (a silent output
    has no causal input)."""
    return (t_in.unsqueeze(1) < t_out.unsqueeze(-1)) & torch.isfinite(t_out).unsqueeze(-1)


def finite_or_zero(t: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def stdbp_jacobians(t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dt_out/dw, dt_out/dt_in)``, each ``[N, O, I]``: ``(t_i - t_j) / W_C`` and
    ``w_ij / W_C`` on causal pairs, 0 elsewhere, each bounded by :data:`GRADIENT_CLIP`."""
    causal = causal_pairs(t_in, t_out)
    mask = causal.to(weight.dtype)
    w_causal = (weight.unsqueeze(0) * mask).sum(-1)  # W_C [N, O]
    # W_C > 0 on every fired neuron (the accepted prefix climbs); the floor keeps 1/W_C finite
    # so that a zero weight times it stays 0, and the clip bounds what a tiny W_C gives
    tiny = torch.finfo(weight.dtype).tiny
    inverse = 1.0 / torch.where(causal.any(-1), w_causal, torch.ones_like(w_causal)).clamp(min=tiny)
    gap = finite_or_zero(t_in).unsqueeze(1) - finite_or_zero(t_out).unsqueeze(-1)
    d_weight = (gap * inverse.unsqueeze(-1)).clamp(-GRADIENT_CLIP, GRADIENT_CLIP) * mask
    d_input = (weight.unsqueeze(0) * inverse.unsqueeze(-1)).clamp(
        -GRADIENT_CLIP, GRADIENT_CLIP) * mask
    return d_weight, d_input


class STDBPFunction(torch.autograd.Function):
    """``t_out = relpsp_times(t_in, weight)`` with the STDBP backward.

    Forward keeps ``inf`` for silent neurons; backward sends gradient only along causal pairs
    (see :func:`stdbp_jacobians`), so a silent neuron, and every input that arrived after a
    neuron fired, receives none.
    """

    @staticmethod
    def forward(ctx, t_in: torch.Tensor, weight: torch.Tensor, theta: float,
                horizon: float) -> torch.Tensor:
        t_out = relpsp_times(t_in, weight, theta, horizon)
        ctx.save_for_backward(t_in, weight, t_out)
        return t_out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        t_in, weight, t_out = ctx.saved_tensors
        if t_in.numel() == 0 or weight.numel() == 0:  # nothing to contract (and no max below)
            return torch.zeros_like(t_in), torch.zeros_like(weight), None, None
        fired = torch.isfinite(t_out)
        grad_out = torch.where(fired, grad_out, torch.zeros_like(grad_out))
        mask = causal_pairs(t_in, t_out).to(weight.dtype)
        w_causal = torch.einsum("oi,noi->no", weight, mask)  # W_C
        # a fired neuron has a causal input (its accepted prefix): W_C > 0 there
        tiny = torch.finfo(weight.dtype).tiny
        inverse = 1.0 / torch.where(fired, w_causal, torch.ones_like(w_causal)).clamp(min=tiny)
        t_i, t_o = finite_or_zero(t_in), finite_or_zero(t_out)
        # |t_i - t_j| and |w_ij| times 1/W_C: below the clip everywhere, the clip is the identity
        # and the gradient can be contracted without forming the Jacobians
        bound = inverse.max() * torch.maximum(t_i.abs().max() + t_o.abs().max(),
                                              weight.abs().max())
        if bound > GRADIENT_CLIP:
            d_weight, d_input = stdbp_jacobians(t_in, weight, t_out)
            return (torch.einsum("no,noi->ni", grad_out, d_input),
                    torch.einsum("no,noi->oi", grad_out, d_weight), None, None)
        scaled = grad_out * inverse
        grad_input = torch.einsum("no,noi->ni", scaled, mask * weight)
        grad_weight = torch.einsum("no,noi->oi", scaled,
                                   mask * (t_i.unsqueeze(1) - t_o.unsqueeze(-1)))
        return grad_input, grad_weight, None, None


def stdbp_times(t_in: torch.Tensor, weight: torch.Tensor, theta: float, horizon: float
                ) -> torch.Tensor:
    """ReL-PSP firing times ``[N, O]`` that back-propagate with STDBP."""
    return STDBPFunction.apply(t_in, weight, theta, horizon)
