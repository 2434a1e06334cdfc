"""The project's encoder as the runs use it: ``x[B, …] -> spikes[T, B, …]``, the per-step shape
the network sees, the number of steps, and — when the encoder can — the reconstruction.

An encoder plugin object offers ``encode(x, T)``; it may also offer

``step_shape(input_shape) -> tuple``
    the per-step shape of its output when that differs from the sample's (a ``[C, L]`` signal
    becomes ``L`` steps of ``[C]``); default: the sample's shape.
``time_steps(input_shape, T) -> int``
    the number of steps it emits for samples of ``input_shape`` when it sets T from the data;
    default: the project's ``T``.
``encode(x, T)`` returning ``(spikes, side)``
    side information (a start value, a threshold per channel…) kept with the spikes.
``decode(spikes, side) -> x̂``
    the reconstruction, shown by the views beside the input; an encoder whose ``encode``
    returns spikes alone has ``decode(spikes)``.
"""

from __future__ import annotations

from typing import Any

import torch


class Encoding:
    """Wraps an encoder plugin object with the optional parts of its contract filled in."""

    def __init__(self, encoder: Any, time_steps: int) -> None:
        self.encoder = encoder
        self.project_steps = time_steps

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        out = self.encoder.encode(x, self.project_steps)
        if isinstance(out, tuple):
            spikes, side = out
            return spikes, side
        return out, None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def step_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        fn = getattr(self.encoder, "step_shape", None)
        return tuple(int(s) for s in fn(tuple(input_shape))) if fn else tuple(input_shape)

    def time_steps(self, input_shape: tuple[int, ...]) -> int:
        fn = getattr(self.encoder, "time_steps", None)
        return int(fn(tuple(input_shape), self.project_steps)) if fn else self.project_steps

    @property
    def can_decode(self) -> bool:
        return callable(getattr(self.encoder, "decode", None))

    def decode(self, spikes: torch.Tensor, side: Any) -> torch.Tensor | None:
        """The reconstruction from spikes this encoder made (on the CPU), or None when it
        cannot decode. Without side information, ``decode(spikes)`` alone (the latency
        encoder's form)."""
        if not self.can_decode:
            return None
        with torch.no_grad():
            args = (spikes,) if side is None else (spikes, side)
            return self.encoder.decode(*args).detach().to("cpu")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor | None:
        """``decode(encode(x))`` for a batch, or None when the encoder cannot decode."""
        if not self.can_decode:
            return None
        with torch.no_grad():
            return self.decode(*self.encode(x))
