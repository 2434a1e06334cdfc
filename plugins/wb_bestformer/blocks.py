"""The MLP and the reversible two-stream block (docs/bestformer.md).

A block keeps two streams ``(x0, x1)`` of ``[T, B, N, D]`` tokens and maps them to ``(x2, x3)``::

    first block:  x2 = Attn(x1) + x1                  (there is no x0)
    later blocks: x2 = Attn(x1) + (x0 + x1) / 2
    all blocks:   x3 = MLP(x2) + (x1 + x2) / 2

and the next block takes ``(x0, x1) <- (x2, x3)``. Every later block is exactly invertible::

    x1 = 2·(x3 − MLP(x2)) − x2
    x0 = 2·(x2 − Attn(x1)) − x1

(:meth:`ReversibleBlock.inverse`; the first block recovers only ``x1``). ``Attn`` and ``MLP``
act on whole ``[T, ...]`` sequences and every neuron starts from rest at each call, so the
inverse recomputes exactly what the forward computed; in eval mode (fixed BN statistics) and
float64 the reconstruction error is at rounding level. Like the released code, training uses
ordinary autograd (no activation recomputation) and no drop path.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from wb_bestformer._layers import AttentionFlags, NeuronBuilder, TokenBatchNorm
from wb_bestformer.attention import BSSA
from wb_bestformer.binary import BinaryLinear


class MLP(nn.Sequential):
    """``SN -> Linear_bin(D -> rD) -> BN -> SN -> Linear_bin(rD -> D) -> BN``."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronBuilder, *, binary: bool) -> None:
        super().__init__(OrderedDict(
            neuron1=neuron(),
            fc1=BinaryLinear(dim, hidden, bias=False, binary=binary),
            bn1=TokenBatchNorm(hidden),
            neuron2=neuron(),
            fc2=BinaryLinear(hidden, dim, bias=False, binary=binary),
            bn2=TokenBatchNorm(dim),
        ))


class ReversibleBlock(AttentionFlags, nn.Module):
    """One reversible two-stream block: BSSA and the MLP.

    Parameters
    ----------
    dim, heads, neuron, variant, time_steps, binary
        As for :class:`~wb_bestformer.attention.BSSA`.
    mlp_ratio : int
        MLP hidden width ``r·D``.
    first : bool
        The first block of a stack (no ``x0``: ``x2 = Attn(x1) + x1``).
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronBuilder, *, mlp_ratio: int = 4,
                 variant: str = "quadratic", time_steps: int = 4, binary: bool = True,
                 first: bool = False) -> None:
        super().__init__()
        self.first = bool(first)
        self.attention = BSSA(dim, heads, neuron, variant=variant, time_steps=time_steps,
                              binary=binary)
        self.mlp = MLP(dim, mlp_ratio * dim, neuron, binary=binary)

    def forward(self, x0: torch.Tensor | None, x1: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """``(x0, x1) -> (x2, x3, maps)``; ``x0`` is ``None`` for the first block."""
        attn, maps = self.attention(x1)
        if self.first:
            x2 = attn + x1
        else:
            if x0 is None:
                raise ValueError("a later reversible block needs both streams (x0, x1)")
            x2 = attn + (x0 + x1) / 2
        x3 = self.mlp(x2) + (x1 + x2) / 2
        return x2, x3, maps

    def inverse(self, x2: torch.Tensor, x3: torch.Tensor
                ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(x2, x3) -> (x0, x1)``; the first block returns ``(None, x1)``."""
        x1 = 2 * (x3 - self.mlp(x2)) - x2
        if self.first:
            return None, x1
        attn, _ = self.attention(x1)
        x0 = 2 * (x2 - attn) - x1
        return x0, x1
