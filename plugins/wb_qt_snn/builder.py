"""A whole QT-SNN classifier as one node, and its full-precision binary-spike twin.

``ternary=True`` (QT-SNN): for each hidden width, a :class:`~wb_qt_snn.layers.QTLinear` (LSQ
weights of ``weight_bits``; a float bias only with ``bias``) and a
:class:`~wb_qt_snn.neuron.TernaryLIF` (``lam``, ``v_th``, ``membrane_bits``); then a QTLinear
read-out with a bias. ``ternary=False``: the same widths with plain float ``torch.nn.Linear``
layers and ``wb_core.lif_b`` neurons (binary spikes, float membrane, the same ``lam`` and
``v_th``): the comparison model.

``conv`` puts causal 1-D convolutions over time (:class:`~wb_qt_snn.layers.QTConv1d`, or the
float :class:`~wb_qt_snn.layers.CausalConv1d` in the twin) before the hidden linear layers, each
followed by the same neuron: ``"channels:kernel"`` (or ``"channels:kernel:dilation"``) per layer,
separated by commas, e.g. ``"32:5,32:5"``; empty (the default) adds none. The step's input
features (flattened) are the first convolution's channels.

The read-out runs at every time step and is pooled over time inside the node (``t_pool``):
``mean`` (the workbench's convention, the default), ``sum`` (the same argmax, T times the
logits), ``last`` (the logits of the last step only; a padded sequence's last step is the
end of its padding), or ``integrate`` (the read-out neurons integrate the logits over time and
their membrane is averaged, as :class:`~wb_qt_snn.layers.QTReadout` with ``integrate`` does:
step t weighs ``(T - t) / T``). The node returns one step ``[1, B, classes]``.

Without biases the hidden layers of a ternary network are an odd function of the input spikes
(``h(-s) = -h(s)``): classes that stay the same when the signal's sign flips (a random-phase
oscillation) cannot be told apart; ``bias`` breaks the symmetry (docs/qt_snn.md).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn
from wb_core.blocks import integrate_over_time
from wb_core.neurons import lif_b

from wb_qt_snn.layers import CausalConv1d, QTBlock, QTConv1d, QTLinear
from wb_qt_snn.neuron import TernaryLIF

Shape = tuple[int, ...]
T_POOLS = ("mean", "sum", "last", "integrate")


def parse_widths(hidden: str) -> tuple[int, ...]:
    """``"64,64"`` -> ``(64, 64)``; a ValueError saying what is wrong otherwise."""
    parts = [p.strip() for p in str(hidden).split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"hidden must be widths separated by commas, like '64,64'; got "
                         f"{hidden!r}") from None
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"hidden widths must be positive integers, got {hidden!r}")
    return widths


class ConvLayer(NamedTuple):
    channels: int
    kernel_size: int
    dilation: int = 1


def parse_convs(conv: str) -> tuple[ConvLayer, ...]:
    """``"32:5,16:3:2"`` -> ``(ConvLayer(32, 5), ConvLayer(16, 3, 2))``; ``""`` -> ``()``; a
    ValueError saying what is wrong otherwise."""
    text = str(conv).strip()
    if not text:
        return ()
    layers = []
    for part in text.split(","):
        fields = [f.strip() for f in part.split(":")]
        try:
            numbers = [int(f) for f in fields]
        except ValueError:
            numbers = []
        if len(numbers) not in (2, 3) or any(n < 1 for n in numbers):
            raise ValueError(f"conv must be channels:kernel (or channels:kernel:dilation) "
                             f"layers of positive integers separated by commas, like "
                             f"'32:5,32:5'; got {conv!r}")
        layers.append(ConvLayer(*numbers))
    return tuple(layers)


class QTSNNClassifier(nn.Module):
    """Hidden spiking layers and a read-out pooled over time; ``[T, B, ...] -> [1, B, K]``."""

    def __init__(self, in_features: int, widths: tuple[int, ...], classes: int, *,
                 ternary: bool, weight_bits: int, membrane_bits: int, lam: float,
                 v_th: float, t_pool: str, bias: bool = False,
                 convs: tuple[ConvLayer, ...] = ()) -> None:
        super().__init__()
        if t_pool not in T_POOLS:
            raise ValueError(f"t_pool must be one of {T_POOLS}, got {t_pool!r}")
        self.t_pool = t_pool
        self.ternary = bool(ternary)

        def neuron() -> nn.Module:
            if ternary:
                return TernaryLIF(lam=lam, v_th=v_th, membrane_bits=membrane_bits)
            return lif_b(lam=lam, theta=v_th)

        layers: list[nn.Module] = []
        features = in_features
        for c in convs:
            conv = (QTConv1d(features, c.channels, c.kernel_size, dilation=c.dilation,
                             bias=bias, weight_bits=weight_bits) if ternary
                    else CausalConv1d(features, c.channels, c.kernel_size, dilation=c.dilation,
                                      bias=bias))
            layers.append(QTBlock(OrderedDict(conv=conv, neuron=neuron())))
            features = c.channels
        for width in widths:
            fc = (QTLinear(features, width, bias=bias, weight_bits=weight_bits) if ternary
                  else nn.Linear(features, width, bias=bias))
            layers.append(QTBlock(OrderedDict(fc=fc, neuron=neuron())))
            features = width
        self.hidden = nn.Sequential(*layers)
        self.head = (QTLinear(features, classes, bias=True, weight_bits=weight_bits) if ternary
                     else nn.Linear(features, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.hidden(x.flatten(2)))  # [T, B, classes]
        if self.t_pool == "mean":
            return logits.mean(0, keepdim=True)
        if self.t_pool == "sum":
            return logits.sum(0, keepdim=True)
        if self.t_pool == "integrate":
            return integrate_over_time(logits).mean(0, keepdim=True)
        return logits[-1:]


def qt_snn(in_shapes: list[Shape], hidden: str = "64,64", classes: int = 10,
           ternary: bool = True, weight_bits: int = 4, membrane_bits: int = 4,
           lam: float = 0.5, v_th: float = 1.0, t_pool: str = "mean",
           bias: bool = False, conv: str = "") -> QTSNNClassifier:
    """Factory of ``wb_qt_snn.qt_snn``."""
    if len(in_shapes) != 1:
        raise ValueError(f"a QT-SNN classifier takes one input, got {len(in_shapes)}")
    in_features = 1
    for size in in_shapes[0]:
        in_features *= int(size)
    return QTSNNClassifier(in_features, parse_widths(hidden), classes, ternary=ternary,
                           weight_bits=weight_bits, membrane_bits=membrane_bits, lam=lam,
                           v_th=v_th, t_pool=t_pool, bias=bias, convs=parse_convs(conv))
