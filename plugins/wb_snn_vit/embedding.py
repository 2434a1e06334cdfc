"""GL-SPS: Global-Local Spiking Patch Splitting (SNN-ViT, layout [R]; see docs/snn_vit.md).

The Spikformer SPS stack with a dilated branch in every stage::

    stage_i(x) = SN( BN(Conv3x3(x)) + BN(Conv3x3_dilation2(x)) )     # local + global
    channels D/8, D/4, D/2, D for 4 stages (fewer stages keep the last ones)
    max-pool(3, 2, 1) after each of the last ``pool_stages`` stages
    x = x + SN(BN(Conv3x3(x)))                                        # relative position
    tokens [T, B, N, D], N = H'·W'

``[T, B, C, H, W] -> [T, B, N, D]``; the token grid ``(H', W')`` is in the module's ``grid``.
"""

from __future__ import annotations

import torch
from torch import nn

from wb_snn_vit._layers import BatchNorm2d, Conv2d, MaxPool2d, NeuronBuilder, Shape


def _pooled(size: int) -> int:
    """Output size of max-pool(3, 2, 1)."""
    return (size + 2 - 3) // 2 + 1


class GLStage(nn.Module):
    """``SN(BN(Conv3x3(x)) + BN(Conv3x3_dilation2(x)))``, optionally max-pooled."""

    def __init__(self, c_in: int, c_out: int, neuron: NeuronBuilder, pool: bool) -> None:
        super().__init__()
        self.local_conv = Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.local_bn = BatchNorm2d(c_out)
        self.global_conv = Conv2d(c_in, c_out, 3, padding=2, dilation=2, bias=False)
        self.global_bn = BatchNorm2d(c_out)
        self.neuron = neuron()
        self.pool = MaxPool2d(3, stride=2, padding=1) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.neuron(self.local_bn(self.local_conv(x)) + self.global_bn(self.global_conv(x)))
        return x if self.pool is None else self.pool(x)


class GLSPS(nn.Module):
    """GL-SPS patch embedding.

    Parameters
    ----------
    in_shape : (C, H, W)
        Per-sample input shape.
    embed_dim : int
        Token width D.
    neuron : callable
        Zero-argument builder of a multi-step spiking neuron.
    stages : int
        Conv stages (1..4); stage i of S has ``D / 2^(S-1-i)`` channels.
    pool_stages : int
        How many of the last stages are followed by max-pool(3, 2, 1).
    """

    def __init__(self, in_shape: Shape, embed_dim: int, neuron: NeuronBuilder, *,
                 stages: int = 4, pool_stages: int = 1) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"GL-SPS expects a [C, H, W] input, got {list(in_shape)}")
        if not 1 <= stages <= 4:
            raise ValueError(f"stages must be 1..4, got {stages}")
        if not 0 <= pool_stages <= stages:
            raise ValueError(f"pool_stages must be 0..{stages} (the stages), got {pool_stages}")
        if embed_dim % (1 << (stages - 1)):
            raise ValueError(f"embed_dim {embed_dim} must be divisible by {1 << (stages - 1)} "
                             f"for {stages} stages")
        c, h, w = (int(s) for s in in_shape)
        channels = [embed_dim >> (stages - 1 - i) for i in range(stages)]
        layers = []
        for i, c_out in enumerate(channels):
            pool = i >= stages - pool_stages
            layers.append(GLStage(c, c_out, neuron, pool))
            c = c_out
            if pool:
                h, w = _pooled(h), _pooled(w)
        self.stages = nn.ModuleList(layers)
        self.rpe_conv = Conv2d(embed_dim, embed_dim, 3, padding=1, bias=False)
        self.rpe_bn = BatchNorm2d(embed_dim)
        self.rpe_neuron = neuron()
        self.embed_dim = embed_dim
        self.grid = (h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        x = x + self.rpe_neuron(self.rpe_bn(self.rpe_conv(x)))
        return x.flatten(3).transpose(-1, -2).contiguous()  # [T, B, D, H, W] -> [T, B, N, D]


def gl_sps(in_shapes: list[Shape], neuron: NeuronBuilder, embed_dim: int = 64, stages: int = 4,
           pool_stages: int = 1) -> GLSPS:
    if len(in_shapes) != 1:
        raise ValueError(f"GL-SPS takes one input, got {len(in_shapes)}")
    return GLSPS(tuple(in_shapes[0]), embed_dim, neuron, stages=stages, pool_stages=pool_stages)
