"""Probing one test sample: spikes (binary or ternary), membranes and attention maps per layer;
in a time-to-first-spike network, the firing times of each layer and the output race.

The CLI's ``inspect``, the GUI's on-demand probe and its live probe during training all call
:func:`probe_sample`; :func:`probe_summary` is the JSON-able part a record and ``--json`` carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.core.build.encoding import Encoding
from workbench.core.build.energy import is_spike_tensor
from workbench.core.build.probes import (
    ProbeRecord,
    SpikeProbe,
    recording_maps,
    recording_spike_times,
)
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.readout import earliest_spike
from workbench.core.model.specs import SPIKE_TIMES


@dataclass
class ProbeResult:
    """What a probe saw. ``spikes`` are ``[T, 1, …]`` int8 in {−1, 0, +1} (ternary networks
    emit −1); ``reconstruction`` is the encoder's decode of its own spikes, when it decodes;
    ``input_spikes`` is the encoder's output ``[T, 1, …]`` when it is spikes (binary or
    ternary; None for a real-valued input such as direct encoding).

    In a time-to-first-spike network, ``spike_times`` holds the firing times of each layer that
    emits them (float ``[N]``, ``inf`` = silent) and ``output_times`` the output neurons' times
    ``[classes]``: the race the earliest-spike readout decides. Both are empty for a network
    of spike trains."""

    index: int
    label: int
    predicted: int
    input: torch.Tensor
    records: dict[str, ProbeRecord] = field(default_factory=dict)
    maps: dict[str, Any] = field(default_factory=dict)
    reconstruction: torch.Tensor | None = None
    length: int | None = None  # the sample's own length, for variable-length sequences
    input_spikes: torch.Tensor | None = None
    spike_times: dict[str, torch.Tensor] = field(default_factory=dict)
    output_times: torch.Tensor | None = None

    def as_dict(self) -> dict[str, Any]:
        """The views' dict form (kept for the panels that read ``result["records"]``)."""
        return {"records": self.records, "maps": self.maps, "input": self.input,
                "label": self.label, "predicted": self.predicted, "index": self.index,
                "reconstruction": self.reconstruction, "length": self.length,
                "input_spikes": self.input_spikes, "spike_times": self.spike_times,
                "output_times": self.output_times}


def probe_sample(session: Any, index: int, *, membranes: bool = True,
                 layers: list[str] | None = None, encoding: Encoding | None = None
                 ) -> ProbeResult:
    """Run test sample ``index`` through the session's network (built if needed).

    ``encoding`` (default: the session's) is worth passing when probing repeatedly, as the
    live probe during training does: it is built once. The sample is encoded once; the same
    spikes feed the network and the reconstruction.

    Must not run while a training run changes the same model on another thread (the GUI's
    controller guarantees it; the training run's own live probe runs on its thread).
    """
    model = session.model if session.model is not None else session.build()
    split = session.data().test
    if not 0 <= index < len(split):
        raise WorkbenchError(f"the test split has {len(split)} samples; choose 0 to "
                             f"{len(split) - 1}", where="sample")
    x, y, lengths = split.batch(np.array([index]), lengths=True)
    length = None if lengths is None else int(lengths[0])
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    encoding = encoding or session.encoding()
    was_training = model.training
    model.eval()
    try:
        with (torch.no_grad(),
              SpikeProbe(model, layers=layers, membranes=membranes, samples=1) as probe,
              recording_maps(model) as maps,
              recording_spike_times(model, layers=layers) as spike_times):
            encoded, side = encoding.encode(x.to(device))
            out = model(encoded)
            scores = session.readout()(out)
    finally:
        model.train(was_training)
    # the encoder's spikes are what the first layer's synapses see: a ternary encoder's −1
    # shows (and is counted) here, not in any neuron layer
    input_spikes = encoded.detach().to("cpu") if is_spike_tensor(encoded) else None
    rebuilt = encoding.decode(encoded, side)  # [1, …] like the batch; kept per sample
    return ProbeResult(index=index, label=int(y[0]), predicted=int(scores.argmax(-1)[0]),
                       input=x[0], records=dict(probe.records), maps=maps,
                       reconstruction=None if rebuilt is None else rebuilt[0], length=length,
                       input_spikes=input_spikes, spike_times=dict(spike_times),
                       output_times=_output_times(session, out))


def _output_times(session: Any, out: torch.Tensor) -> torch.Tensor | None:
    """The output neurons' firing times ``[classes]`` of the probed sample, or None when the
    network's output is not firing times.

    Two things must hold. The encoder emits spike times: a network fed spike times passes
    times from node to node (building refuses a node that takes another code than the encoder
    emits). And the learning rule reads the output as times (its read-out is the earliest
    spike): a time-to-first-spike network may end in a layer that does not fire and outputs
    potentials as logits (STD-ED's read-out), whose "race" would rank the classes backwards.
    Asking the output node's ``emits_spike_times`` instead would miss a plugin's wrapper
    around a time layer.
    """
    spec = session.lookup.get(session.project.encoder.id)
    if getattr(spec, "spike_code", None) != SPIKE_TIMES or out.dim() != 3 or out.shape[0] != 1:
        return None
    if session.readout() is not earliest_spike:
        return None
    return out.detach()[0, 0].reshape(-1).to("cpu", torch.float32, copy=True)


def race_winner(times: torch.Tensor) -> int | None:
    """The class whose output neuron fired first (the first of a tie, as the earliest-spike
    readout breaks it), or None when every output stayed silent."""
    fired = torch.isfinite(times)
    if not bool(fired.any()):
        return None
    return int(torch.where(fired, times, torch.full_like(times, math.inf)).argmin())


def spike_time_stats(times: torch.Tensor) -> dict[str, Any]:
    """``{"neurons", "fired", "first", "median", "last"}`` of one layer's firing times: the
    times over the neurons that fired (None when none did)."""
    fired = times[torch.isfinite(times)].double().numpy()
    return {"neurons": int(times.numel()), "fired": int(fired.size),
            "first": float(fired.min()) if fired.size else None,
            "median": float(np.median(fired)) if fired.size else None,
            "last": float(fired.max()) if fired.size else None}


def race_summary(times: torch.Tensor) -> dict[str, Any]:
    """The output race as JSON: each class's time (None = silent) and the winner."""
    return {"times": [float(t) if math.isfinite(t) else None for t in times.tolist()],
            "winner": race_winner(times)}


def _spike_counts(spikes: torch.Tensor) -> dict[str, Any]:
    return {"shape": list(spikes.shape[2:]), "spikes": int(spikes.ne(0).sum()),
            "positive": int(spikes.gt(0).sum()), "negative": int(spikes.lt(0).sum()),
            "firing_rate": float(spikes.ne(0).float().mean())}


def probe_summary(result: ProbeResult, *, weights_loaded: bool) -> dict[str, Any]:
    layers = {name: _spike_counts(record.spikes) for name, record in result.records.items()}
    summary = {"sample": result.index, "label": result.label, "predicted": result.predicted,
               "weights_loaded": weights_loaded, "layers": layers}
    if result.input_spikes is not None:
        summary["input_spikes"] = _spike_counts(result.input_spikes)
    if result.length is not None:
        summary["length"] = result.length
    if result.reconstruction is not None:
        error = (result.reconstruction.float() - result.input.float()).pow(2).mean()
        summary["reconstruction_mse"] = float(error)
    if result.spike_times:
        summary["spike_times"] = {name: spike_time_stats(times)
                                  for name, times in result.spike_times.items()}
    if result.output_times is not None:
        summary["race"] = race_summary(result.output_times)
    return summary


def probe_arrays(result: ProbeResult) -> dict[str, np.ndarray]:
    """Spikes (int8, so ternary −1 survives) and membranes per layer, for an ``.npz``; the
    firing times of a time-to-first-spike network's layers (float, ``inf`` = silent)."""
    arrays: dict[str, np.ndarray] = {}
    for name, record in result.records.items():
        arrays[f"{name}/spikes"] = record.spikes[:, 0].numpy().astype(np.int8)
        if record.membrane is not None:
            arrays[f"{name}/membrane"] = record.membrane[:, 0].numpy()
    if result.input_spikes is not None:
        arrays["input_spikes"] = result.input_spikes[:, 0].numpy().astype(np.int8)
    if result.reconstruction is not None:
        arrays["input"] = result.input.numpy()
        arrays["reconstruction"] = result.reconstruction.numpy()
    for name, times in result.spike_times.items():
        arrays[f"{name}/spike_times"] = times.numpy()
    if result.output_times is not None:
        arrays["output_times"] = result.output_times.numpy()
    return arrays
