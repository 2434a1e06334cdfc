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

A neuron with a quantised membrane (``IntNeuron.membrane_bits``, as QT-SNN stores it) keeps,
after the reset, only a ``b``-bit code of its potential on a grid of ``2**membrane_shift``::

    V[c]    = clip(round_half_even(V[c] / 2**k), -(2**(b-1) - 1), 2**(b-1) - 1) * 2**k

(``k = membrane_shift``; see :func:`requantize`). The hardware stores the code, ``b`` bits.

The input is either the same integer vector at every step (``input_kind = "static"``: direct
encoding, ``x_int[B, ...]``) or a train of spikes made on the host by the project's encoder
(``input_kind = "spikes"``: ``x[B, T, ...]`` in {-1, 0, +1}, e.g. a TAE-encoded signal), which
layer 0 accumulates event by event like any spike.

``>>`` is an arithmetic shift (floor division by a power of two), identical in numpy, torch and
Amaranth. A layer with ``pool > 0`` max-pools its spikes (a logical OR over ``pool × pool``
windows, stride ``pool``) before the next layer; a linear layer after a conv layer sees the
spikes flattened in C, H, W order (as ``torch.flatten``). The last layer has no neuron: its
``I`` is summed over the time steps into integer logits, and the prediction is the first index
of the largest logit. An integrating read-out (``integrate``) sums the running sum of its ``I``
instead (``U += I; logits += U``): step t weighs ``T - t``.
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
    membrane_bits: int | None = None  # a stored b-bit membrane code (None: full width)
    membrane_shift: int = 0  # the code's grid: 2**membrane_shift units of V


def requantize(v: np.ndarray, bits: int, shift: int) -> np.ndarray:
    """``clip(round_half_even(v / 2**shift), ±(2**(bits-1) - 1)) * 2**shift`` on int64,
    exactly (the rounding of numpy's ``rint`` and torch's ``round``, done on integers)."""
    v = np.asarray(v, dtype=np.int64)
    top = (1 << (bits - 1)) - 1
    if shift == 0:
        return np.clip(v, -top, top)
    q = v >> shift  # floor
    rest = v - (q << shift)
    half = 1 << (shift - 1)
    q = q + ((rest > half) | ((rest == half) & ((q & 1) == 1)))
    return np.clip(q, -top, top) << shift


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
    #: read-out only: the logits sum a running sum of I (non-leaky integrating read-out
    #: neurons), so step t weighs T - t; False: the logits sum I itself
    integrate: bool = False

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
    input_kind: str = "static"  # "static" (x_int[B, ...]) or "spikes" (x[B, T, ...] in {-1,0,1})

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
                "padding": layer.padding, "pool": layer.pool, "neuron": None,
                "integrate": layer.integrate}
            if layer.neuron is not None:
                arrays[f"t{i}"] = layer.neuron.threshold
                entry["neuron"] = {"leak_shift": layer.neuron.leak_shift,
                                   "reset": layer.neuron.reset,
                                   "ternary": layer.neuron.ternary,
                                   "membrane_bits": layer.neuron.membrane_bits,
                                   "membrane_shift": layer.neuron.membrane_shift}
            layers.append(entry)
        header = {"format": "wb_sim-integer-network", "version": 1, "name": self.name,
                  "time_steps": self.time_steps, "input_scale": self.input_scale,
                  "input_bits": self.input_bits, "notes": self.notes,
                  "input_kind": self.input_kind, "layers": layers}
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
                    n = e["neuron"]
                    neuron = IntNeuron(data[f"t{i}"].astype(np.int64), n["leak_shift"],
                                       n["reset"], bool(n.get("ternary", False)),
                                       n.get("membrane_bits"), int(n.get("membrane_shift", 0)))
                layers.append(IntLayer(
                    e["name"], e["kind"], data[f"w{i}"].astype(np.int64), int(e["weight_bits"]),
                    data[f"b{i}"].astype(np.int64), int(e["shift"]), tuple(e["in_shape"]),
                    tuple(e["out_shape"]), neuron, int(e["stride"]), int(e["padding"]),
                    int(e["pool"]), bool(e.get("integrate", False))))
        return cls(layers, int(header["time_steps"]), float(header["input_scale"]),
                   int(header["input_bits"]), header.get("name", ""), list(header["notes"]),
                   header.get("input_kind", "static"))
