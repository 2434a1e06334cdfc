"""The SNN-ViT block and the token-mean head (SNN-ViT; see docs/snn_vit.md).

Block [R: layout as Spikformer's]::

    X <- X + Attn(X)
    X <- X + MLP(X),   MLP = Linear(D -> rD) + BN + SN -> Linear(rD -> D) + BN + SN

It returns ``(out, maps)`` with its attention's maps. ``record_maps`` and ``count_ops`` on the
block switch its attention's; the operation counts stay on the attention module
(``block.attention.last_ops``), so an energy meter walking ``model.modules()`` finds them once.
"""

from __future__ import annotations

import torch
from torch import nn

from wb_snn_vit._layers import AttentionFlags, NeuronBuilder, Shape, SpikingLinear, need_tokens
from wb_snn_vit.attention import SSA, SSSA


class MLP(nn.Sequential):
    """``Linear(D -> rD) + BN + SN -> Linear(rD -> D) + BN + SN`` on tokens."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronBuilder) -> None:
        super().__init__()
        self.fc1 = SpikingLinear(dim, hidden, neuron)
        self.fc2 = SpikingLinear(hidden, dim, neuron)


class SNNViTBlock(AttentionFlags, nn.Module):
    """Attention and MLP with residual additions on ``[T, B, N, D]`` tokens.

    Parameters
    ----------
    dim : int
        Token width D.
    neuron : callable
        Zero-argument builder of a multi-step spiking neuron.
    attention : {"sssa", "ssa"}
        Saccadic spike self-attention or Spikformer's SSA.
    heads : int
        Attention heads.
    mlp_ratio : int
        MLP hidden width ``r·D``.
    mode, salience_norm, sacc_surrogate_norm, time_steps, threshold_units, threshold_rule
        Passed to :class:`~wb_snn_vit.attention.SSSA` (ignored by SSA).
    """

    def __init__(self, dim: int, neuron: NeuronBuilder, *, attention: str = "sssa",
                 heads: int = 4, mlp_ratio: int = 4, mode: str = "train_v1",
                 salience_norm: str = "rate", sacc_surrogate_norm: bool = True,
                 time_steps: int = 4, threshold_units: str = "std",
                 threshold_rule: str = "selective") -> None:
        super().__init__()
        self.attention: SSSA | SSA
        if attention == "sssa":
            self.attention = SSSA(dim, heads, neuron, mode=mode, salience_norm=salience_norm,
                                  sacc_surrogate_norm=sacc_surrogate_norm,
                                  time_steps=time_steps, threshold_units=threshold_units,
                                  threshold_rule=threshold_rule)
        elif attention == "ssa":
            self.attention = SSA(dim, heads, neuron)
        else:
            raise ValueError(f"attention must be 'sssa' or 'ssa', got {attention!r}")
        self.mlp = MLP(dim, mlp_ratio * dim, neuron)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        out, maps = self.attention(x)
        x = x + out
        x = x + self.mlp(x)
        return x, maps


class TokenMean(nn.Module):
    """``[T, B, N, D] -> [T, B, D]``: the head's mean over tokens (the mean over T is the
    core's read-out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(2)


def block(in_shapes: list[Shape], neuron: NeuronBuilder, attention: str = "sssa", heads: int = 4,
          mlp_ratio: int = 4, mode: str = "train_v1", salience_norm: str = "rate",
          sacc_surrogate_norm: bool = True, time_steps: int = 4,
          threshold_units: str = "std", threshold_rule: str = "selective") -> SNNViTBlock:
    _, dim = need_tokens(in_shapes, "an SNN-ViT block")
    return SNNViTBlock(dim, neuron, attention=attention, heads=heads, mlp_ratio=mlp_ratio,
                       mode=mode, salience_norm=salience_norm,
                       sacc_surrogate_norm=sacc_surrogate_norm, time_steps=time_steps,
                       threshold_units=threshold_units, threshold_rule=threshold_rule)


def token_mean(in_shapes: list[Shape]) -> TokenMean:
    need_tokens(in_shapes, "the token mean")
    return TokenMean()
