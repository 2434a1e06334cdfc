"""Layers and spiking blocks on time-major ``[T, B, ...]`` tensors.

Stateless layers are the torch layers themselves, applied to ``x.flatten(0, 1)`` and reshaped
back (docs/wb_core.md: BatchNorm therefore normalises over ``T·B·H·W`` jointly). They subclass
the torch classes, so parameter names stay plain (``conv1.weight``) and the energy ledger, which
looks for ``torch.nn.Conv2d`` / ``torch.nn.Linear``, counts them without help.

Every factory takes ``in_shapes`` (per-sample shapes, no ``T``/``B``) and the spec's params and
checks the shape first, so a mistake reads "expects a [C, H, W] input, got [64]".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

Shape = tuple[int, ...]


class _TimeFlattened:
    """Mixin: run the wrapped layer on ``[T*B, ...]`` and restore ``[T, B, ...]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x.flatten(0, 1))  # type: ignore[misc]
        return y.unflatten(0, x.shape[:2])


class Conv2d(_TimeFlattened, nn.Conv2d):
    pass


class BatchNorm2d(_TimeFlattened, nn.BatchNorm2d):
    pass


class BatchNorm1d(_TimeFlattened, nn.BatchNorm1d):
    pass


class AvgPool2d(_TimeFlattened, nn.AvgPool2d):
    pass


class MaxPool2d(_TimeFlattened, nn.MaxPool2d):
    pass


class Flatten(nn.Flatten):
    """Flattens each sample: ``[T, B, C, H, W] -> [T, B, C*H*W]``."""

    def __init__(self) -> None:
        super().__init__(start_dim=2)


class Add(nn.Module):
    """Residual add of two equally shaped inputs."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class MeanOverTime(nn.Module):
    """Read-out: the mean over time, kept as a single step ``[1, B, ...]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(0, keepdim=True)


class SpikingBlock(nn.Sequential):
    """A synaptic layer, optional batch norm, and a spiking neuron."""


def _one(in_shapes: list[Shape]) -> Shape:
    return in_shapes[0]


def _need_image(shape: Shape, what: str) -> None:
    if len(shape) != 3:
        raise ValueError(f"{what} expects a [C, H, W] input, got {list(shape)}")


def _need_flat(shape: Shape, what: str) -> None:
    if len(shape) not in (1, 2):
        raise ValueError(
            f"{what} expects a flat [D] (or token [N, D]) input, got {list(shape)}; "
            "put a Flatten before it"
        )


def _conv(shape: Shape, out_channels: int, kernel_size: int, stride: int, padding: int,
          bias: bool) -> Conv2d:
    _need_image(shape, "a convolution")
    if shape[1] + 2 * padding < kernel_size or shape[2] + 2 * padding < kernel_size:
        raise ValueError(f"kernel {kernel_size} is larger than the padded input {list(shape)}")
    return Conv2d(shape[0], out_channels, kernel_size, stride=stride, padding=padding, bias=bias)


def conv2d(in_shapes: list[Shape], out_channels: int = 16, kernel_size: int = 3, stride: int = 1,
           padding: int = 1, bias: bool = True) -> Conv2d:
    return _conv(_one(in_shapes), out_channels, kernel_size, stride, padding, bias)


def integrate_over_time(y: torch.Tensor) -> torch.Tensor:
    """A read-out's per-step output ``y[T, B, C]`` -> the membrane of integrating read-out
    neurons that never fire, ``U[t] = U[t-1] + y[t] / T``. The workbench's mean over time then
    weighs step t by ``(T - t) / T``: early evidence more than late. The ``1 / T`` keeps the
    scores' size independent of T. A tensor without a time axis is returned as is."""
    return y.cumsum(0) / y.shape[0] if y.dim() >= 3 else y


class IntegratingLinear(nn.Linear):
    """A linear read-out whose neurons integrate over time (:func:`integrate_over_time`)."""

    integrate = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return integrate_over_time(super().forward(x))


def linear(in_shapes: list[Shape], out_features: int = 10, bias: bool = True,
           integrate: bool = False) -> nn.Linear:
    shape = _one(in_shapes)
    _need_flat(shape, "a linear layer")
    cls = IntegratingLinear if integrate else nn.Linear
    return cls(shape[-1], out_features, bias=bias)


def _pool(cls, in_shapes: list[Shape], kernel_size: int, stride: int):
    shape = _one(in_shapes)
    _need_image(shape, "pooling")
    if shape[1] < kernel_size or shape[2] < kernel_size:
        raise ValueError(f"pooling window {kernel_size} is larger than the input {list(shape)}")
    return cls(kernel_size, stride=stride or kernel_size)


def avg_pool(in_shapes: list[Shape], kernel_size: int = 2, stride: int = 0) -> AvgPool2d:
    return _pool(AvgPool2d, in_shapes, kernel_size, stride)


def max_pool(in_shapes: list[Shape], kernel_size: int = 2, stride: int = 0) -> MaxPool2d:
    return _pool(MaxPool2d, in_shapes, kernel_size, stride)


def batch_norm(in_shapes: list[Shape], momentum: float = 0.1, eps: float = 1e-5) -> nn.Module:
    shape = _one(in_shapes)
    if len(shape) == 3:
        return BatchNorm2d(shape[0], eps=eps, momentum=momentum)
    if len(shape) == 1:
        return BatchNorm1d(shape[0], eps=eps, momentum=momentum)
    raise ValueError(f"batch norm expects [C, H, W] or [D], got {list(shape)}")


def flatten(in_shapes: list[Shape]) -> Flatten:
    return Flatten()


def dropout(in_shapes: list[Shape], p: float = 0.5) -> nn.Dropout:
    return nn.Dropout(p)


def add(in_shapes: list[Shape]) -> Add:
    a, b = in_shapes
    if a != b:
        raise ValueError(f"residual add needs equal shapes, got {list(a)} and {list(b)}")
    return Add()


def mean_readout(in_shapes: list[Shape]) -> MeanOverTime:
    return MeanOverTime()


def spiking_conv(in_shapes: list[Shape], neuron: Callable[[], nn.Module], out_channels: int = 16,
                 kernel_size: int = 3, stride: int = 1, padding: int = 1,
                 batch_norm: bool = True) -> SpikingBlock:
    """Conv -> (BatchNorm) -> neuron; the conv has no bias when batch norm follows it."""
    parts: dict[str, nn.Module] = {
        "conv": _conv(_one(in_shapes), out_channels, kernel_size, stride, padding,
                      bias=not batch_norm)
    }
    if batch_norm:
        parts["bn"] = BatchNorm2d(out_channels)
    parts["neuron"] = neuron()
    return SpikingBlock(OrderedDict(parts))


def spiking_linear(in_shapes: list[Shape], neuron: Callable[[], nn.Module],
                   out_features: int = 128, batch_norm: bool = False) -> SpikingBlock:
    """Linear -> (BatchNorm) -> neuron."""
    shape = _one(in_shapes)
    _need_flat(shape, "a spiking linear block")
    if batch_norm and len(shape) != 1:
        raise ValueError("batch norm in a spiking linear block needs a flat [D] input")
    parts: dict[str, nn.Module] = {"fc": nn.Linear(shape[-1], out_features, bias=not batch_norm)}
    if batch_norm:
        parts["bn"] = BatchNorm1d(out_features)
    parts["neuron"] = neuron()
    return SpikingBlock(OrderedDict(parts))
