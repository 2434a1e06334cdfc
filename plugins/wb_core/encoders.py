"""Encoders: a static batch ``x[B, ...]`` becomes a time-major ``[T, B, ...]`` input.

Rate and latency encoders read ``x`` as intensities in [0, 1] (datasets scale to that range).
"""

from __future__ import annotations

import torch


class DirectEncoder:
    """Repeat the (normalised) input at every step (docs/wb_core.md): real-valued, so the
    first layer does MACs, counted once per sample by the energy ledger."""

    def encode(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return x.unsqueeze(0).expand(steps, *x.shape)


class RateEncoder:
    """Bernoulli rate code: a spike at each step with probability ``clamp(gain * x, 0, 1)``."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def encode(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        p = (self.gain * x).clamp(0.0, 1.0)
        return torch.bernoulli(p.unsqueeze(0).expand(steps, *x.shape))


class LatencyEncoder:
    """Time-to-first-spike: one spike per input at step ``round((1 - x) * (T - 1))``, so
    brighter inputs fire earlier; inputs at or below ``threshold`` never fire."""

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = threshold

    def encode(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        x = x.clamp(0.0, 1.0)
        when = torch.round((1.0 - x) * (steps - 1)).long()
        t = torch.arange(steps, device=x.device).view(steps, *([1] * x.dim()))
        return ((t == when.unsqueeze(0)) & (x > self.threshold).unsqueeze(0)).to(x.dtype)

    def decode(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spike times back to intensities (0 where no spike)."""
        steps = spikes.shape[0]
        t = torch.arange(steps, device=spikes.device, dtype=spikes.dtype)
        first = (spikes * t.view(steps, *([1] * (spikes.dim() - 1)))).sum(0)
        fired = spikes.sum(0) > 0
        return torch.where(fired, 1.0 - first / max(steps - 1, 1), torch.zeros_like(first))
