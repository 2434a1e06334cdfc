"""The threshold-adaptive encoder (TAE) of Wang et al. 2025 and its decoder (docs/qt_snn.md).

TAE turns each channel of a signal into ternary spikes {-1, 0, +1}: a spike when the signal
has moved a threshold away from a tracked base value, with the threshold adapted as it goes
(adaptive delta modulation). The paper's exact rule was not available to us; this is our
reading, every constant a parameter. Per sample and channel, for ``t = 1 .. L-1``::

    d = x[t] - b
    s = +1 if d >= theta;  -1 if d <= -theta;  else 0
    if s != 0:
        b     = b + s * theta                    (base="follow", the default)
              = x[t]                             (base="realign": cannot be decoded)
        theta = clip(theta * (grow if s == prev else 1), theta_min, theta_max)
    else:
        theta = max(theta * shrink, theta_min)
    prev = s if s != 0 else prev

starting from ``b = x[0]``, ``theta = theta0``, ``prev = 0``, with no spike at ``t = 0``
(``start="first"``, the default). With ``start="zero"`` the base starts at 0 (the mean of a
z-scored channel) and step 0 is encoded too: the first spikes then carry the signal's level,
which a delta code from ``x[0]`` leaves out and which features such as LPC coefficients carry
(``x0`` of the side information is then 0).
``theta0 = theta0_scale * std(diff(x))`` of that sample and channel (a constant channel, whose
std is 0, uses std 1 instead: in the signal's units, so it stays silent rather than firing at
every step), ``theta_min = theta_min_ratio * theta0``, ``theta_max = theta_max_ratio * theta0``.

**The threshold in force**, ``theta_used[t]``, is ``theta`` before the update at step ``t``
(``theta_used[0] = theta0``). It depends only on the spikes and ``theta0``, so
:meth:`TAEEncoder.thresholds` replays it from the spike train: ``[T, B, C]``, what the signal
view draws around the reconstruction.

**Decoding** (``base="follow"``): ``x_hat[0] = x[0]``, ``x_hat[t] = x_hat[t-1] +
s[t] * theta_used[t]``, accumulated step by step in the dtype of the side information, so it
equals the encoder's base bit for bit. The side information kept with the spikes is
:class:`TAESide`: ``x0[B, C]`` and ``theta0[B, C]``; nothing else is needed. With
``base="realign"`` the base jumps to ``x[t]``, which the spikes do not carry: that encoder
(:class:`RealignedTAEEncoder`) has no ``decode``, and the workbench shows no reconstruction.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from wb_qt_snn._sequence import SequenceEncoder, std_of_differences, ternary

BASES = ("follow", "realign")
STARTS = ("first", "zero")
#: std used for a channel whose differences have std 0 (a constant or single-sample series)
CONSTANT_CHANNEL_STD = 1.0


class TAESide(NamedTuple):
    """What decoding needs besides the spikes, per sample and channel."""

    x0: torch.Tensor  # [B, C] the first value of the signal
    theta0: torch.Tensor  # [B, C] the initial threshold


class TAETrace(NamedTuple):
    """Everything the encoder saw, ``[T, B, C]`` each (for tests and plots)."""

    spikes: torch.Tensor
    base: torch.Tensor  # the tracked base after each step (= the reconstruction when following)
    theta_used: torch.Tensor  # the threshold in force at each step
    side: TAESide


class _Adaptation:
    """The threshold rule, shared by the encoder and the replay so both compute the same
    numbers with the same operations (bit-exact replay)."""

    def __init__(self, grow: float, shrink: float, theta_min_ratio: float,
                 theta_max_ratio: float) -> None:
        self.grow = float(grow)
        self.shrink = float(shrink)
        self.theta_min_ratio = float(theta_min_ratio)
        self.theta_max_ratio = float(theta_max_ratio)

    def bounds(self, theta0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.theta_min_ratio * theta0, self.theta_max_ratio * theta0

    def update(self, theta: torch.Tensor, s: torch.Tensor, prev: torch.Tensor,
               low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(theta, prev)`` after a step that emitted ``s``."""
        fired = s != 0
        # a repeated polarity means a sustained slope: the step grows
        factor = torch.where(fired & (s == prev), self.grow, 1.0).to(theta.dtype)
        after_spike = torch.minimum(torch.maximum(theta * factor, low), high)
        after_silence = torch.maximum(theta * self.shrink, low)
        return torch.where(fired, after_spike, after_silence), torch.where(fired, s, prev)


class _ThresholdAdaptiveEncoder(SequenceEncoder):
    """What both base modes share: the parameters, the encoding loop and the replay of the
    threshold. ``base_mode`` says how the base moves on a spike."""

    spec_id = "wb_qt_snn.tae"
    base_mode = "follow"

    def __init__(self, theta0_scale: float = 0.5, grow: float = 2.0, shrink: float = 0.5,
                 theta_min_ratio: float = 0.25, theta_max_ratio: float = 8.0,
                 start: str = "first", theta0: float = 0.0) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        self.start = start
        #: the first step that can spike: step 0 sets the base unless the base starts at 0
        self.first_step = 1 if start == "first" else 0
        if not theta0_scale > 0:
            raise ValueError(f"theta0_scale must be positive, got {theta0_scale}")
        if not 0 < theta_min_ratio <= 1 <= theta_max_ratio:
            raise ValueError("need 0 < theta_min_ratio <= 1 <= theta_max_ratio, got "
                             f"{theta_min_ratio} and {theta_max_ratio}")
        self.theta0_scale = float(theta0_scale)
        if theta0 < 0:
            raise ValueError(f"theta0 must be 0 (per series) or positive, got {theta0}")
        #: > 0: one first threshold for every series and channel, in the signal's units
        self.theta0 = float(theta0)
        self.adaptation = _Adaptation(grow, shrink, theta_min_ratio, theta_max_ratio)

    def initial_threshold(self, x: torch.Tensor) -> torch.Tensor:
        """``theta0[B, C] = theta0_scale * std(diff(x))``, guarded for constant channels."""
        if self.theta0 > 0:  # amplitudes stay comparable between series
            return torch.full(x.shape[:-1], self.theta0, dtype=x.dtype, device=x.device)
        std = std_of_differences(x)
        std = torch.where(std > 0, std, torch.full_like(std, CONSTANT_CHANNEL_STD))
        return self.theta0_scale * std

    def trace(self, x: torch.Tensor) -> TAETrace:
        """Encode ``x[B, C, L]`` and keep the base and the threshold of every step."""
        x = self._check_batch(x)
        follow = self.base_mode == "follow"
        x0 = x[..., 0].clone() if self.start == "first" else torch.zeros_like(x[..., 0])
        theta0 = self.initial_threshold(x)
        low, high = self.adaptation.bounds(theta0)
        steps = x.shape[-1]
        spikes = torch.zeros(steps, *x0.shape, dtype=x.dtype, device=x.device)
        base_seen = torch.empty_like(spikes)
        theta_used = torch.empty_like(spikes)
        base, theta, prev = x0.clone(), theta0.clone(), torch.zeros_like(x0)
        base_seen[0], theta_used[0] = base, theta
        for t in range(self.first_step, steps):
            s = ternary(x[..., t] - base, theta)
            theta_used[t] = theta
            if follow:
                base = base + s * theta
            else:
                base = torch.where(s != 0, x[..., t], base)
            theta, prev = self.adaptation.update(theta, s, prev, low, high)
            spikes[t] = s
            base_seen[t] = base
        return TAETrace(spikes, base_seen, theta_used, TAESide(x0, theta0))

    def encode(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, TAESide]:
        """``x[B, C, L] -> (spikes[L, B, C] in {-1, 0, +1}, TAESide)``; ``steps`` is unused
        (T is the sequence length)."""
        trace = self.trace(x)
        return trace.spikes, trace.side

    def thresholds(self, spikes: torch.Tensor, side: TAESide) -> torch.Tensor:
        """``theta_used[T, B, C]``: the threshold in force at each step, replayed from the
        spikes and ``side.theta0``."""
        theta0 = side.theta0  # its dtype is the encoder's: replay in that one
        s = spikes.to(device=theta0.device, dtype=theta0.dtype)
        low, high = self.adaptation.bounds(theta0)
        theta, prev = theta0.clone(), torch.zeros_like(theta0)
        used = torch.empty(s.shape, dtype=theta0.dtype, device=theta0.device)
        used[0] = theta
        for t in range(self.first_step, s.shape[0]):
            used[t] = theta
            theta, prev = self.adaptation.update(theta, s[t], prev, low, high)
        return used

    def __repr__(self) -> str:
        a = self.adaptation
        return (f"{type(self).__name__}(theta0_scale={self.theta0_scale:g}, grow={a.grow:g}, "
                f"shrink={a.shrink:g}, theta_min_ratio={a.theta_min_ratio:g}, "
                f"theta_max_ratio={a.theta_max_ratio:g}, start={self.start!r})")


class RealignedTAEEncoder(_ThresholdAdaptiveEncoder):
    """TAE with ``base="realign"``: on a spike the base jumps to the signal's value.

    It has no ``decode``: the jump's size is not in the spike train, so this variant cannot be
    decoded and the workbench shows no reconstruction for it. :meth:`thresholds` still works
    (the threshold's adaptation depends on the spikes alone).
    """

    base_mode = "realign"


class TAEEncoder(_ThresholdAdaptiveEncoder):
    """TAE with ``base="follow"`` (the default): the base moves by ``s * theta``, so the spikes
    and :class:`TAESide` rebuild it exactly (:meth:`decode`)."""

    base_mode = "follow"

    def decode(self, spikes: torch.Tensor, side: TAESide) -> torch.Tensor:
        """The reconstruction ``x_hat[B, C, L]``: the encoder's base at every step."""
        theta_used = self.thresholds(spikes, side)
        x_hat = torch.empty_like(theta_used)
        level = side.x0.to(theta_used.dtype).clone()
        x_hat[0] = level
        s = spikes.to(device=theta_used.device, dtype=theta_used.dtype)
        for t in range(self.first_step, spikes.shape[0]):  # sequential as the encoder: exact
            level = level + s[t] * theta_used[t]
            x_hat[t] = level
        return x_hat.permute(1, 2, 0)


def tae(base: str = "follow", theta0_scale: float = 0.5, grow: float = 2.0, shrink: float = 0.5,
        theta_min_ratio: float = 0.25, theta_max_ratio: float = 8.0,
        start: str = "first", theta0: float = 0.0) -> TAEEncoder | RealignedTAEEncoder:
    """Factory of ``wb_qt_snn.tae``: a :class:`TAEEncoder`, or with ``base="realign"`` a
    :class:`RealignedTAEEncoder` (no decoder)."""
    if base not in BASES:
        raise ValueError(f"base must be one of {BASES}, got {base!r}")
    cls = TAEEncoder if base == "follow" else RealignedTAEEncoder
    return cls(theta0_scale=theta0_scale, grow=grow, shrink=shrink,
               theta_min_ratio=theta_min_ratio, theta_max_ratio=theta_max_ratio, start=start,
               theta0=theta0)
