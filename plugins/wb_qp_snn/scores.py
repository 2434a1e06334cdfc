"""Kernel importance for structured pruning (QP-SNN's SVS and the L1 baseline) and the keep rule.

SVS (the paper's criterion): the numerical rank of each kernel's time-averaged spike map,
averaged over samples. L1: the sum of |W| over the kernel, a common magnitude baseline; it is
not the paper's baseline (SCA, the mean |membrane potential| of the feature map), which is not
implemented.
"""

from __future__ import annotations

import torch

#: singular values above this count towards the rank (the paper's ε)
EPS = 1e-6


def map_rank(maps: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``#{σ_i > eps}`` of each ``[H, W]`` matrix in ``maps[..., H, W]`` (int64 ``[...]``).

    Singular values are taken in float64, so round-off stays far below ``eps`` for spike maps.
    """
    if maps.dim() < 2:
        raise ValueError(f"maps need [..., H, W], got {list(maps.shape)}")
    sigma = torch.linalg.svdvals(maps.detach().double())
    return (sigma > eps).sum(-1)


def svs_scores(spikes: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """SVS score per kernel of one batch: ``spikes[T, B, C, H, W]`` -> ``[C]`` (float64), the
    rank of ``mean_t spikes`` averaged over the ``B`` samples."""
    if spikes.dim() != 5:
        raise ValueError(f"spikes need [T, B, C, H, W], got {list(spikes.shape)}")
    return map_rank(spikes.double().mean(0), eps).double().mean(0)


def l1_scores(weight: torch.Tensor) -> torch.Tensor:
    """Sum of |W| per output kernel, ``[C]`` (float64)."""
    return weight.detach().double().abs().reshape(weight.shape[0], -1).sum(1)


def keep_count(n: int, ratio: float) -> int:
    """Kernels kept out of ``n`` at pruning ratio ``ratio``: ``floor(n·(1 − r))``, computed as
    the authors' ``int(n*(1-r))`` (which reproduces the published widths)."""
    return int(n * (1 - ratio))


def keep_indices(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices (ascending) of the ``keep_count`` highest-scoring kernels.

    Ties [R]: a stable ascending sort keeps the last indices, so among equal scores the higher
    channel index survives.
    """
    k = keep_count(scores.numel(), ratio)
    order = torch.sort(scores.reshape(-1), stable=True).indices
    kept = order[order.numel() - k:] if k > 0 else order[:0]
    return kept.sort().values
