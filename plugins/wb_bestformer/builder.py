"""The whole BESTformer as one node (docs/bestformer.md): tokenizer, reversible blocks, two heads.

::

    tokenizer : Conv3x3 (full precision) + BN,
                then per further stage: SN -> [MaxPool(3, 2, 1)] -> Conv3x3_bin -> BN
                channels D/2^(S-2), ..., D/2, D, D for S stages (the last two have D);
                the max-pool precedes the last log2(patch_size) binary convs
                [T, B, C, H, W] -> tokens x1 [T, B, N, D]  (membrane-like, no SN at the end)
    blocks    : depth reversible two-stream blocks (x0, x1) -> (x2, x3)
    heads     : head(mean_N x0), head2(mean_N x1), two full-precision linear layers
    output    : (head(x0) + head2(x1)) / 2 per time step, [T, B, classes]

S = 5, patch 4 is the released CIFAR tokenizer (D/8, D/4, D/2, then pooled D, D); the digits
default S = 3, patch 2 turns 8×8 images into 4×4 = 16 tokens. The core averages the logits
over T, so the heads see the tokens averaged over tokens and time (a linear layer commutes
with the mean).

:meth:`BESTformer.head_outputs` gives both heads' logits; with ``keep_heads`` on, every forward
also leaves them in ``last_heads`` so that a loss computed on the compiled network's output (the
CIE distillation) can read them.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from wb_bestformer._layers import BatchNorm2d, MaxPool2d, NeuronBuilder, Shape
from wb_bestformer.attention import VARIANTS
from wb_bestformer.binary import BINARY_LAYERS, BinaryConv2d
from wb_bestformer.blocks import ReversibleBlock


def _pooled(size: int) -> int:
    """Output size of max-pool(3, 2, 1)."""
    return (size + 2 - 3) // 2 + 1


class _Conv2d(nn.Conv2d):
    """Full-precision ``[T, B, C, H, W]`` convolution (the tokenizer's first layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class Tokenizer(nn.Module):
    """Conv stages from an image to tokens; see the module docstring for the layout."""

    def __init__(self, in_shape: Shape, dim: int, neuron: NeuronBuilder, *, stages: int = 3,
                 pools: int = 1, binary: bool = True) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"the BESTformer expects a [C, H, W] image, got {list(in_shape)}")
        if stages < 2:
            raise ValueError(f"the tokenizer needs at least 2 conv stages, got {stages}")
        if not 0 <= pools <= stages - 1:
            raise ValueError(f"{pools} max-pools need at least {pools + 1} conv stages "
                             f"(there are {stages}); lower the patch size or add stages")
        if dim % (1 << (stages - 2)):
            raise ValueError(f"dim {dim} must be divisible by {1 << (stages - 2)} for "
                             f"{stages} tokenizer stages")
        c, h, w = (int(s) for s in in_shape)
        channels = [dim >> max(0, stages - 2 - i) for i in range(stages)]
        self.conv0 = _Conv2d(c, channels[0], 3, padding=1, bias=False)
        self.bn0 = BatchNorm2d(channels[0])
        later = []
        for i in range(1, stages):
            parts: OrderedDict[str, nn.Module] = OrderedDict(neuron=neuron())
            if i >= stages - pools:
                parts["pool"] = MaxPool2d(3, stride=2, padding=1)
                h, w = _pooled(h), _pooled(w)
            parts["conv"] = BinaryConv2d(channels[i - 1], channels[i], 3, padding=1, bias=False,
                                         binary=binary)
            parts["bn"] = BatchNorm2d(channels[i])
            later.append(nn.Sequential(parts))
        self.stages = nn.ModuleList(later)
        self.grid = (h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(self.conv0(x))
        for stage in self.stages:
            x = stage(x)
        return x.flatten(3).transpose(-1, -2).contiguous()  # [T, B, D, H, W] -> [T, B, N, D]


class BESTformer(nn.Module):
    """Returns ``(logits [T, B, classes], maps)``; ``maps`` are the last block's attention maps
    while ``record_maps`` is on (an empty dict otherwise)."""

    def __init__(self, in_shape: Shape, neuron: NeuronBuilder, *, depth: int = 2,
                 dim: int = 64, heads: int = 4, stages: int = 3, patch_size: int = 2,
                 attention: str = "quadratic", mlp_ratio: int = 4, time_steps: int = 4,
                 classes: int = 10, binary: bool = True) -> None:
        super().__init__()
        pools = int(math.log2(patch_size)) if patch_size >= 1 else -1
        if pools < 0 or 2**pools != patch_size:
            raise ValueError(f"patch size {patch_size} is not a power of 2")
        if attention not in VARIANTS:
            raise ValueError(f"attention must be one of {VARIANTS}, got {attention!r}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.tokenizer = Tokenizer(in_shape, dim, neuron, stages=stages, pools=pools,
                                   binary=binary)
        self.blocks = nn.ModuleList(
            ReversibleBlock(dim, heads, neuron, mlp_ratio=mlp_ratio, variant=attention,
                            time_steps=time_steps, binary=binary, first=i == 0)
            for i in range(depth))
        self.head = nn.Linear(dim, classes)
        self.head2 = nn.Linear(dim, classes)
        self.keep_heads = False
        self.last_heads: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- structure -------------------------------------------------------------------------------
    def binary_layers(self) -> list[nn.Module]:
        """The layers that are binarised (every tokenizer conv but the first, Q/K/V/output
        projections, both MLP layers), whether ``binary`` is on now or not."""
        return [m for m in self.modules() if isinstance(m, BINARY_LAYERS)]

    def full_precision_layers(self) -> list[nn.Module]:
        """The layers BESTformer keeps in full precision: the first tokenizer conv and
        the two heads."""
        return [self.tokenizer.conv0, self.head, self.head2]

    @property
    def binary(self) -> bool:
        return all(m.binary for m in self.binary_layers())

    def set_binary(self, on: bool) -> None:
        """Switch every binarisable layer to binary (straight-through training) or back."""
        for m in self.binary_layers():
            m.set_binary(on)

    # -- forward ---------------------------------------------------------------------------------
    def streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The final streams ``(x0, x1)`` ``[T, B, N, D]`` and the last block's maps."""
        x0, x1 = None, self.tokenizer(x)
        maps: dict = {}
        for blk in self.blocks:
            x0, x1, maps = blk(x0, x1)
        return x0, x1, maps

    def head_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step logits of both heads, ``head(x0)`` and ``head2(x1)``, each ``[T, B, C]``."""
        x0, x1, _ = self.streams(x)
        return self.head(x0.mean(2)), self.head2(x1.mean(2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x0, x1, maps = self.streams(x)
        h0, h1 = self.head(x0.mean(2)), self.head2(x1.mean(2))
        self.last_heads = (h0, h1) if self.keep_heads else None
        return (h0 + h1) / 2, maps


def bestformer(in_shapes: list[Shape], neuron: NeuronBuilder, depth: int = 2, dim: int = 64,
               heads: int = 4, stages: int = 3, patch_size: int = 2,
               attention: str = "quadratic", mlp_ratio: int = 4, time_steps: int = 4,
               classes: int = 10, binary: bool = True) -> BESTformer:
    """AttentionSpec factory: an image ``[C, H, W]`` -> per-step logits ``[classes]``."""
    if len(in_shapes) != 1 or len(in_shapes[0]) != 3:
        raise ValueError(f"the BESTformer expects one [C, H, W] image input, got "
                         f"{[list(s) for s in in_shapes]}")
    return BESTformer(tuple(in_shapes[0]), neuron, depth=depth, dim=dim, heads=heads,
                      stages=stages, patch_size=patch_size, attention=attention,
                      mlp_ratio=mlp_ratio, time_steps=time_steps, classes=classes,
                      binary=binary)
