"""Two fixed-threshold signal encoders TAE is compared with (docs/qt_snn.md): step-forward
(SF) and threshold-based representation (TBR), both from Petro et al., "Selection and
Optimization of Temporal Spike Encoding Methods for Spiking Neural Networks", IEEE TNNLS 2020.

Like TAE they turn ``x[B, C, L]`` into ternary spikes ``[L, B, C]``, keep side information per
sample and channel, decode, and say which threshold was in force at each step
(``thresholds(spikes, side) -> [T, B, C]``).

**SF**: a base starts at ``x[0]``; a spike ``s = +1`` when ``x[t] - b >= threshold``, ``-1``
when ``x[t] - b <= -threshold``, and the base follows by ``s * threshold``. The decoder adds
``s * threshold`` from ``x[0]`` step by step (it equals the base bit for bit). The threshold
is one absolute number for every channel: z-score units for standardised data.

**TBR**, the rule used here: per sample and channel the differences
``d[t] = x[t] - x[t-1]`` (``t >= 1``) have mean ``mu`` and (population) std ``sigma``; a step
fires ``+1`` when ``d[t] > mu + factor * sigma`` and ``-1`` when ``d[t] < mu - factor *
sigma`` (strict, as in Petro et al.'s listing; never at ``t = 0``). The decoder rebuilds
``x_hat[t] = x[0] + sum_{u <= t} s[u] * step`` with ``step`` = the mean ``|d[t]|`` of the steps
that fired (0 when none did): "the mean step size". The threshold in force is the band's
half-width ``factor * sigma`` (it applies to the differences, centred on ``mu``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from wb_qt_snn._sequence import SequenceEncoder, ternary


class SFSide(NamedTuple):
    x0: torch.Tensor  # [B, C] the first value of the signal
    threshold: torch.Tensor  # [B, C] the (fixed) threshold


class TBRSide(NamedTuple):
    x0: torch.Tensor  # [B, C] the first value of the signal
    step: torch.Tensor  # [B, C] what one spike adds in the reconstruction
    mu: torch.Tensor  # [B, C] mean of the differences: the centre of the firing band
    band: torch.Tensor  # [B, C] factor * std of the differences: the band's half-width


class StepForwardEncoder(SequenceEncoder):
    """SF: fixed-threshold delta modulation with a following base."""

    spec_id = "wb_qt_snn.sf"

    def __init__(self, threshold: float = 0.1) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)

    def trace(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, SFSide]:
        """``(spikes[T, B, C], base[T, B, C], side)`` of ``x[B, C, L]``."""
        x = self._check_batch(x)
        x0 = x[..., 0].clone()
        theta = torch.full_like(x0, self.threshold)
        spikes = torch.zeros(x.shape[-1], *x0.shape, dtype=x.dtype, device=x.device)
        bases = torch.empty_like(spikes)
        base = x0.clone()
        bases[0] = base
        for t in range(1, x.shape[-1]):
            s = ternary(x[..., t] - base, theta)
            base = base + s * theta
            spikes[t], bases[t] = s, base
        return spikes, bases, SFSide(x0, theta)

    def encode(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, SFSide]:
        spikes, _, side = self.trace(x)
        return spikes, side

    def thresholds(self, spikes: torch.Tensor, side: SFSide) -> torch.Tensor:
        """The fixed threshold at every step, ``[T, B, C]``."""
        return side.threshold.unsqueeze(0).expand(spikes.shape[0], *side.threshold.shape)

    def decode(self, spikes: torch.Tensor, side: SFSide) -> torch.Tensor:
        """``x_hat[B, C, L]``: ``x[0]`` plus ``s * threshold`` step by step (= the base)."""
        s = spikes.to(device=side.x0.device, dtype=side.x0.dtype)
        x_hat = torch.empty_like(s)
        level = side.x0.clone()
        x_hat[0] = level
        for t in range(1, s.shape[0]):
            level = level + s[t] * side.threshold
            x_hat[t] = level
        return x_hat.permute(1, 2, 0)


class ThresholdBasedEncoder(SequenceEncoder):
    """TBR: a spike where the sample-to-sample change leaves ``mu ± factor·sigma``."""

    spec_id = "wb_qt_snn.tbr"

    def __init__(self, factor: float = 0.5) -> None:
        if not factor >= 0:
            raise ValueError(f"factor must be non-negative, got {factor}")
        self.factor = float(factor)

    def encode(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, TBRSide]:
        x = self._check_batch(x)
        x0 = x[..., 0].clone()
        spikes = torch.zeros(x.shape[-1], *x0.shape, dtype=x.dtype, device=x.device)
        if x.shape[-1] < 2:
            zero = torch.zeros_like(x0)
            return spikes, TBRSide(x0, zero, zero, zero)
        d = torch.diff(x, dim=-1)  # [B, C, L-1]
        mu = d.mean(-1)
        band = self.factor * d.std(-1, correction=0)
        up = d > (mu + band).unsqueeze(-1)
        down = d < (mu - band).unsqueeze(-1)
        s = up.to(x.dtype) - down.to(x.dtype)
        spikes[1:] = s.permute(2, 0, 1)
        fired = s != 0
        count = fired.sum(-1)
        total = (d.abs() * fired).sum(-1)
        step = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
        return spikes, TBRSide(x0, step, mu, band)

    def thresholds(self, spikes: torch.Tensor, side: TBRSide) -> torch.Tensor:
        """The band's half-width ``factor * sigma`` at every step, ``[T, B, C]``."""
        return side.band.unsqueeze(0).expand(spikes.shape[0], *side.band.shape)

    def decode(self, spikes: torch.Tensor, side: TBRSide) -> torch.Tensor:
        """``x_hat[B, C, L] = x[0] + cumsum(s) * step``."""
        s = spikes.to(device=side.x0.device, dtype=side.x0.dtype)
        x_hat = side.x0.unsqueeze(0) + s.cumsum(0) * side.step.unsqueeze(0)
        return x_hat.permute(1, 2, 0)
