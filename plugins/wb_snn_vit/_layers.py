"""Small time-major layers shared by the SNN-ViT modules (time-major, see docs/wb_core.md).

Stateless layers run on ``x.flatten(0, 1)`` (or on all leading dimensions for tokens) and are
reshaped back, so BatchNorm normalises over ``T·B·H·W`` (images) or ``T·B·N`` (tokens) jointly.
They subclass the torch layers, so the core's energy meter, which looks for ``nn.Conv2d`` and
``nn.Linear``, counts them without help.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

Shape = tuple[int, ...]
NeuronBuilder = Callable[[], nn.Module]


class Conv2d(nn.Conv2d):
    """``[T, B, C, H, W]`` convolution, applied at every step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class BatchNorm2d(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class MaxPool2d(nn.MaxPool2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last (channel) dimension of ``[..., D]`` tokens; statistics over all
    leading dimensions (``T·B·N``), as Spikformer's BN1d on ``[T·B, D, N]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class AttentionFlags:
    """For a block that holds ``self.attention``: its ``record_maps`` and ``count_ops`` switches
    (set by the probes and the energy meter) are the attention module's."""

    @property
    def record_maps(self) -> bool:
        return self.attention.record_maps

    @record_maps.setter
    def record_maps(self, value: bool) -> None:
        self.attention.record_maps = bool(value)

    @property
    def count_ops(self) -> bool:
        return self.attention.count_ops

    @count_ops.setter
    def count_ops(self, value: bool) -> None:
        self.attention.count_ops = bool(value)


class SpikingLinear(nn.Sequential):
    """``Linear (no bias) -> BN -> neuron`` on ``[T, B, N, D]`` tokens."""

    def __init__(self, d_in: int, d_out: int, neuron: NeuronBuilder) -> None:
        super().__init__(OrderedDict(
            fc=nn.Linear(d_in, d_out, bias=False),
            bn=TokenBatchNorm(d_out),
            neuron=neuron(),
        ))


def need_tokens(in_shapes: list[Shape], what: str) -> tuple[int, int]:
    """Check a single ``[N, D]`` input; return ``(N, D)``."""
    if len(in_shapes) != 1:
        raise ValueError(f"{what} takes one input, got {len(in_shapes)}")
    shape = tuple(in_shapes[0])
    if len(shape) != 2:
        raise ValueError(f"{what} expects tokens [N, D], got {list(shape)}; put a GL-SPS patch "
                         "embedding before it")
    return int(shape[0]), int(shape[1])


def head_split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[T, B, N, D] -> [T, B, h, N, d]``."""
    return x.unflatten(-1, (heads, x.shape[-1] // heads)).transpose(2, 3)


def head_merge(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, h, N, d] -> [T, B, N, D]``."""
    return x.transpose(2, 3).flatten(-2)
