"""The integer time-to-first-spike network: what ``wb_sim`` runs for a firing-time network.

Time is an integer count of ticks of ``2**-time_bits`` time units (the unit of the encoder's
``t_max`` and of the layers' horizon). Every input and every neuron fires at most once, at an
integer tick; a neuron that never fires has the time ``silent = horizon + 1``, which is also
what an input that never fires is given (an input at ``horizon + 1`` cannot move anything up to
the horizon, so the two are the same thing). Per layer, with integer weights ``q[j, i]``::

    V_j(tau) = sum_i q[j, i] * max(0, tau - tau_i)        # a rectified linear PSP, in ticks
    tau_j    = the first tick tau <= horizon with V_j(tau) >= threshold[j], else silent

The float neuron ``V(t) = sum_i w_ij max(0, t - t_i) >= theta`` with ``w = s_j * q`` and
``t = tau * 2**-time_bits`` is the same comparison with ``threshold[j] = ceil(theta / (s_j *
2**-time_bits))``: the integer network rounds the weights and the input times, nothing else. A
conv layer is the same neuron per output position over its receptive field (padding never
fires). The read-out is the earliest output spike: the prediction is the first class with the
smallest time, and the integer logits are ``-tau_out``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "wb_sim-ttfs-network"


@dataclass
class TTFSLayer:
    name: str  # the graph node the layer came from
    kind: str  # "linear" or "conv"
    weight: np.ndarray  # int64 [C_out, C_in] or [C_out, C_in, k, k]
    weight_bits: int  # signed width that holds every weight
    threshold: np.ndarray  # int64 [C_out], in weight units x ticks
    in_shape: tuple[int, ...]  # per sample: (D,) or (C, H, W)
    out_shape: tuple[int, ...]  # (C_out,) or (C_out, H_out, W_out)
    stride: int = 1
    padding: int = 0

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    def neuron_thresholds(self) -> np.ndarray:
        """The threshold of every output neuron, flat in C, H, W order."""
        per_channel = self.n_out // int(self.threshold.shape[0])
        return np.repeat(self.threshold, per_channel)


@dataclass
class TTFSNetwork:
    layers: list[TTFSLayer]
    time_bits: int  # one tick is 2**-time_bits time units
    horizon: int  # the last tick a neuron may fire at
    name: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def silent(self) -> int:
        """The time of a neuron (or input) that never fires."""
        return self.horizon + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].in_shape

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    @property
    def time_steps(self) -> int:
        return 1  # firing times, not steps: reported as one pass

    def quantize_times(self, t: np.ndarray) -> np.ndarray:
        """Real firing times ``t[B, ...]`` (``inf``: never fires) -> int64 ticks, rounded to
        the nearest tick (half to even); anything after the horizon is silent."""
        t = np.asarray(t, dtype=np.float64)
        ticks = np.rint(np.where(np.isfinite(t), t, 0.0) * 2.0 ** self.time_bits)
        ticks = np.clip(ticks, 0, self.silent)
        return np.where(np.isfinite(t), ticks, self.silent).astype(np.int64)

    # -- storage: one .npz with a JSON header, no pickle ---------------------------------------
    def save(self, path: str | Path) -> Path:
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, layer in enumerate(self.layers):
            arrays[f"w{i}"] = layer.weight
            arrays[f"t{i}"] = layer.threshold
            layers.append({"name": layer.name, "kind": layer.kind,
                           "weight_bits": layer.weight_bits, "in_shape": list(layer.in_shape),
                           "out_shape": list(layer.out_shape), "stride": layer.stride,
                           "padding": layer.padding})
        header = {"format": FORMAT, "version": 1, "name": self.name,
                  "time_bits": self.time_bits, "horizon": self.horizon, "notes": self.notes,
                  "layers": layers}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        path = Path(path)
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def from_arrays(cls, header: dict[str, Any], data: Any) -> TTFSNetwork:
        layers = [TTFSLayer(e["name"], e["kind"], data[f"w{i}"].astype(np.int64),
                            int(e["weight_bits"]), data[f"t{i}"].astype(np.int64),
                            tuple(e["in_shape"]), tuple(e["out_shape"]), int(e["stride"]),
                            int(e["padding"]))
                  for i, e in enumerate(header["layers"])]
        return cls(layers, int(header["time_bits"]), int(header["horizon"]),
                   header.get("name", ""), list(header.get("notes", [])))


def load_network(path: str | Path) -> Any:
    """The network saved at ``path``: a :class:`TTFSNetwork` or an
    :class:`~wb_sim.ir.IntegerNetwork`, told apart by the header's format."""
    from wb_sim.ir import IntegerNetwork

    with np.load(path, allow_pickle=False) as data:
        header = json.loads(bytes(data["header"]).decode())
        if header.get("format") == FORMAT:
            return TTFSNetwork.from_arrays(header, data)
    return IntegerNetwork.load(path)
