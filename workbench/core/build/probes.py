"""Probes: record spikes (and membranes) of named neuron layers during a forward pass, and the
firing times of layers that emit spike times (time-to-first-spike networks).

Nothing is hooked until a probe is entered, so an unwatched network pays nothing. Records are
detached, on the CPU, and limited to the first ``samples`` items of each batch, which is all a
raster or a membrane trace shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import torch

from workbench.core.build.energy import emits_spike_times, is_neuron_module, layer_name
from workbench.core.model.errors import WorkbenchError


def neuron_layers(model: torch.nn.Module) -> list[str]:
    """Names of the neuron layers of ``model`` (``conv1.neuron``, ``lif2``), in order."""
    return [layer_name(q) for q, m in model.named_modules() if is_neuron_module(m)]


def spike_time_layers(model: torch.nn.Module) -> list[str]:
    """Names of the modules of ``model`` that emit firing times, in order."""
    return [layer_name(q) for q, m in model.named_modules() if emits_spike_times(m)]


def probed_layers(model: torch.nn.Module) -> list[str]:
    """Every layer a probe can record: the neuron layers, then the spike-time layers."""
    neurons = neuron_layers(model)
    return neurons + [name for name in spike_time_layers(model) if name not in neurons]


@dataclass
class ProbeRecord:
    spikes: torch.Tensor  # [T, samples, ...] of the last forward
    membrane: torch.Tensor | None = None  # the charged potential before reset, same shape
    #: the layer's firing threshold, when its neuron has one number for it (membrane plots
    #: draw it); None for a per-neuron or learnt-per-step threshold
    threshold: float | None = None


def fixed_threshold(module: torch.nn.Module) -> float | None:
    """The neuron's ``threshold`` attribute when it is one number (the neuron contract names
    it, docs/plugins.md); None when absent, a per-neuron tensor, or unreadable."""
    try:
        value = getattr(module, "threshold", None)
        if isinstance(value, torch.Tensor):
            return float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else None
    except (AttributeError, TypeError, ValueError, RuntimeError):  # a plugin property failed
        return None


@dataclass
class SpikeProbe:
    """Context manager recording ``layers`` (default: every neuron layer) of ``model``."""

    model: torch.nn.Module
    layers: list[str] | None = None
    membranes: bool = False
    samples: int = 1
    records: dict[str, ProbeRecord] = field(default_factory=dict)
    _handles: list[Any] = field(default_factory=list)
    _touched: list[torch.nn.Module] = field(default_factory=list)

    def __enter__(self) -> Self:
        wanted = set(self.layers) if self.layers is not None else None
        for qualified, module in self.model.named_modules():
            name = layer_name(qualified)
            if not is_neuron_module(module) or (wanted is not None and name not in wanted):
                continue
            if self.membranes and hasattr(module, "record_membrane"):
                module.record_membrane = True
                self._touched.append(module)
            self._handles.append(module.register_forward_hook(self._hook(name)))
        if wanted is not None:
            # a spike-time layer is a layer too: recording_spike_times records it
            known = probed_layers(self.model)
            missing = wanted - set(known)
            if missing:
                self.__exit__()
                raise WorkbenchError(f"no neuron layer named {min(missing)!r} (layers: "
                                     f"{', '.join(known)})", where="layer")
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        for module in self._touched:
            module.record_membrane = False
            module.last_membrane = None
        self._handles.clear()
        self._touched.clear()

    def _hook(self, name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            keep = slice(0, self.samples)
            membrane = getattr(module, "last_membrane", None) if self.membranes else None
            self.records[name] = ProbeRecord(
                spikes=spikes.detach()[:, keep].to("cpu", copy=True),
                membrane=None if membrane is None else membrane[:, keep].to("cpu", copy=True),
                threshold=fixed_threshold(module),
            )

        return hook


@contextmanager
def recording_maps(model: torch.nn.Module, samples: int = 1) -> Iterator[dict[str, Any]]:
    """Switch on ``record_maps`` of every attention module of ``model`` (off by default, so an
    unwatched network pays nothing); after the forward inside the block, the yielded dict
    holds each attention node's maps, first ``samples`` items of the batch, on the CPU."""
    modules = [m for m in model.modules() if hasattr(m, "record_maps")]
    for module in modules:
        module.record_maps = True
    found: dict[str, Any] = {}
    try:
        yield found
        for node_id, maps in getattr(model, "last_maps", {}).items():
            if maps:
                found[node_id] = {key: value[:, :samples].detach().cpu()
                                  if isinstance(value, torch.Tensor) else value
                                  for key, value in maps.items()}
    finally:
        for module in modules:
            module.record_maps = False
        if hasattr(model, "last_maps"):
            model.last_maps.clear()


@contextmanager
def recording_spike_times(model: torch.nn.Module, layers: list[str] | None = None
                          ) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of every module that emits firing times (default: all of them) for
    the first item of the batch. After the forward inside the block, the yielded dict maps
    each layer name to its times, float ``[N]`` flattened, on the CPU, ``inf`` kept for the
    neurons that stayed silent. A spike-train network has no such module: the dict stays
    empty and no hook is added."""
    wanted = set(layers) if layers is not None else None
    found: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
            times = out[0] if isinstance(out, tuple) else out
            # [1, B, ...]: the one "step" of firing times, first item of the batch
            found[name] = times.detach()[-1, 0].reshape(-1).to("cpu", torch.float32, copy=True)

        return hook

    for qualified, module in model.named_modules():
        name = layer_name(qualified)
        if emits_spike_times(module) and (wanted is None or name in wanted):
            handles.append(module.register_forward_hook(hook_for(name)))
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()
