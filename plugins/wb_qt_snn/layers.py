"""QT-SNN's synaptic layers: a linear layer and a causal 1-D convolution over time whose
weights are quantised in every forward pass.

:class:`QTLinear` and :class:`QTConv1d` keep float ("latent") weights for training and apply
LSQ (one learnt step ``s_w`` per layer) or TTQ (two learnt magnitudes per layer) to them on the
fly (see :mod:`wb_qt_snn.quant`); what they share is :class:`QuantisedWeight`. They subclass
``torch.nn.Linear`` and ``torch.nn.Conv1d``, so the energy ledger counts them and the integer
converter finds them as the block's synapse (and refuses the convolution, below), and they
declare ``weight_bits``.

**Deployable integers.** ``weight_quant`` is a property: the current weights as a
``QuantizedTensor`` (LSQ codes ``q`` in ``-(2^(b-1)-1) .. 2^(b-1)-1``, one scale ``s_w`` repeated
per output channel), the record compression passes attach and the integer simulator reads. It
is computed from the live weights at every access, so it is never stale; the layer's float
``weight`` stays latent (it is not ``scale * q``), so a weights file stores the float weights
and the steps as parameters, and a record assigned to the layer (``attach`` after loading
packed weights) is not kept: the layer keeps deriving its own. A TTQ layer has no record
(``None``): its two magnitudes are not one scale times integers.

**The convolution over time.** A sample's signal arrives as ternary spikes ``[T, B, C]``: one
``[C]`` vector per step. :class:`CausalConv1d` convolves along T itself::

    out[t, b, o] = sum_{c, k} W[o, c, k] * x[t - (K-1-k) * dilation, b, c]     (+ bias[o])

with steps before 0 read as 0 (the input is left-padded by ``(K-1) * dilation`` zeros), so T
is kept and an output never depends on a later input: the network still runs step by step.
``W[o, c, K-1]`` weighs the current step, ``W[o, c, 0]`` the oldest one in the window (the
layout ``torch.nn.functional.conv1d`` uses). Running it online takes a window of the last
``(K-1) * dilation`` input steps per channel (a delay line), which the integer simulator and
the FPGA core do not keep.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from wb_core.blocks import integrate_over_time

from wb_qt_snn.quant import (
    TTQ_THRESHOLD,
    lsq,
    lsq_codes,
    lsq_initial_scale,
    ttq,
    ttq_initial_magnitude,
    usable_scale,
)
from workbench.pluginhost import QuantizedTensor

Shape = tuple[int, ...]
WEIGHT_QUANTS = ("lsq", "ttq")


def check_weight_quant(weight_quant: str) -> None:
    """A ValueError unless ``weight_quant`` is one of :data:`WEIGHT_QUANTS`."""
    if weight_quant not in WEIGHT_QUANTS:
        raise ValueError(f"weight_quant must be one of {WEIGHT_QUANTS}, got {weight_quant!r}")


class QuantisedWeight:
    """Mixin for a torch layer with a ``weight`` (``nn.Linear``, ``nn.Conv1d``): LSQ
    (``weight_bits``) or TTQ (ternary) weights, the ``weight_bits`` and ``weight_quant``
    properties. The layer calls :meth:`_quantise_weights` once its ``weight`` exists and uses
    :meth:`quantized_weight` in its forward pass."""

    weight: nn.Parameter

    def _quantise_weights(self, weight_bits: int, weight_quant: str, ttq_threshold: float,
                          pow2_scales: bool) -> None:
        check_weight_quant(weight_quant)
        self.weight_quant_method = weight_quant
        self.ttq_threshold = float(ttq_threshold)
        self.pow2_scales = bool(pow2_scales)  # the step used: the nearest power of two
        # three values for TTQ: -W_n, 0, +W_p
        self.bits = int(weight_bits) if weight_quant == "lsq" else 2
        if weight_quant == "lsq":
            self.weight_scale = nn.Parameter(lsq_initial_scale(self.weight, self.bits))
        else:
            start = ttq_initial_magnitude(self.weight, self.ttq_threshold)
            self.ttq_pos = nn.Parameter(start.clone())
            self.ttq_neg = nn.Parameter(start.clone())

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses (differentiable towards the latent weight and the
        learnt steps)."""
        if self.weight_quant_method == "lsq":
            return lsq(self.weight, self.weight_scale.to(self.weight.dtype), self.bits,
                       self.weight.numel(), self.pow2_scales)
        return ttq(self.weight, self.ttq_pos, self.ttq_neg, self.ttq_threshold)

    @property
    def weight_bits(self) -> int:
        """The width of the weights (size counts and energy pricing read it). A property, so
        that forgetting a compression record (``detach_quant``) cannot remove it."""
        return self.bits

    @weight_bits.setter
    def weight_bits(self, value: Any) -> None:
        pass  # ``attach`` sets it to the record's bits: this layer's own, by construction

    @property
    def weight_quant(self) -> QuantizedTensor | None:
        """The current weights as integer codes and their scale (None for TTQ)."""
        if self.weight_quant_method != "lsq":
            return None
        with torch.no_grad():
            codes = lsq_codes(self.weight, self.weight_scale, self.bits, self.pow2_scales).cpu()
            scale = usable_scale(self.weight_scale.detach(), self.pow2_scales).float().cpu()
        return QuantizedTensor.from_ints(codes, scale.expand(codes.shape[0]).clone(), self.bits)

    @weight_quant.setter
    def weight_quant(self, value: Any) -> None:
        # ``attach`` assigns a record after loading packed weights: the weight it wrote is
        # already on this layer's grid and the step comes from the file's parameters, so the
        # live record equals it; nothing to keep.
        pass

    def _quant_repr(self) -> str:
        return (f"weights=lsq({self.bits} bits)" if self.weight_quant_method == "lsq"
                else f"weights=ttq(t={self.ttq_threshold:g})")


class QTLinear(QuantisedWeight, nn.Linear):
    """Linear layer with LSQ (``weight_bits``) or TTQ (ternary) weights; ``[..., D]`` in."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 weight_bits: int = 4, weight_quant: str = "lsq",
                 ttq_threshold: float = TTQ_THRESHOLD, pow2_scales: bool = True) -> None:
        check_weight_quant(weight_quant)
        super().__init__(in_features, out_features, bias=bias)
        self._quantise_weights(weight_bits, weight_quant, ttq_threshold, pow2_scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class CausalConv1d(nn.Conv1d):
    """A float causal convolution over time: ``[T, B, C_in] -> [T, B, C_out]`` (module
    docstring). ``padding`` stays 0: the zeros go before step 0 only (:meth:`conv_input`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1, bias: bool = False) -> None:
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("dilation", dilation)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        super().__init__(int(in_channels), int(out_channels), int(kernel_size),
                         dilation=int(dilation), bias=bias)

    @property
    def history(self) -> int:
        """How many past input steps an output reads besides the current one."""
        return (self.kernel_size[0] - 1) * self.dilation[0]

    def conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """Time-major ``x[T, B, C_in]`` as the convolution reads it: ``[B, C_in, history + T]``,
        zeros before step 0. The energy ledger counts receptive fields on it."""
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise ValueError(f"a causal 1-D convolution over time takes [T, B, {self.in_channels}]"
                             f" (one [C] vector per step), got {list(x.shape)}")
        return F.pad(x.permute(1, 2, 0), (self.history, 0))

    def _convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        out = F.conv1d(self.conv_input(x), weight, self.bias, dilation=self.dilation)
        return out.permute(2, 0, 1)  # [B, C_out, T] -> [T, B, C_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x, self.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, causal over time"


class QTConv1d(QuantisedWeight, CausalConv1d):
    """Causal 1-D convolution over time with LSQ (``weight_bits``) or TTQ (ternary) weights;
    ``[T, B, C_in] -> [T, B, C_out]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1, bias: bool = False, weight_bits: int = 4,
                 weight_quant: str = "lsq", ttq_threshold: float = TTQ_THRESHOLD,
                 pow2_scales: bool = True) -> None:
        check_weight_quant(weight_quant)
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self._quantise_weights(weight_bits, weight_quant, ttq_threshold, pow2_scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x, self.quantized_weight())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class QTBlock(nn.Sequential):
    """A QT-SNN layer: quantised synapse (linear or causal conv), then a neuron."""


def _flat_features(in_shapes: list[Shape], what: str) -> int:
    if len(in_shapes) != 1:
        raise ValueError(f"{what} takes one input, got {len(in_shapes)}")
    shape = in_shapes[0]
    if len(shape) not in (1, 2):
        raise ValueError(f"{what} expects a flat [D] (or token [N, D]) input, got "
                         f"{list(shape)}; put a Flatten before it")
    return int(shape[-1])


def qt_linear(in_shapes: list[Shape], neuron: Callable[[], nn.Module], out_features: int = 128,
              weight_bits: int = 4, weight_quant: str = "lsq", bias: bool = False,
              pow2_scales: bool = True) -> QTBlock:
    """Factory of ``wb_qt_snn.qt_linear``: ``QTLinear -> neuron``."""
    features = _flat_features(in_shapes, "a QT-SNN linear block")
    fc = QTLinear(features, out_features, bias=bias, weight_bits=weight_bits,
                  weight_quant=weight_quant, pow2_scales=pow2_scales)
    return QTBlock(OrderedDict(fc=fc, neuron=neuron()))


def qt_conv1d(in_shapes: list[Shape], neuron: Callable[[], nn.Module], out_channels: int = 32,
              kernel_size: int = 5, dilation: int = 1, weight_bits: int = 4,
              weight_quant: str = "lsq", bias: bool = False, pow2_scales: bool = True) -> QTBlock:
    """Factory of ``wb_qt_snn.qt_conv1d``: ``QTConv1d -> neuron``, over time; each step's
    input must be one flat ``[C]`` vector (the channels)."""
    if len(in_shapes) != 1:
        raise ValueError(f"a QT-SNN 1-D convolution takes one input, got {len(in_shapes)}")
    shape = in_shapes[0]
    if len(shape) != 1:
        raise ValueError(f"a QT-SNN 1-D convolution runs over time and expects one flat [C] "
                         f"vector per step (a sequence encoder's channels), got {list(shape)}; "
                         "put a Flatten before it")
    conv = QTConv1d(int(shape[0]), out_channels, kernel_size, dilation=dilation, bias=bias,
                    weight_bits=weight_bits, weight_quant=weight_quant, pow2_scales=pow2_scales)
    return QTBlock(OrderedDict(conv=conv, neuron=neuron()))


class QTReadout(QTLinear):
    """The read-out: a :class:`QTLinear` at every time step, optionally **integrating**.

    With ``integrate`` the read-out neurons are non-leaky integrators that never fire: their
    membrane ``U[t] = U[t-1] + (W s[t] + b) / T`` is the output at step t
    (``wb_core.blocks.integrate_over_time``, also behind ``wb_core.linear``'s ``integrate``),
    so the workbench's mean over time weighs step t by ``(T - t) / T``. This is the membrane
    read-out of many time-series SNNs; it lets a network that sees only changes (TAE spikes)
    weigh the level a signal reaches early on. Without it each step's ``W s[t] + b`` is the
    output, and the mean over time weighs every step alike.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_bits: int = 4, pow2_scales: bool = True, integrate: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias, weight_bits=weight_bits,
                         pow2_scales=pow2_scales)
        self.integrate = bool(integrate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return integrate_over_time(y) if self.integrate else y

    def extra_repr(self) -> str:
        return super().extra_repr() + (", integrating" if self.integrate else "")


def qt_readout(in_shapes: list[Shape], out_features: int = 10, weight_bits: int = 4,
               bias: bool = True, pow2_scales: bool = True, integrate: bool = False
               ) -> QTReadout:
    """Factory of ``wb_qt_snn.qt_readout``: a linear read-out with LSQ weights (no neuron),
    integrating over time with ``integrate``."""
    features = _flat_features(in_shapes, "a QT-SNN read-out")
    return QTReadout(features, out_features, bias=bias, weight_bits=weight_bits,
                     pow2_scales=pow2_scales, integrate=integrate)
