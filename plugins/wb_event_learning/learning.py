"""The ``wb_event_learning.mpd_ed`` learning rule: wb_core's BPTT with every LIF neuron's
backward made event-driven (:mod:`wb_event_learning.mpd_ed`) for the duration of each step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from wb_core.learning import BPTTTrainer
from wb_core.neurons import SpikingNeuron

from wb_event_learning.mpd_ed import EventDrivenLIF, ThresholdFn
from workbench.pluginhost import CompileError, is_neuron_module, layer_name


class UnsupportedNeuron(CompileError):
    """The network holds a neuron MPD-ED cannot make event-driven."""


def _lif_neurons(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, SpikingNeuron]]:
    """``(parent, attribute, neuron)`` of every neuron module; one clear error for the first
    neuron that is not a wb_core LIF/IF neuron (a subclass may fire differently, so only the
    class itself is taken)."""
    found = []
    for qualified, module in model.named_modules():
        if not is_neuron_module(module):
            continue
        where = layer_name(qualified)
        if type(module) is not SpikingNeuron:
            raise UnsupportedNeuron(
                f"MPD-ED cannot train the neuron {where}: it is a "
                f"{type(module).__module__}.{type(module).__name__}, and MPD-ED replaces only "
                "wb_core's LIF and IF neurons (wb_core.lif, wb_core.lif_b, wb_core.if), whose "
                "dynamics it knows; pick one of them in that block's neuron, or train with "
                "wb_core.bptt", node=where.split(".")[0])
        parent_name, _, attribute = qualified.rpartition(".")
        found.append((model.get_submodule(parent_name), attribute, module))
    if not found:
        raise UnsupportedNeuron("MPD-ED found no spiking neuron in the network: it learns from "
                                "the spikes of wb_core LIF neurons; add a spiking block or train "
                                "with wb_core.bptt")
    return found


class MPDEDTrainer:
    """``wb_core.bptt``'s trainer (optimiser, schedule, loss, metrics) with an event-driven
    backward: during each ``train_step`` every wb_core LIF neuron is swapped, in place in its
    parent, for its :class:`EventDrivenLIF` twin, and put back afterwards, so the network the
    run leaves behind (and evaluates between epochs) is the one it was given."""

    def __init__(self, model: torch.nn.Module, *, epochs: int, steps_per_epoch: int,
                 surrogate_width: float = 1.0, threshold_fn: ThresholdFn | None = None,
                 **bptt_params: Any) -> None:
        self.model = model
        self._swaps = [(parent, attribute, neuron,
                        EventDrivenLIF.replacing(neuron, surrogate_width=surrogate_width,
                                                 threshold_fn=threshold_fn))
                       for parent, attribute, neuron in _lif_neurons(model)]
        with self.event_driven():  # the metrics see the event-driven neurons
            self.inner = BPTTTrainer(model, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                     **bptt_params)
        self.metric_reductions = self.inner.metric_reductions

    @property
    def lr(self) -> float:
        return self.inner.lr

    @contextmanager
    def event_driven(self) -> Iterator[None]:
        """The network with event-driven neurons inside the block, its own ones after it."""
        for parent, attribute, neuron, twin in self._swaps:
            twin.record_membrane = neuron.record_membrane  # a probe may have switched it on
            twin.train(neuron.training)
            setattr(parent, attribute, twin)
        try:
            yield
        finally:
            for parent, attribute, neuron, twin in self._swaps:
                neuron.last_membrane = twin.last_membrane
                setattr(parent, attribute, neuron)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        with self.event_driven():
            return self.inner.train_step(x, y)
