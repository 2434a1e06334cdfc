"""Encoders: a static batch ``x[B, ...]`` becomes a time-major ``[T, B, ...]`` input.

Rate and latency encoders read ``x`` as intensities in [0, 1] (datasets scale to that range).
"""

from __future__ import annotations

import math

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


class TTFSEncoder:
    """Time-to-first-spike as firing times, not as a spike train: ``x[B, ...]`` in ``[0, 1]``
    becomes ``t[1, B, ...] = t_max * (1 - x)``; an input at or below 0 never fires
    (``t = inf``). Layers that take spike times (``spike_code="times"``) compute with the times
    themselves, so there are no time steps: T is 1 whatever the project says."""

    def __init__(self, t_max: float = 1.0) -> None:
        if not t_max > 0:
            raise ValueError(f"t_max must be positive, got {t_max}")
        self.t_max = float(t_max)

    def time_steps(self, input_shape: tuple[int, ...], steps: int) -> int:
        return 1

    def encode(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        x = x.clamp(max=1.0)
        times = self.t_max * (1.0 - x)
        return torch.where(x > 0, times, torch.full_like(times, math.inf)).unsqueeze(0)

    def decode(self, times: torch.Tensor) -> torch.Tensor:
        """Firing times back to intensities (0 where the input never fired)."""
        t = times[0]
        return torch.where(torch.isfinite(t), 1.0 - t / self.t_max, torch.zeros_like(t))
