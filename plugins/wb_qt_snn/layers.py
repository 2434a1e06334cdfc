"""QT-SNN's synaptic layer: a linear layer whose weights are quantised in every forward pass.

:class:`QTLinear` keeps float ("latent") weights for training and applies LSQ (one learnt step
``s_w`` per layer) or TTQ (two learnt magnitudes per layer) to them on the fly (see
:mod:`wb_qt_snn.quant`). It subclasses ``torch.nn.Linear``, so the energy ledger counts it and
the integer converter finds it as the block's synapse, and it declares ``weight_bits``.

**Deployable integers.** ``weight_quant`` is a property: the current weights as a
``QuantizedTensor`` (LSQ codes ``q`` in ``-(2^(b-1)-1) .. 2^(b-1)-1``, one scale ``s_w`` repeated
per output channel), the record compression passes attach and the integer simulator reads. It
is computed from the live weights at every access, so it is never stale; the layer's float
``weight`` stays latent (it is not ``scale * q``), so a weights file stores the float weights
and the steps as parameters, and a record assigned to the layer (``attach`` after loading
packed weights) is not kept: the layer keeps deriving its own. A TTQ layer has no record
(``None``): its two magnitudes are not one scale times integers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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


class QTLinear(nn.Linear):
    """Linear layer with LSQ (``weight_bits``) or TTQ (ternary) weights; ``[..., D]`` in."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 weight_bits: int = 4, weight_quant: str = "lsq",
                 ttq_threshold: float = TTQ_THRESHOLD, pow2_scales: bool = True) -> None:
        if weight_quant not in WEIGHT_QUANTS:
            raise ValueError(f"weight_quant must be one of {WEIGHT_QUANTS}, got {weight_quant!r}")
        super().__init__(in_features, out_features, bias=bias)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

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
        return QuantizedTensor.from_ints(codes, scale.expand(self.out_features).clone(),
                                         self.bits)

    @weight_quant.setter
    def weight_quant(self, value: Any) -> None:
        # ``attach`` assigns a record after loading packed weights: the weight it wrote is
        # already on this layer's grid and the step comes from the file's parameters, so the
        # live record equals it; nothing to keep.
        pass

    def extra_repr(self) -> str:
        quant = (f"lsq({self.bits} bits)" if self.weight_quant_method == "lsq"
                 else f"ttq(t={self.ttq_threshold:g})")
        return f"{super().extra_repr()}, weights={quant}"


class QTBlock(nn.Sequential):
    """A QT-SNN layer: quantised linear synapse, then a neuron."""


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


def qt_readout(in_shapes: list[Shape], out_features: int = 10, weight_bits: int = 4,
               bias: bool = True, pow2_scales: bool = True) -> QTLinear:
    """Factory of ``wb_qt_snn.qt_readout``: a linear read-out with LSQ weights (no neuron)."""
    features = _flat_features(in_shapes, "a QT-SNN read-out")
    return QTLinear(features, out_features, bias=bias, weight_bits=weight_bits,
                    pow2_scales=pow2_scales)
