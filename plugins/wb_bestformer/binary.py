"""Binary weights (docs/bestformer.md): per-output-channel standardisation, then the sign.

For every binarised layer and output channel ``c``::

    W_std[c] = (W[c] - mean(W[c])) / std(W[c])     # std unbiased (torch's default)
    W_b[c]   = sign(W_std[c])                      # in {-1, +1}; sign(0) -> +1 [R]
    backward : identity straight-through from W_b to W_std, then autograd through the
               standardisation (no clipping)

No scaling factor: a batch norm follows every binarised layer of the BESTformer. Two readings of
ours [R]: ``torch.sign(0) = 0`` would make a third level, so an exact zero maps to ``+1``; and a
channel whose entries are all equal cannot be standardised (std 0), so it keeps the signs of its
raw values (an all ``-1`` channel stays ``-1``).

The layers keep a float *latent* weight (what the optimiser updates) and use its binarised value
in the forward pass while ``binary`` is on. :func:`freeze` turns a layer into a real 1-bit
layer: the weight becomes the ``±1`` values, recorded as a
:class:`~workbench.core.quantized.QuantizedTensor` (codes 0/1, ``q = -1 + 2·k``), so the
project stores it packed at 1 bit and :mod:`workbench.core.info` counts it at 1 bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.pluginhost import QuantizedTensor, attach, detach_quant


class _SignSTE(torch.autograd.Function):
    """``sign`` with ``sign(0) = +1`` forward, identity backward."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad


def standardize(weight: torch.Tensor) -> torch.Tensor:
    """``(W[c] - mean) / std`` per output channel (dim 0); constant channels keep their raw
    values (std 0 cannot be divided by)."""
    flat = weight.flatten(1)
    correction = 1 if flat.shape[1] > 1 else 0  # one weight per channel: no unbiased std
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, keepdim=True, correction=correction)
    constant = std == 0
    scaled = (flat - mean) / torch.where(constant, torch.ones_like(std), std)
    return torch.where(constant, flat, scaled).view_as(weight)


def binarize(weight: torch.Tensor) -> torch.Tensor:
    """The ``±1`` weights (docs/bestformer.md), with the straight-through gradient."""
    return _SignSTE.apply(standardize(weight))


def channel_scale(weight: torch.Tensor) -> torch.Tensor:
    """``mean |W[c]|`` per output channel: the XNOR-Net scale used by :mod:`wb_bestformer.fakequant`
    for layers that no batch norm follows."""
    return weight.detach().abs().flatten(1).mean(1)


def binary_quant(weight: torch.Tensor, scale: torch.Tensor | None = None) -> QuantizedTensor:
    """The frozen record of ``binarize(weight)``: 1-bit codes, ``q ∈ {-1, +1}``, per-channel
    ``scale`` (ones by default: a batch norm follows)."""
    with torch.no_grad():
        q = binarize(weight.detach().float())
    if scale is None:
        scale = torch.ones(q.shape[0])
    return QuantizedTensor.from_ints(q, scale, bits=1, q_step=2, q_zero=-1)


class _Binary:
    """Mixin for Conv/Linear layers: a ``binary`` switch and the weight the forward uses."""

    weight: nn.Parameter

    def set_binary(self, on: bool) -> None:
        """Switch fake-quant on (the forward uses ``binarize(weight)``) or off (the float
        weight). On, the layer declares ``weight_bits = 1`` (the size rule of docs/wb_core.md
        counts binarised weights at 1 bit: the latent float weight is a training device, never
        used)."""
        self.binary = bool(on)
        if on:
            self.weight_bits = 1
        elif not self.frozen:
            detach_quant(self)  # type: ignore[arg-type]

    @property
    def frozen(self) -> bool:
        """True once :func:`freeze` (or loading packed weights) made the weight exactly ``±1``."""
        return isinstance(getattr(self, "weight_quant", None), QuantizedTensor)

    def effective_weight(self) -> torch.Tensor:
        if self.binary and not self.frozen:
            return binarize(self.weight)
        return self.weight


class BinaryLinear(_Binary, nn.Linear):
    """``nn.Linear`` with binary weights while ``binary`` is on (a 1×1 conv on tokens)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *,
                 binary: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.set_binary(binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


class BinaryConv1d(_Binary, nn.Conv1d):
    """``nn.Conv1d`` with binary weights; accepts ``[B, C, L]`` or time-major ``[T, B, C, L]``."""

    def __init__(self, *args, binary: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_binary(binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return self.forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return self._conv_forward(x, self.effective_weight(), self.bias)


class BinaryConv2d(_Binary, nn.Conv2d):
    """``nn.Conv2d`` with binary weights; accepts ``[B, C, H, W]`` or ``[T, B, C, H, W]``."""

    def __init__(self, *args, binary: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_binary(binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return self.forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return self._conv_forward(x, self.effective_weight(), self.bias)


BINARY_LAYERS = (BinaryLinear, BinaryConv1d, BinaryConv2d)


def freeze(module: nn.Module) -> QuantizedTensor:
    """Make a binary layer's weight exactly ``binarize(weight)`` and record it as 1-bit."""
    if not isinstance(module, BINARY_LAYERS):
        raise TypeError(f"{type(module).__name__} is not a binary layer")
    if module.frozen:
        return module.weight_quant
    quant = binary_quant(module.weight)
    module.binary = True
    attach(module, quant)
    return quant
