"""Small time-major helpers of the BESTformer modules (time-major, see docs/wb_core.md).

Stateless layers run on all leading dimensions at once and are reshaped back, so BatchNorm
normalises over ``T·B·H·W`` (images) or ``T·B·N`` (tokens) jointly, as in the released code.
"""

from __future__ import annotations

import torch
from torch import nn

# The time-major layers and head reshapes are the SNN-ViT plugin's (same conventions, one copy).
from wb_snn_vit._layers import (  # noqa: F401  (re-exported for the BESTformer modules)
    AttentionFlags,
    BatchNorm2d,
    MaxPool2d,
    NeuronBuilder,
    Shape,
    TokenBatchNorm,
    head_merge,
    head_split,
)


class _Scaled(nn.Module):
    """Runs ``neuron`` on ``x · factor``: a threshold of ``v_th / factor`` for a neuron whose
    state is linear in its input with reset potential 0 (fallback when the threshold of a
    third-party neuron cannot be set)."""

    def __init__(self, neuron: nn.Module, factor: float) -> None:
        super().__init__()
        self.neuron, self.factor = neuron, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x * self.factor)


def neuron_variant(neuron: NeuronBuilder, *, v_th: float | None = None,
                   soft_reset: bool = False) -> nn.Module:
    """A neuron from ``neuron`` with its threshold and/or reset replaced.

    A workbench neuron (its ``dynamics`` is a named tuple with ``v_th`` and ``hard_reset``, as
    every ``wb_core`` neuron) keeps leak and surrogate and gets the new threshold/reset. Any
    other neuron keeps its own reset and is fed ``x · (its threshold / v_th)``.
    """
    n = neuron()
    dynamics = getattr(n, "dynamics", None)
    if dynamics is not None and hasattr(dynamics, "_replace") and hasattr(dynamics, "v_th"):
        changes: dict = {}
        if v_th is not None:
            changes["v_th"] = float(v_th)
        if soft_reset and hasattr(dynamics, "hard_reset"):
            changes["hard_reset"] = False
        n.dynamics = dynamics._replace(**changes)
        return n
    if v_th is None:
        return n
    own = float(getattr(n, "threshold", 1.0))
    return _Scaled(n, own / float(v_th))


def need_tokens(in_shapes: list[Shape], what: str) -> tuple[int, int]:
    """Check a single ``[N, D]`` input; return ``(N, D)``."""
    if len(in_shapes) != 1:
        raise ValueError(f"{what} takes one input, got {len(in_shapes)}")
    shape = tuple(in_shapes[0])
    if len(shape) != 2:
        raise ValueError(f"{what} expects tokens [N, D], got {list(shape)}; put a patch "
                         "embedding (e.g. wb_snn_vit.gl_sps) before it, or use the whole "
                         "wb_bestformer.bestformer node")
    return int(shape[0]), int(shape[1])
