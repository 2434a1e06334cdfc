"""The whole SNN-ViT as one node: GL-SPS -> ``depth`` blocks -> mean over tokens -> Linear.

For users who want "an SNN-ViT of this size" rather than wiring the parts; the parts stay
available as separate blocks for anyone who wants to rearrange them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from wb_snn_vit._layers import NeuronBuilder, Shape
from wb_snn_vit.blocks import TokenMean, block
from wb_snn_vit.embedding import gl_sps


class SNNViT(nn.Module):
    """Returns ``(logits [T, B, classes], maps)``; ``maps`` are the last block's attention
    maps (what the attention view shows for this node) while ``record_maps`` is on.

    ``sssa`` holds the SSSA options every block gets (``mode``, ``salience_norm``,
    ``sacc_surrogate_norm``, ``threshold_units``, ``threshold_rule``, ``time_steps``; see
    :class:`~wb_snn_vit.attention.SSSA`); SSA ignores them."""

    def __init__(self, in_shape: Shape, neuron: NeuronBuilder, *, depth: int, embed_dim: int,
                 heads: int, stages: int, patch_size: int, attention: str, mlp_ratio: int,
                 classes: int, **sssa: Any) -> None:
        super().__init__()
        pool_stages = int(math.log2(patch_size))
        if 2**pool_stages != patch_size:
            raise ValueError(f"patch size {patch_size} is not a power of 2")
        if pool_stages > stages:
            raise ValueError(f"patch size {patch_size} needs {pool_stages} pooled stages, "
                             f"but there are only {stages} stages")
        self.embed = gl_sps([in_shape], neuron, embed_dim=embed_dim, stages=stages,
                            pool_stages=pool_stages)
        tokens = (self.embed.grid[0] * self.embed.grid[1], embed_dim)
        self.blocks = nn.ModuleList(
            block([tokens], neuron, attention=attention, heads=heads, mlp_ratio=mlp_ratio,
                  **sssa) for _ in range(depth))
        self.mean = TokenMean()
        self.head = nn.Linear(embed_dim, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x = self.embed(x)
        maps: dict = {}
        for blk in self.blocks:
            x, maps = blk(x)
        return self.head(self.mean(x)), maps


def snn_vit(in_shapes: list[Shape], neuron: NeuronBuilder, depth: int = 2, embed_dim: int = 64,
            heads: int = 4, stages: int = 4, patch_size: int = 2, attention: str = "sssa",
            mlp_ratio: int = 4, mode: str = "train_v1", salience_norm: str = "rate",
            sacc_surrogate_norm: bool = True, threshold_units: str = "std",
            threshold_rule: str = "selective", time_steps: int = 4,
            classes: int = 10) -> SNNViT:
    if len(in_shapes) != 1 or len(in_shapes[0]) != 3:
        raise ValueError(f"SNN-ViT expects one [C, H, W] image input, got "
                         f"{[list(s) for s in in_shapes]}")
    return SNNViT(tuple(in_shapes[0]), neuron, depth=depth, embed_dim=embed_dim, heads=heads,
                  stages=stages, patch_size=patch_size, attention=attention,
                  mlp_ratio=mlp_ratio, classes=classes, mode=mode, salience_norm=salience_norm,
                  sacc_surrogate_norm=sacc_surrogate_norm, threshold_units=threshold_units,
                  threshold_rule=threshold_rule, time_steps=time_steps)
