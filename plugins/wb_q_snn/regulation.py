"""Spike regulation, the spike half of WS-DR (docs/q_snn.md), and Q-SNN's training loss.

A Bernoulli spike train carries most information (entropy) at a firing rate of 0.5, so the loss
pulls the mean rate of every hidden neuron layer towards it::

    L = (1/T) Σ_t CE(O[t], y)  +  λ_f · mean_{l ∈ L'} (r_l − 0.5)²

``r_l`` is the mean output of neuron layer ``l`` over ``(T, B, ...)`` and stays in the autograd
graph; ``L'`` are the recorded neuron layers except the first and the last one.
:class:`RateRecorder` collects the rates with forward hooks during fine-tuning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import torch
import torch.nn.functional as F

from workbench.pluginhost import is_neuron_module, layer_name

TARGET_RATE = 0.5


def spike_regulation(rates: Sequence[torch.Tensor], lambda_f: float) -> torch.Tensor:
    """``λ_f · mean_{l ∈ L'} (r_l − 0.5)²`` over ``rates[1:-1]`` (0 when ``L'`` is empty)."""
    inner = list(rates[1:-1])
    if not inner or lambda_f == 0:
        reference = rates[0] if len(rates) else torch.zeros(())
        return torch.zeros((), dtype=reference.dtype, device=reference.device)
    return lambda_f * torch.stack([(r - TARGET_RATE) ** 2 for r in inner]).mean()


def tet_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TET: ``(1/T) Σ_t CE(O[t], y)``; a read-out without time (``[B, C]``) is plain CE."""
    if out.dim() == 2:
        return F.cross_entropy(out, y)
    return F.cross_entropy(out.flatten(0, 1), y.repeat(out.shape[0]))


class RateRecorder:
    """Forward hooks that keep the mean output rate of every neuron layer of the last forward,
    in call order; a context manager (the hooks go when it exits)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.rates: list[torch.Tensor] = []
        self.names: list[str] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> Self:
        self._handles.append(self.model.register_forward_pre_hook(self._clear))
        for qualified, module in self.model.named_modules():
            if module is not self.model and is_neuron_module(module):
                hook = self._hook(layer_name(qualified))
                self._handles.append(module.register_forward_hook(hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.rates, self.names = [], []

    def measure(self, x: torch.Tensor) -> dict[str, float]:
        """Mean rate of every neuron layer on ``x`` in eval mode (the mode is restored)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                self.model(x)
        finally:
            self.model.train(was_training)
        return {name: round(float(rate), 4) for name, rate in zip(self.names, self.rates)}

    def _clear(self, module: torch.nn.Module, args: object) -> None:
        self.rates, self.names = [], []

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: object, out: object) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            self.rates.append(spikes.float().mean())  # kept in the graph: the loss needs dL/dr
            self.names.append(name)

        return hook


class QSNNLoss:
    """``loss(out, y, x)`` for ``CompressionContext.fine_tune``: TET + spike regulation on the
    rates the recorder saw in the same forward."""

    def __init__(self, recorder: RateRecorder, lambda_f: float) -> None:
        self.recorder = recorder
        self.lambda_f = float(lambda_f)

    def __call__(self, out: torch.Tensor, y: torch.Tensor,
                 x: torch.Tensor | None = None) -> torch.Tensor:
        return tet_loss(out, y) + spike_regulation(self.recorder.rates, self.lambda_f)
