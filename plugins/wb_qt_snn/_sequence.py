"""What the three signal encoders of this plugin share: the sequence layout and its checks.

A sequence batch arrives as ``x[B, C, L]`` (samples of layout ``[C, L]``; shorter series padded
with their last value) and leaves as ternary spikes ``[T, B, C]`` with ``T = L``: one step per
sample of the signal, one input per channel.
"""

from __future__ import annotations

import torch

from workbench.pluginhost import ProjectError


class SequenceEncoder:
    """Mixin: ``[C, L]`` samples become ``L`` steps of ``[C]``; T is the sequence length."""

    #: the encoder's id, named in error messages
    spec_id = "wb_qt_snn"

    def step_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._need_sequence_shape(input_shape)
        return tuple(input_shape[:-1])

    def time_steps(self, input_shape: tuple[int, ...], steps: int) -> int:
        self._need_sequence_shape(input_shape)
        return int(input_shape[-1])  # T = L, whatever the project's T says

    def _need_sequence_shape(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) != 2:
            raise ProjectError(
                f"needs sequence data whose samples are [C, L] (channels, length); this "
                f"dataset's samples are {list(input_shape)}: choose a sequence dataset or "
                "another encoder", where=f"encoder {self.spec_id}")

    def _check_batch(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as a floating-point ``[B, C, L]`` batch, or a ProjectError saying why not."""
        if x.dim() != 3:
            raise ProjectError(f"expects a batch of sequences [B, C, L], got {list(x.shape)}",
                               where=f"encoder {self.spec_id}")
        if x.shape[-1] < 1:
            raise ProjectError("got sequences of length 0", where=f"encoder {self.spec_id}")
        if not x.is_floating_point():
            x = x.float()
        if not bool(torch.isfinite(x).all()):
            raise ProjectError("the signal holds NaN or infinite values; clean the dataset "
                               "first", where=f"encoder {self.spec_id}")
        return x


def std_of_differences(x: torch.Tensor) -> torch.Tensor:
    """``std(x[t] - x[t-1])`` over time per sample and channel, ``[B, C]`` (population std:
    a length-2 series has one difference and a std of 0; a length-1 series has none and 0)."""
    if x.shape[-1] < 2:
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    return torch.diff(x, dim=-1).std(dim=-1, correction=0)


def ternary(delta: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``delta >= threshold``, ``-1`` where ``delta <= -threshold``, else 0 (in
    ``delta``'s dtype). Both comparisons include equality, as the encoders' rule says."""
    return (delta >= threshold).to(delta.dtype) - (delta <= -threshold).to(delta.dtype)
