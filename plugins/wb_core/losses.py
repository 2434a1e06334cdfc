"""Losses on time-major outputs (mean-output CE and TET; see docs/wb_core.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.pluginhost import class_scores


def mean_output_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``CE(mean_t O[t], y)``: cross-entropy of the time-averaged logits."""
    return F.cross_entropy(class_scores(out), y)


def tet(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TET: ``(1/T) sum_t CE(O[t], y)``, the cross-entropy at every step, averaged."""
    if out.dim() != 3:
        raise ValueError(f"TET needs per-step outputs [T, B, C], got {list(out.shape)}")
    steps = out.shape[0]
    return F.cross_entropy(out.flatten(0, 1), y.repeat(steps))


LOSSES = {"mean_ce": mean_output_ce, "tet": tet}
