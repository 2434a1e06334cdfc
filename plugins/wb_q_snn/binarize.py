"""Q-SNN weight quantisers (docs/q_snn.md): WS-DR binarisation and the 8-bit stem/FC rule.

Each quantiser is a *fake quantiser* used while fine-tuning (a ``torch.nn.utils.parametrize``
parametrisation, so the latent float weight keeps its state-dict name) and has a ``freeze``
that returns the integer record :class:`~workbench.core.quantized.QuantizedTensor` whose
``dequantize()`` equals the fake-quantised weight.

- :class:`BinaryWeight` with ``ws_dr=True`` (WS-DR): standardise each output channel,
  ``s_c = 2^round(log2 mean|Ŵ_c|)`` (detached), ``W_b = s_c·sign(Ŵ)`` with ``sign(0) = +1``,
  and the tanh-derivative estimator ``g·k·t·(1 − tanh²(t·Ŵ))`` whose ``(k, t)`` follow
  :func:`estimator_schedule` over the fine-tuning epochs.
- :class:`BinaryWeight` with ``ws_dr=False`` (the "without WS-DR" baseline): ``sign(W)`` with a
  per-channel scale ``mean|W_c|`` and the identity straight-through estimator.
- :class:`EightBitWeight`: ``round(w/m·127)/127·m`` with ``m = max(w)`` (``"max"``, the code's
  rule) or ``max|w|`` (``"absmax"``), identity straight-through estimator.
"""

from __future__ import annotations

import math

import torch

from workbench.pluginhost import QuantizedTensor

STEM_RULES = ("max", "absmax")
STEM_TOP = 127  # the 8-bit rule's largest code
_STD_FLOOR = 1e-8


def estimator_schedule(epoch: int, epochs: int) -> tuple[float, float]:
    """``(k_e, t_e)`` for epoch ``e`` of ``E``: ``t = 10^(−1 + 2e/E)`` (0.1 towards 10, never
    reaching it), ``k = max(1/t, 1)``."""
    t = 10.0 ** (-1.0 + 2.0 * epoch / max(epochs, 1))
    return max(1.0 / t, 1.0), t


def _channel_dims(w: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(1, w.dim()))


def sign_plus(w: torch.Tensor) -> torch.Tensor:
    """``sign`` with ``sign(0) = +1``, so every weight is ±1."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


def standardize(w: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit (unbiased) std per output channel: balanced signs, maximal entropy."""
    dims = _channel_dims(w)
    centred = w - w.mean(dim=dims, keepdim=True)
    if w[0].numel() < 2:  # one weight per channel has no spread to divide by
        return centred
    return centred / w.std(dim=dims, keepdim=True).clamp_min(_STD_FLOOR)


def power_of_two_scale(w_hat: torch.Tensor) -> torch.Tensor:
    """``s_c = 2^round(log2 mean|Ŵ_c|)`` per output channel (detached, ``[C]``); a channel whose
    standardised weights are all 0 gets ``s_c = 1``."""
    mean_abs = w_hat.detach().abs().mean(dim=_channel_dims(w_hat))
    mean_abs = torch.where(mean_abs > 0, mean_abs, torch.ones_like(mean_abs))
    return torch.exp2(torch.round(torch.log2(mean_abs)))


class _TanhSign(torch.autograd.Function):
    """Forward ``sign`` (0 -> +1); backward the derivative of ``k·tanh(t·x)``."""

    @staticmethod
    def forward(ctx, w_hat, k, t):  # type: ignore[override]
        ctx.save_for_backward(w_hat)
        ctx.k, ctx.t = k, t
        return sign_plus(w_hat)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (w_hat,) = ctx.saved_tensors
        slope = ctx.k * ctx.t * (1.0 - torch.tanh(ctx.t * w_hat) ** 2)
        return grad_out * slope, None, None


def tanh_sign(w_hat: torch.Tensor, k: float, t: float) -> torch.Tensor:
    """``sign(Ŵ)`` forward with the error-decay estimator ``k·t·(1 − tanh²(t·Ŵ))`` backward."""
    return _TanhSign.apply(w_hat, k, t)


def _per_channel(scale: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return scale.reshape((-1,) + (1,) * (like.dim() - 1))


def wsdr_binarize(w: torch.Tensor, k: float, t: float) -> torch.Tensor:
    """WS-DR binary weight ``s_c·sign(Ŵ_c)`` (docs/q_snn.md), differentiable through the
    estimator and the standardisation."""
    w_hat = standardize(w)
    return _per_channel(power_of_two_scale(w_hat), w) * tanh_sign(w_hat, k, t)


def sign_binarize(w: torch.Tensor) -> torch.Tensor:
    """Baseline ``mean|W_c|·sign(W)``, identity straight-through estimator."""
    scale = w.detach().abs().mean(dim=_channel_dims(w))
    binary = _per_channel(scale, w) * sign_plus(w.detach())
    return w + (binary - w).detach()


def stem_scale_value(w: torch.Tensor, rule: str) -> float:
    """``m`` of the 8-bit rule: ``max(w)`` ("max") or ``max|w|`` ("absmax")."""
    if rule not in STEM_RULES:
        raise ValueError(f"stem_scale must be one of {STEM_RULES}, got {rule!r}")
    w = w.detach()
    return float(w.max() if rule == "max" else w.abs().max())


def stem_codes(w: torch.Tensor, rule: str) -> tuple[torch.Tensor, float]:
    """The 8-bit rule's integers ``round(127·w/m)`` (int64) and ``m``.

    Raises ``ValueError`` when ``m <= 0`` (the "max" rule breaks on an all-negative layer)."""
    m = stem_scale_value(w, rule)
    if not m > 0:
        raise ValueError(f"the {rule!r} scale of the layer is {m:g} (needs > 0)")
    return torch.round(w.detach() / m * STEM_TOP).to(torch.int64), m


def stem_quantize(w: torch.Tensor, rule: str) -> torch.Tensor:
    """Fake-quantised ``round(w/m·127)/127·m`` with the identity straight-through estimator."""
    m = stem_scale_value(w, rule)
    # The guard only keeps a drifting layer finite while training; freezing rejects m <= 0.
    m = max(m, _STD_FLOOR)
    quantized = torch.round(w.detach() / m * STEM_TOP) / STEM_TOP * m
    return w + (quantized - w).detach()


def stem_grid(q: torch.Tensor) -> tuple[int, int]:
    """``(bits, q_zero)`` holding the codes ``q``: 8 bits on ``[−127, 127]``; more when the
    "max" rule produced codes below −127 (``min(w) < −max(w)``)."""
    q_zero = min(int(q.min()), -STEM_TOP) if q.numel() else -STEM_TOP
    bits = max(8, math.ceil(math.log2(STEM_TOP - q_zero + 1)))
    return bits, q_zero


class BinaryWeight(torch.nn.Module):
    """Parametrisation: the binarised weight; :meth:`freeze` gives the 1-bit record."""

    def __init__(self, ws_dr: bool = True) -> None:
        super().__init__()
        self.ws_dr = bool(ws_dr)
        self.k, self.t = estimator_schedule(0, 1)

    def set_schedule(self, k: float, t: float) -> None:
        self.k, self.t = float(k), float(t)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return wsdr_binarize(w, self.k, self.t) if self.ws_dr else sign_binarize(w)

    def freeze(self, w: torch.Tensor) -> QuantizedTensor:
        """``q ∈ {−1, +1}`` on the grid ``−1 + 2·k`` (1 bit) with the per-channel scale."""
        w = w.detach()
        if self.ws_dr:
            w_hat = standardize(w)
            scale, q = power_of_two_scale(w_hat), sign_plus(w_hat)
        else:
            scale, q = w.abs().mean(dim=_channel_dims(w)), sign_plus(w)
        return QuantizedTensor.from_ints(q, scale, 1, q_step=2, q_zero=-1)

    def extra_repr(self) -> str:
        return f"ws_dr={self.ws_dr}, k={self.k:.4g}, t={self.t:.4g}"


class EightBitWeight(torch.nn.Module):
    """Parametrisation: the 8-bit stem/classifier rule; :meth:`freeze` gives its record."""

    def __init__(self, rule: str = "max") -> None:
        super().__init__()
        if rule not in STEM_RULES:
            raise ValueError(f"stem_scale must be one of {STEM_RULES}, got {rule!r}")
        self.rule = rule

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return stem_quantize(w, self.rule)

    def freeze(self, w: torch.Tensor) -> QuantizedTensor:
        """Integers ``round(127·w/m)`` with scale ``m/127`` for every output channel."""
        q, m = stem_codes(w, self.rule)
        bits, q_zero = stem_grid(q)
        scale = torch.full((w.shape[0],), m / STEM_TOP, dtype=torch.float32)
        return QuantizedTensor.from_ints(q, scale, bits, q_step=1, q_zero=q_zero)

    def extra_repr(self) -> str:
        return f"rule={self.rule}"
