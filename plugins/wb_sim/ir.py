"""The integer network: what ``wb_sim`` simulates and ``wb_fpga`` turns into hardware.

Everything is an integer except the input scale. Per time step ``t`` and layer::

    acc[c]  = sum_i W[c, i] * x[i]                     # x: int inputs (layer 0) or 0/1 spikes
    I[c]    = (acc[c] << shift) + bias[c]
    H[c]    = V[c] - (V[c] >> leak_shift) + I[c]       # leak_shift None: H = V + I (IF)
    S[c]    = H[c] >= threshold[c]
    V[c]    = 0 if S[c] else H[c]                      # reset "hard"
            = H[c] - threshold[c] * S[c]               # reset "soft"

A ternary neuron (``IntNeuron.ternary``) also fires -1 when ``H[c] <= -threshold[c]``; the
next layer then adds or subtracts the weight (one accumulate either way, docs/wb_core.md), and
a reset applies on either polarity (hard: V = 0; soft: V = H - threshold * S).

``>>`` is an arithmetic shift (floor division by a power of two), identical in numpy, torch and
Amaranth. A layer with ``pool > 0`` max-pools its spikes (a logical OR over ``pool × pool``
windows, stride ``pool``) before the next layer; a linear layer after a conv layer sees the
spikes flattened in C, H, W order (as ``torch.flatten``). The last layer has no neuron: its
``I`` is summed over the time steps into integer logits, and the prediction is the first index
of the largest logit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class IntNeuron:
    threshold: np.ndarray  # int64 [C]
    leak_shift: int | None = 1  # None: no leak (IF)
    reset: str = "hard"  # "hard" or "soft"
    ternary: bool = False  # spikes in {-1, 0, +1} instead of {0, 1}


@dataclass
class IntLayer:
    name: str  # the graph node the layer came from
    kind: str  # "linear" or "conv"
    weight: np.ndarray  # int64 [C_out, C_in] or [C_out, C_in, k, k]
    weight_bits: int  # signed width that holds every weight
    bias: np.ndarray  # int64 [C_out], in the units of I
    shift: int  # I = (acc << shift) + bias
    in_shape: tuple[int, ...]  # per sample: (D,) or (C, H, W)
    out_shape: tuple[int, ...]  # before pooling: (C_out,) or (C_out, H_out, W_out)
    neuron: IntNeuron | None = None  # None only for the read-out layer
    stride: int = 1
    padding: int = 0
    pool: int = 0  # max-pool (OR) kernel = stride after the neuron; 0 = none

    @property
    def pooled_shape(self) -> tuple[int, ...]:
        if not self.pool:
            return self.out_shape
        c, h, w = self.out_shape
        return (c, h // self.pool, w // self.pool)


@dataclass
class IntegerNetwork:
    layers: list[IntLayer]
    time_steps: int
    input_scale: float  # x_int = clip(round(x / input_scale), 0, 2**input_bits - 1)
    input_bits: int = 8
    name: str = ""
    notes: list[str] = field(default_factory=list)  # what the conversion approximated

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].in_shape

    @property
    def n_classes(self) -> int:
        return int(self.layers[-1].out_shape[0])

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Real-valued ``x[B, ...]`` (already scaled as the model sees it) -> int64."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.input_scale)
        return np.clip(q, 0, 2 ** self.input_bits - 1).astype(np.int64)

    # -- storage: one .npz with a JSON header, no pickle ---------------------------------------
    def save(self, path: str | Path) -> Path:
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for i, layer in enumerate(self.layers):
            arrays[f"w{i}"] = layer.weight
            arrays[f"b{i}"] = layer.bias
            entry: dict[str, Any] = {
                "name": layer.name, "kind": layer.kind, "weight_bits": layer.weight_bits,
                "shift": layer.shift, "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape), "stride": layer.stride,
                "padding": layer.padding, "pool": layer.pool, "neuron": None}
            if layer.neuron is not None:
                arrays[f"t{i}"] = layer.neuron.threshold
                entry["neuron"] = {"leak_shift": layer.neuron.leak_shift,
                                   "reset": layer.neuron.reset,
                                   "ternary": layer.neuron.ternary}
            layers.append(entry)
        header = {"format": "wb_sim-integer-network", "version": 1, "name": self.name,
                  "time_steps": self.time_steps, "input_scale": self.input_scale,
                  "input_bits": self.input_bits, "notes": self.notes, "layers": layers}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        path = Path(path)
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> IntegerNetwork:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            layers = []
            for i, e in enumerate(header["layers"]):
                neuron = None
                if e["neuron"] is not None:
                    neuron = IntNeuron(data[f"t{i}"].astype(np.int64), e["neuron"]["leak_shift"],
                                       e["neuron"]["reset"],
                                       bool(e["neuron"].get("ternary", False)))
                layers.append(IntLayer(
                    e["name"], e["kind"], data[f"w{i}"].astype(np.int64), int(e["weight_bits"]),
                    data[f"b{i}"].astype(np.int64), int(e["shift"]), tuple(e["in_shape"]),
                    tuple(e["out_shape"]), neuron, int(e["stride"]), int(e["padding"]),
                    int(e["pool"])))
        return cls(layers, int(header["time_steps"]), float(header["input_scale"]),
                   int(header["input_bits"]), header.get("name", ""), list(header["notes"]))
