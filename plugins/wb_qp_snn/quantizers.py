"""QP-SNN's weight quantisers: the vanilla uniform baseline and ReScaW (docs/qp_snn.md).

Both map a weight onto ``s + 1`` levels, ``s = 2**bits - 1``, spread evenly over ``[-γ, γ]``::

    k     = round( s/2 * (clamp(W/γ, -1, 1) + 1) )      # level index, 0 .. s
    W_hat = γ * (2k/s - 1) = (γ/s) * (2k - s)           # odd multiples of γ/s: 0 is no level

ReScaW takes γ from the weights (mean |W| by default, per output channel); the vanilla
quantiser is the same with γ = 1. Frozen weights are stored as integers ``q = 2k - s`` with
scale ``γ/s`` (a :class:`~workbench.core.quantized.QuantizedTensor`).

During fine-tuning the weights stay float ("latent") and the forward pass sees their quantised
values through a :mod:`torch.nn.utils.parametrize` parametrization (:func:`fake_quantize`); the
backward pass is a straight-through estimator, clipped as in the paper (``ste="paper"``) or
unclipped and divided by γ as in the authors' code (``ste="code"``). :func:`freeze` ends it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from workbench.pluginhost import QuantizedTensor, attach, detach_quant

GAMMAS = ("mean", "max", "percentile")
GRANULARITIES = ("channel", "layer")
STES = ("paper", "code")
METHODS = ("rescaw", "uniform")
#: x of the percentile scale Ψ_x(W) = max(|P_{1-x}(W)|, |P_x(W)|); the paper gives none [R]
PERCENTILE = 0.99
#: γ of an all-zero channel; keeps W/γ finite (its weights then quantise to ±tiny)
_TINY_GAMMA = 1e-12


def intervals(bits: int) -> int:
    """``s(b) = 2**b - 1``: the number of steps between the lowest and the highest level."""
    if not 1 <= int(bits) <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    return 2 ** int(bits) - 1


def _percentile(rows: torch.Tensor, x: float) -> torch.Tensor:
    """Per-row ``x``-quantile with linear interpolation (numpy's default), via a sort: unlike
    ``torch.quantile`` it has no size limit."""
    ordered = rows.sort(dim=1).values
    pos = x * (rows.shape[1] - 1)
    lo = int(pos)
    hi = min(lo + 1, rows.shape[1] - 1)
    frac = pos - lo
    return ordered[:, lo] * (1 - frac) + ordered[:, hi] * frac


def scale_of(weight: torch.Tensor, gamma: str = "mean", granularity: str = "channel",
             percentile: float = PERCENTILE) -> torch.Tensor:
    """ReScaW's γ, one value per output channel ``[C]`` (repeated when per layer), detached.

    ``mean``: mean |W| (the paper's default); ``max``: max |W|; ``percentile``:
    ``max(|P_{1-x}(W)|, |P_x(W)|)`` with ``x = percentile``.
    """
    if gamma not in GAMMAS:
        raise ValueError(f"gamma must be one of {GAMMAS}, got {gamma!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    w = weight.detach()
    channels = w.shape[0]
    rows = w.reshape(channels, -1) if granularity == "channel" else w.reshape(1, -1)
    if gamma == "mean":
        g = rows.abs().mean(1)
    elif gamma == "max":
        g = rows.abs().amax(1)
    else:
        g = torch.maximum(_percentile(rows, 1.0 - percentile).abs(),
                          _percentile(rows, percentile).abs())
    return g.expand(channels).clamp_min(_TINY_GAMMA).clone()


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


def level_indices(weight: torch.Tensor, gamma: torch.Tensor, bits: int) -> torch.Tensor:
    """``k = round(s/2 · (clamp(W/γ, -1, 1) + 1))`` in ``0..s`` (int64). Computed in float64 so
    that wide grids (up to 32 bits) get exact indices; ties round half to even."""
    s = intervals(bits)
    x = weight.detach().double() / _per_channel(gamma.double(), weight)
    return torch.round(s / 2 * (x.clamp(-1.0, 1.0) + 1.0)).to(torch.int64)


class _FakeQuant(torch.autograd.Function):
    """Forward: the quantised weight. Backward: straight-through, clipped or scaled."""

    @staticmethod
    def forward(ctx, weight, gamma, bits, ste):  # type: ignore[override]
        g = _per_channel(gamma.to(weight.dtype), weight)
        k = level_indices(weight, gamma, bits)
        s = intervals(bits)
        w_hat = (g.double() * (2.0 * k.double() / s - 1.0)).to(weight.dtype)
        ctx.save_for_backward(weight, g)
        ctx.ste = ste
        return w_hat

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        weight, g = ctx.saved_tensors
        if ctx.ste == "paper":  # ∂Ŵ/∂W = 1[|W/γ| ≤ 1]  (the paper)
            return grad * ((weight / g).abs() <= 1).to(grad.dtype), None, None, None
        return grad / g, None, None, None  # the code: gradient passed unchanged to W/γ


def rescaw(weight: torch.Tensor, bits: int, *, gamma: str = "mean",
           granularity: str = "channel", ste: str = "paper",
           percentile: float = PERCENTILE) -> torch.Tensor:
    """ReScaW fake quantisation of ``weight`` (differentiable through the STE)."""
    if ste not in STES:
        raise ValueError(f"ste must be one of {STES}, got {ste!r}")
    g = scale_of(weight, gamma, granularity, percentile)
    return _FakeQuant.apply(weight, g, int(bits), ste)


def uniform(weight: torch.Tensor, bits: int, *, ste: str = "paper") -> torch.Tensor:
    """The vanilla uniform quantiser: ReScaW with γ = 1 (levels fixed in [-1, 1])."""
    if ste not in STES:
        raise ValueError(f"ste must be one of {STES}, got {ste!r}")
    g = torch.ones(weight.shape[0], dtype=weight.dtype, device=weight.device)
    return _FakeQuant.apply(weight, g, int(bits), ste)


def quantize(weight: torch.Tensor, bits: int, *, method: str = "rescaw", gamma: str = "mean",
             granularity: str = "channel", percentile: float = PERCENTILE) -> QuantizedTensor:
    """The frozen form of ``weight``: integers ``q = 2k - s`` with scale ``γ/s`` per channel."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    s = intervals(bits)
    if method == "rescaw":
        g = scale_of(weight, gamma, granularity, percentile)
    else:
        g = torch.ones(weight.shape[0], device=weight.device)
    k = level_indices(weight, g, bits)
    return QuantizedTensor.from_ints(2 * k - s, (g.double() / s).float(), int(bits),
                                     q_step=2, q_zero=-s)


class FakeQuant(nn.Module):
    """Parametrization: the layer's forward pass sees its weight quantised."""

    def __init__(self, bits: int, *, method: str = "rescaw", gamma: str = "mean",
                 granularity: str = "channel", ste: str = "paper",
                 percentile: float = PERCENTILE) -> None:
        super().__init__()
        self.bits = int(bits)
        self.method = method
        self.gamma = gamma
        self.granularity = granularity
        self.ste = ste
        self.percentile = percentile

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.method == "uniform":
            return uniform(weight, self.bits, ste=self.ste)
        return rescaw(weight, self.bits, gamma=self.gamma, granularity=self.granularity,
                      ste=self.ste, percentile=self.percentile)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, method={self.method}, gamma={self.gamma}, ste={self.ste}"


def fake_quantize(module: nn.Module, bits: int, **config: Any) -> None:
    """Quantise ``module.weight`` in every forward pass from now on (latent float weights)."""
    detach_quant(module)  # training moves the weights off the grid: the record would lie
    parametrize.register_parametrization(module, "weight", FakeQuant(bits, **config))


def unfake(module: nn.Module) -> None:
    """Remove the fake quantisation, keeping the latent float weights."""
    if parametrize.is_parametrized(module, "weight"):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def freeze(module: nn.Module, bits: int, *, method: str = "rescaw", gamma: str = "mean",
           granularity: str = "channel", percentile: float = PERCENTILE) -> QuantizedTensor:
    """Turn the module's current (latent) weight into codes and attach them (the float weight
    becomes the quantised values; ``weight_bits`` is declared for the size count)."""
    unfake(module)
    quant = quantize(module.weight, bits, method=method, gamma=gamma, granularity=granularity,
                     percentile=percentile)
    attach(module, quant)
    return quant


def levels_used(quant: QuantizedTensor) -> torch.Tensor:
    """Distinct levels each output channel uses, ``[C]`` (bit-width utilisation, docs/qp_snn.md)."""
    rows = quant.codes.reshape(quant.codes.shape[0], -1).sort(dim=1).values
    return (rows[:, 1:] != rows[:, :-1]).sum(1) + 1
