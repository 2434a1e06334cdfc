"""CIFAR-style spiking ResNet with option-A shortcuts, as one node (QP-SNN's ResNet20).

Stem ``Conv3×3 -> BN -> neuron``, then stages of basic blocks
``neuron(BN(conv2(neuron(BN(conv1(x))))) + shortcut(x))`` (the residual is added before the
block's last neuron), a global average pool and a linear classifier. The first block of every
stage after the first halves H and W. Shortcuts are parameter-free ("option A"): subsample
``[::2, ::2]`` when the block strides, then zero-pad the channels to the block's width,
``(out − in) // 2`` in front and the rest behind. Every width is a parameter, so a pruned network
is the same node with smaller numbers.

The module describes its own inside (:meth:`ResNet.prunable_parts`), so the pruning surgery can
treat its convs, adds and shortcuts as it treats the nodes of a graph.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from wb_qp_snn.surgery import Part

Shape = tuple[int, ...]
NeuronBuilder = Callable[[], nn.Module]


class Conv2d(nn.Conv2d):
    """``[T, B, C, H, W]`` convolution, applied at every step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class BatchNorm2d(nn.BatchNorm2d):
    """Batch norm over ``T·B·H·W`` jointly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class OptionA(nn.Module):
    """Parameter-free shortcut ``[T, B, C_in, H, W] -> [T, B, C_out, H/s, W/s]``.

    Subsamples by ``stride``, then pads ``(out − in) // 2`` zero channels in front and the rest
    behind; a negative pad crops (a pruned network can have ``out < in``). With ``in == out``
    and stride 1 it is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    @property
    def identity(self) -> bool:
        return self.in_channels == self.out_channels and self.stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[..., ::self.stride, ::self.stride]
        grow = self.out_channels - self.in_channels
        if grow == 0:
            return x
        front = grow // 2
        return F.pad(x, (0, 0, 0, 0, front, grow - front))


def _spiking_conv(c_in: int, c_out: int, stride: int, neuron: NeuronBuilder) -> nn.Sequential:
    return nn.Sequential(OrderedDict(conv=Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                                     bn=BatchNorm2d(c_out), neuron=neuron()))


class BasicBlock(nn.Module):
    """``neuron(BN(conv2(neuron(BN(conv1(x))))) + shortcut(x))``."""

    def __init__(self, c_in: int, inner: int, c_out: int, stride: int,
                 neuron: NeuronBuilder) -> None:
        super().__init__()
        self.conv1 = _spiking_conv(c_in, inner, stride, neuron)
        self.conv2 = nn.Sequential(OrderedDict(conv=Conv2d(inner, c_out, 3, 1, 1, bias=False),
                                               bn=BatchNorm2d(c_out)))
        self.shortcut = OptionA(c_in, c_out, stride)
        self.neuron = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.conv2(self.conv1(x)) + self.shortcut(x))


class GlobalAvgPool(nn.Module):
    """``[T, B, C, H, W] -> [T, B, C]``: the mean over H and W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((-2, -1))


class ResNet(nn.Module):
    """Returns per-step logits ``[T, B, classes]``."""

    def __init__(self, in_channels: int, neuron: NeuronBuilder, *, stem_width: int,
                 stage_widths: list[int], blocks: int, inner_widths: list[int],
                 classes: int) -> None:
        super().__init__()
        self.stem_width, self.stage_widths = stem_width, list(stage_widths)
        self.inner_widths = list(inner_widths)
        self.stem = _spiking_conv(in_channels, stem_width, 1, neuron)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = stem_width
        for s, out in enumerate(stage_widths):
            for b in range(blocks):
                stride = 2 if s > 0 and b == 0 else 1
                layers[f"s{s + 1}b{b + 1}"] = BasicBlock(width, inner_widths[len(layers)], out,
                                                         stride, neuron)
                width = out
        self.blocks = nn.Sequential(layers)
        self.pool = GlobalAvgPool()
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))))

    def prunable_parts(self) -> list[Part]:
        """The inside as the pruning surgery reads it, in execution order."""
        parts = [Part("stem", "conv", [""], spiking=True)]
        last = "stem"
        for name in self.blocks._modules:
            block = f"blocks.{name}"
            parts += [Part(f"{block}.conv1", "conv", [last], spiking=True),
                      Part(f"{block}.conv2", "conv", [f"{block}.conv1"]),
                      Part(f"{block}.shortcut", "shortcut", [last]),
                      Part(f"{block}.add", "add", [f"{block}.conv2", f"{block}.shortcut"]),
                      Part(f"{block}.neuron", "neuron", [f"{block}.add"])]
            last = f"{block}.neuron"
        return parts + [Part("pool", "flatten", [last]), Part("fc", "linear", ["pool"])]

    def resized(self, widths: dict[str, int]) -> dict[str, object]:
        """The node parameters that give the parts in ``widths`` those output widths."""
        stem, stages, inner = self.stem_width, list(self.stage_widths), list(self.inner_widths)
        per_stage = len(inner) // len(stages)
        names = list(self.blocks._modules)
        for part, width in widths.items():
            if part == "stem":
                stem = width
                continue
            index = names.index(part.split(".")[1])
            if part.endswith(".conv1"):
                inner[index] = width
            elif part.endswith(".conv2"):
                stages[index // per_stage] = width
            # a shortcut's width follows its block's: nothing of its own to write
        return {"stem_width": stem, "stage_widths": _text(stages), "inner_widths": _text(inner)}


def _text(values: list[int]) -> str:
    return ",".join(str(v) for v in values)


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{name} must be positive whole numbers separated by commas "
                         f"(e.g. 16,32,64), got {text!r}")
    return values


def resnet(in_shapes: list[Shape], neuron: NeuronBuilder, stem_width: int = 16,
           stage_widths: str = "16,32,64", blocks: int = 3, inner_widths: str = "",
           classes: int = 10) -> ResNet:
    """The block factory: ``stage_widths`` and ``inner_widths`` are comma-separated lists;
    an empty ``inner_widths`` makes each block's first conv as wide as its stage."""
    if len(in_shapes) != 1 or len(in_shapes[0]) != 3:
        raise ValueError(f"the ResNet expects one [C, H, W] image input, got "
                         f"{[list(s) for s in in_shapes]}")
    stages = _ints(stage_widths, "stage_widths")
    if inner_widths.strip():
        inner = _ints(inner_widths, "inner_widths")
        if len(inner) != len(stages) * blocks:
            raise ValueError(f"inner_widths lists {len(inner)} widths, but {len(stages)} "
                             f"stage(s) of {blocks} block(s) need {len(stages) * blocks}")
    else:
        inner = [w for w in stages for _ in range(blocks)]
    return ResNet(in_shapes[0][0], neuron, stem_width=stem_width, stage_widths=stages,
                  blocks=blocks, inner_widths=inner, classes=classes)


def shortcut_a(in_shapes: list[Shape], out_channels: int = 16, stride: int = 1) -> OptionA:
    """The option-A shortcut as a node of its own, for residual graphs wired by hand."""
    if len(in_shapes) != 1 or len(in_shapes[0]) != 3:
        raise ValueError(f"the option-A shortcut expects one [C, H, W] input, got "
                         f"{[list(s) for s in in_shapes]}")
    return OptionA(in_shapes[0][0], out_channels, stride)
