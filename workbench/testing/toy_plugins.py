"""A small, loadable plugin module for tests and plugin authors: time series end to end.

Load it with ``snn-workbench --plugin workbench.testing.toy_plugins ...`` or
``load_plugins(modules=["workbench.testing.toy_plugins"])``; a module named on the command line
registers under its last name part, so every id here starts with ``toy_plugins.``. It
contributes

- ``toy_plugins.sequences``: synthetic variable-length sequences ``[C=2, L]`` of three classes
  (noisy sines on both channels in phase, in anti-phase, or on the first channel only),
  zero-padded, ``layout="sequence"``; with ``streamed=True`` the same samples come unpadded
  through a ``torch.utils.data.DataLoader`` (:class:`~workbench.core.data.streaming.StreamSplit`);
- ``toy_plugins.delta``: a step-forward delta encoder that sets T from the data: ``[B, C, L]``
  becomes ternary spikes ``[L, B, C]`` (+1 up-crossing, -1 down-crossing), with the start
  value per channel as side information and a ``decode`` that rebuilds the signal;
- ``toy_plugins.bptt_events``: the ``wb_core.bptt`` trainer, also reporting
  ``backward_events`` (the spikes its neurons emitted in each batch, summed over an epoch).

:func:`toy_project_dir` is an example project using all three (copy it before changing it).
Like every plugin module, it imports from the workbench only ``workbench.pluginhost`` (the
public plugin API), and importing it is cheap: torch is imported only when a factory runs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from workbench.pluginhost import (
    DatasetSpec,
    EncoderSpec,
    LearningRuleSpec,
    ParamSpec,
    hookimpl,
)

#: the name a module loaded by ``--plugin``/``modules=`` registers under
PLUGIN = __name__.rsplit(".", 1)[-1]
CLASS_NAMES = ["in phase", "anti-phase", "one channel"]


def toy_project_dir() -> Path:
    """The example project ``toy_sequences`` shipped with this module."""
    return Path(__file__).resolve().parent / "projects" / "toy_sequences"


# -- the dataset ---------------------------------------------------------------------------------
class UnpaddedSequences:
    """A map-style dataset over an :class:`ArraySplit` of padded sequences whose items are the
    unpadded ``(x[C, length], y, length)``, as a streamed dataset would read them from disk."""

    def __init__(self, split: Any) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        length = self.split.length_of(index)
        return self.split.x[index, :, :length], int(self.split.y[index]), length


def make_sequences(seed: int = 0, n_train: int = 120, n_test: int = 60, min_length: int = 12,
                   max_length: int = 24, noise: float = 0.05, streamed: bool = False):
    """Noisy two-channel sine waves of lengths ``min_length..max_length``, zero-padded to
    ``max_length``; the same ``seed``, the same data (streamed or not)."""
    import numpy as np

    from workbench.pluginhost import ArraySplit, DatasetError, DatasetSplits, StreamSplit

    if min_length > max_length:
        raise DatasetError(f"min_length {min_length} is above max_length {max_length}",
                           where=f"{PLUGIN}.sequences params.min_length")
    rng = np.random.default_rng(seed)

    def split(n: int) -> ArraySplit:
        y = rng.permutation(np.arange(n) % len(CLASS_NAMES))
        lengths = rng.integers(min_length, max_length + 1, size=n)
        x = np.zeros((n, 2, max_length), dtype=np.float32)
        for i in range(n):
            t = np.arange(lengths[i])
            # slow enough (slope <= 0.45 a step) for the delta encoder to follow the wave
            period = rng.uniform(14.0, 24.0)
            phase = rng.uniform(0.0, 2.0 * np.pi)
            amplitude = rng.uniform(0.7, 1.0)
            wave = amplitude * np.sin(2.0 * np.pi * t / period + phase)
            other = (wave, -wave, np.zeros_like(wave))[y[i]]
            x[i, 0, : lengths[i]] = wave + rng.normal(0.0, noise, lengths[i])
            x[i, 1, : lengths[i]] = other + rng.normal(0.0, noise, lengths[i])
        return ArraySplit(x, y, lengths=lengths)

    train, test = split(n_train), split(n_test)
    if streamed:
        train, test = (StreamSplit(UnpaddedSequences(s), pad_to=max_length) for s in (train, test))
    return DatasetSplits(train=train, test=test, input_shape=(2, max_length),
                         class_names=list(CLASS_NAMES), layout="sequence",
                         source=f"{PLUGIN}.sequences (synthetic, seed {seed})")


# -- the encoder ---------------------------------------------------------------------------------
class DeltaEncoder:
    """Step-forward delta modulation: per channel a baseline starts at the first value; a step
    whose value is ``threshold`` or more above the baseline emits +1 and raises it by
    ``threshold``, one as far below emits -1 and lowers it. T is the sequence length."""

    def __init__(self, threshold: float = 0.25) -> None:
        self.threshold = float(threshold)

    def step_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape[:-1])  # [C, L] -> one [C] per step

    def time_steps(self, input_shape: tuple[int, ...], steps: int) -> int:
        return int(input_shape[-1])  # T = L, whatever the project's T says

    def encode(self, x: Any, steps: int) -> tuple[Any, Any]:
        """``x[B, C, L] -> (spikes[L, B, C] in {-1, 0, +1}, start[B, C])``."""
        import torch

        start = x[..., 0].clone()
        base = start.clone()
        spikes = torch.zeros(x.shape[-1], *x.shape[:-1], dtype=x.dtype, device=x.device)
        for t in range(x.shape[-1]):
            delta = x[..., t] - base
            s = (delta >= self.threshold).to(x.dtype) - (delta <= -self.threshold).to(x.dtype)
            base = base + self.threshold * s
            spikes[t] = s
        return spikes, start

    def decode(self, spikes: Any, start: Any) -> Any:
        """The baseline at every step, ``[B, C, L]``: the signal to within ``threshold``."""
        return (start.unsqueeze(0) + self.threshold * spikes.cumsum(0)).permute(1, 2, 0)


# -- the learning rule ---------------------------------------------------------------------------
class EventCountingTrainer:
    """``wb_core.bptt``'s trainer; ``train_step`` also returns ``backward_events``: the non-zero
    spikes (+1 and -1) the network's neurons emitted in the batch, the events the surrogate
    backward pass runs through. Summed over an epoch (``metric_reductions``)."""

    metric_reductions = {"backward_events": "sum"}

    def __init__(self, model: Any, *, epochs: int, steps_per_epoch: int, **params: Any) -> None:
        # By name, like every spec factory: the workbench package never imports a plugin.
        bptt = importlib.import_module("wb_core.learning").BPTTTrainer
        self.model = model
        self.inner = bptt(model, epochs=epochs, steps_per_epoch=steps_per_epoch, **params)
        # BPTT's own metrics (dense events, silent fractions, gradient norms) pass through
        self.metric_reductions = {**self.inner.metric_reductions, "backward_events": "sum"}

    @property
    def lr(self) -> float:
        return self.inner.lr

    def train_step(self, x: Any, y: Any) -> dict[str, float]:
        from workbench.pluginhost import is_neuron_module

        events = [0]

        def count(module: Any, args: Any, out: Any) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            events[0] += int((spikes.detach() != 0).sum())

        handles = [m.register_forward_hook(count) for m in self.model.modules()
                   if is_neuron_module(m)]
        try:
            metrics = self.inner.train_step(x, y)
        finally:
            for handle in handles:
                handle.remove()
        return {**metrics, "backward_events": events[0]}


# -- contributions -------------------------------------------------------------------------------
@hookimpl
def wb_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(
        id=f"{PLUGIN}.sequences", display_name="Synthetic variable-length sequences",
        factory=f"{__name__}:make_sequences", offline=True,
        doc="Two-channel noisy sines, 3 classes (in phase, anti-phase, one channel), lengths "
            "min_length..max_length zero-padded; layout 'sequence'.",
        params=(
            ParamSpec("seed", 0, "int", low=0, doc="The same seed, the same data"),
            ParamSpec("n_train", 120, "int", low=3, high=100_000, doc="Training samples"),
            ParamSpec("n_test", 60, "int", low=3, high=100_000, doc="Test samples"),
            ParamSpec("min_length", 12, "int", low=2, high=10_000, unit="steps",
                      doc="Shortest sequence"),
            ParamSpec("max_length", 24, "int", low=2, high=10_000, unit="steps",
                      doc="Longest sequence (the padded length, and T)"),
            ParamSpec("noise", 0.05, low=0.0, high=1.0, doc="Gaussian noise per value"),
            ParamSpec("streamed", False, "bool",
                      doc="Serve the same samples through a torch DataLoader (StreamSplit)"),
        ),
    )]


@hookimpl
def wb_encoders() -> list[EncoderSpec]:
    return [EncoderSpec(
        id=f"{PLUGIN}.delta", display_name="Delta (step-forward, ternary)",
        factory=f"{__name__}:DeltaEncoder", sets_time_steps=True,
        doc="[B, C, L] -> ternary spikes [L, B, C]: +1 when the signal rose a threshold above "
            "the tracked baseline, -1 when it fell as far; T = L.",
        params=(ParamSpec("threshold", 0.25, low=1e-6, high=100.0,
                          doc="Change that emits a spike (and the decoder's step)"),),
    )]


@hookimpl
def wb_learning_rules() -> list[LearningRuleSpec]:
    return [LearningRuleSpec(
        id=f"{PLUGIN}.bptt_events", display_name="BPTT, counting backward events",
        factory=f"{__name__}:EventCountingTrainer",
        doc="wb_core.bptt, also reporting backward_events (spikes emitted per epoch).",
        params=(
            ParamSpec("lr", 0.05, low=1e-7, high=10.0, doc="Peak learning rate"),
            ParamSpec("schedule", "cosine", "choice", choices=("cosine", "constant"),
                      doc="Learning-rate schedule over the whole run"),
        ),
    )]
