"""The event-driven integer simulator: the golden model of an :class:`IntegerNetwork`.

Per time step and layer only the active inputs do work: a spike (or, in the first layer, a
non-zero input value) adds its weight column to the accumulators of the neurons it reaches,
and nothing else is touched. Everything is vectorised over the batch by working on the list of
events ``(sample, input index)`` that ``np.nonzero`` gives in sample order:

- linear: gather the weight rows ``W.T[j]`` of the events and sum them per sample
  (``np.add.reduceat`` over the contiguous runs of each sample);
- conv: for each kernel offset, the events that land inside the output map scatter-add the
  kernel column ``W[:, c_in, dy, dx]`` at their output position (sorted by position, summed
  with ``reduceat``).

Work therefore grows with the number of spikes times the fan-out, which is what the counters
report: ``synaptic_events`` (accumulates done for spikes), ``dense_macs`` (multiply-accumulates
on the multi-bit input, done once per sample since a direct-encoded input is the same at every
step; zero inputs are skipped) and ``neuron_updates`` (every neuron, every step).

The weight tables of a layer (its fan-outs laid out row by row) are built once per weight array
and kept while that array lives, so a network streamed chunk by chunk, or simulated again, does
not copy its weights each time (at 4096 neurons per layer, building them takes several times
as long as simulating a sparse batch). A layer's weights are read once: to change them, assign a new array
(``layer.weight = ...``); an edit in place is not seen after the first simulation (``forget``
drops what was built). Biases, thresholds and everything else are read on every call.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron, requantize
from workbench.pluginhost import DeployError

#: Horowitz, ISSCC 2014, 45 nm: the ``wb_core.int8_45nm`` figures, used when no registry is at hand.
DEFAULT_E_MAC_PJ = 0.23
DEFAULT_E_AC_PJ = 0.03
DEFAULT_SOURCE = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
                  "ISSCC 2014, 45 nm CMOS: 8-bit multiply 0.2 pJ + add 0.03 pJ")


@dataclass
class SimResult:
    """What a batch did: integer logits and predictions, and the work it took per sample."""

    predictions: np.ndarray  # int64 [B]
    logits: np.ndarray  # int64 [B, C], the read-out's I summed over the time steps
    spike_counts: dict[str, np.ndarray]  # layer name -> int64 [B], over all steps and neurons
    synaptic_events: np.ndarray  # int64 [B], accumulates done for spikes
    dense_macs: np.ndarray  # int64 [B], multiply-accumulates on the non-zero integer inputs
    neuron_updates: np.ndarray  # int64 [B], neuron state updates (every neuron, every step)

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    @classmethod
    def concat(cls, results: list[SimResult]) -> SimResult:
        """Join the results of consecutive chunks into one."""
        if not results:
            raise ValueError("nothing to join")
        names = list(results[0].spike_counts)
        return cls(
            np.concatenate([r.predictions for r in results]),
            np.concatenate([r.logits for r in results]),
            {n: np.concatenate([r.spike_counts[n] for r in results]) for n in names},
            np.concatenate([r.synaptic_events for r in results]),
            np.concatenate([r.dense_macs for r in results]),
            np.concatenate([r.neuron_updates for r in results]),
        )


# -- accumulation, event by event ------------------------------------------------------------
try:  # scipy ships with scikit-learn, a dependency; its CSR product walks the events in C++
    from scipy import sparse as _sparse
except ImportError:  # pragma: no cover - the numpy path below gives the same integers
    _sparse = None

#: ``True``: sum the events with scipy's CSR product; ``False``: with numpy alone (slower).
USE_SCIPY = _sparse is not None


def _sum_events(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | None, n_rows: int,
                table: np.ndarray, *, rows_sorted: bool) -> np.ndarray:
    """``out[rows[e]] += vals[e] * table[cols[e]]`` over the events ``e``; each
    ``(row, col)`` pair occurs at most once.

    Only the listed events are touched: the work is ``len(rows) * table.shape[1]`` additions.
    With scipy the events form a CSR matrix ``A[row, col] = val`` and ``A @ table`` adds the
    table rows of each event in compiled code; without it numpy gathers the rows and sums each
    run of equal ``rows`` with ``reduceat``."""
    out_cols = table.shape[1]
    if rows.size == 0:
        return np.zeros((n_rows, out_cols), dtype=np.int64)
    data = np.ones(rows.size, dtype=table.dtype) if vals is None else vals.astype(table.dtype)
    if USE_SCIPY:
        shape = (n_rows, table.shape[0])
        if rows_sorted:
            indptr = np.zeros(n_rows + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
            events = _sparse.csr_array((data, cols, indptr), shape=shape)
        else:  # scipy's COO -> CSR conversion is a linear-time counting sort
            events = _sparse.coo_array((data, (rows, cols)), shape=shape).tocsr()
        return np.asarray(events @ table, dtype=np.int64)
    if not rows_sorted:
        order = np.argsort(rows, kind="stable")
        rows, cols, data = rows[order], cols[order], data[order]
    out = np.zeros((n_rows, out_cols), dtype=np.int64)
    contrib = table[cols] if vals is None else table[cols] * data[:, None]
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    out[rows[starts]] += np.add.reduceat(contrib, starts, axis=0, dtype=np.int64)
    return out


def _linear_events(prep: _Prepared, active: np.ndarray, values: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``acc[B, C_out]`` from the active inputs of ``active[B, D]`` and the synapse operations
    per sample. ``values`` (the first layer's integer input) weights each event."""
    batch = active.shape[0]
    samples, inputs = np.nonzero(active)  # row-major: sorted by sample
    vals = values[samples, inputs] if values is not None else None
    table = prep.table(vals)
    acc = _sum_events(samples, inputs, vals, batch, table, rows_sorted=True)
    fan_out = table.shape[1]
    return acc, np.bincount(samples, minlength=batch).astype(np.int64) * fan_out


def _conv_events(prep: _Prepared, active: np.ndarray, values: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``acc[B, C_out, H_out, W_out]``: every active input of ``active[B, C_in, H, W]`` adds
    the kernel column ``W[:, c_in, dy, dx]`` at each output position it reaches; taps that fall
    outside the output map are neither done nor counted."""
    layer = prep.layer
    batch = active.shape[0]
    c_out, _, k, _ = layer.weight.shape
    _, h_out, w_out = layer.out_shape
    stride, pad = layer.stride, layer.padding
    samples, chans, ys, xs = np.nonzero(active)
    vals = values[samples, chans, ys, xs] if values is not None else None
    targets, taps, picks = [], [], []
    for dy in range(k):
        oy = ys + pad - dy
        ok_y = (oy >= 0) & (oy % stride == 0) & (oy < h_out * stride)
        for dx in range(k):
            ox = xs + pad - dx
            hit = np.flatnonzero(ok_y & (ox >= 0) & (ox % stride == 0) & (ox < w_out * stride))
            targets.append((samples[hit] * h_out + oy[hit] // stride) * w_out + ox[hit] // stride)
            taps.append((chans[hit] * k + dy) * k + dx)  # row of the [C_in*k*k, C_out] table
            picks.append(hit)
    target = np.concatenate(targets)
    hit_vals = vals[np.concatenate(picks)] if vals is not None else None
    table = prep.table(vals)
    acc = _sum_events(target, np.concatenate(taps), hit_vals, batch * h_out * w_out, table,
                      rows_sorted=False)
    events = np.bincount(target // (h_out * w_out), minlength=batch).astype(np.int64) * c_out
    return acc.reshape(batch, h_out, w_out, c_out).transpose(0, 3, 1, 2), events


class _Tables:
    """The weights of one layer laid out as a table of fan-outs: row ``j`` holds the weights
    one event at input ``j`` adds (linear: ``W.T``; conv: rows ``(c_in, dy, dx)`` of ``W``
    moved to ``[C_in*k*k, C_out]``). Owns its arrays (no view of the weights), so it never
    keeps them alive."""

    def __init__(self, weight: np.ndarray, kind: str) -> None:
        w = np.asarray(weight, dtype=np.int64)
        rows = w.T if kind == "linear" else w.transpose(1, 2, 3, 0).reshape(-1, w.shape[0])
        self.kind = kind
        magnitude = np.abs(rows)
        # The largest |accumulator| a spike input can reach: int32 arithmetic is exact below it.
        self.peak = int(magnitude.sum(axis=0).max(initial=0))
        wide = int(magnitude.max(initial=0)) >= 2 ** 31
        # Both are copies (a dtype change or copy=True), never views of the weights.
        self.table32 = None if wide else np.ascontiguousarray(rows, dtype=np.int32)
        self._table64 = np.array(rows, dtype=np.int64, order="C", copy=True) if wide else None

    @property
    def table64(self) -> np.ndarray:
        """Built on first use: most networks never need it, and it takes twice the memory."""
        if self._table64 is None:
            self._table64 = self.table32.astype(np.int64)
        return self._table64


#: id(weight array) -> (a weak reference to it, its tables); an entry leaves with its array.
_TABLES: dict[int, tuple[weakref.ref, _Tables]] = {}


def _tables_for(layer: IntLayer) -> _Tables:
    """The tables of ``layer``'s weights: built on the first call, then reused while the same
    weight array lives (an array id is only reused after the array died, which drops its
    entry)."""
    weight = layer.weight
    key = id(weight)
    hit = _TABLES.get(key)
    if hit is not None and hit[0]() is weight and hit[1].kind == layer.kind:
        return hit[1]
    tables = _Tables(weight, layer.kind)
    try:
        ref = weakref.ref(weight, lambda _, key=key: _TABLES.pop(key, None))
    except TypeError:  # not an ndarray (a nested list, say): nothing to key on, build per call
        return tables
    _TABLES[key] = (ref, tables)
    return tables


def forget(net: IntegerNetwork) -> None:
    """Drop the tables built for ``net``'s weights, after editing a weight array in place."""
    for layer in net.layers:
        _TABLES.pop(id(layer.weight), None)


class _Prepared:
    """A layer ready to simulate: its cached weight tables, its bias and threshold shaped to
    broadcast over ``[B, C, ...]`` (these are cheap and read afresh on every call)."""

    def __init__(self, layer: IntLayer) -> None:
        self.layer = layer
        self.tables = _tables_for(layer)
        extra = (1,) * (len(layer.out_shape) - 1)
        self.bias = layer.bias.astype(np.int64).reshape((-1,) + extra)
        self.threshold = (layer.neuron.threshold.astype(np.int64).reshape((-1,) + extra)
                          if layer.neuron is not None else None)

    def table(self, values: np.ndarray | None) -> np.ndarray:
        """The int32 table when every sum fits in int32 (half the memory traffic), else int64."""
        top = int(np.abs(values).max(initial=0)) if values is not None else 1
        small = self.tables.table32 is not None and self.tables.peak * max(top, 1) < 2 ** 31
        return self.tables.table32 if small else self.tables.table64

    def accumulate(self, active: np.ndarray, values: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        batch = active.shape[0]
        if self.layer.kind == "linear":
            flat = active.reshape(batch, -1)
            vals = values.reshape(batch, -1) if values is not None else None
            return _linear_events(self, flat, vals)
        shape = (batch,) + tuple(self.layer.in_shape)
        vals = values.reshape(shape) if values is not None else None
        return _conv_events(self, active.reshape(shape), vals)


def neuron_step(neuron: IntNeuron, threshold: np.ndarray, v: np.ndarray, current: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """One step of the integer neuron of ``ir.py``: ``(spikes, new V)``; spikes are bool, or
    int64 in {-1, 0, 1} for a ternary neuron."""
    if neuron.leak_shift is None:
        h = v + current
    else:
        h = v >> neuron.leak_shift
        np.subtract(v, h, out=h)
        h += current
    if neuron.ternary:
        spikes = (h >= threshold).astype(np.int64) - (h <= -threshold)
        fired = spikes != 0
    else:
        spikes = fired = h >= threshold
    if neuron.reset == "hard":
        h[fired] = 0
    else:
        h -= threshold * spikes
    if neuron.membrane_bits is not None:
        h = requantize(h, neuron.membrane_bits, neuron.membrane_shift)
    return spikes, h


def or_pool(spikes: np.ndarray, pool: int) -> np.ndarray:
    """Max pooling of binary maps ``[B, C, H, W]``: an OR over ``pool × pool`` windows."""
    b, c, h, w = spikes.shape
    ho, wo = h // pool, w // pool
    cropped = spikes[:, :, : ho * pool, : wo * pool]
    return cropped.reshape(b, c, ho, pool, wo, pool).any(axis=(3, 5))


def as_int_input(net: IntegerNetwork, x_int: Any) -> np.ndarray:
    """``x_int`` as int64 ``[B, *net.input_shape]`` (``[B, T, *net.input_shape]`` of spikes
    in {-1, 0, 1} for an ``input_kind = "spikes"`` network); raises :class:`DeployError`
    otherwise."""
    x = np.asarray(x_int)
    if x.dtype.kind not in "iub" and (x.dtype.kind != "f" or not np.all(x == np.round(x))):
        raise DeployError("the simulator takes integer inputs; quantise them first with "
                          "IntegerNetwork.quantize_input", where="input")
    size = int(np.prod(net.input_shape))
    lead = (net.time_steps,) if net.input_kind == "spikes" else ()
    per_sample = int(np.prod(lead)) * size
    if x.ndim == 0 or (x.shape[0] and x[0].size != per_sample):
        shape = [*lead, *net.input_shape]
        raise DeployError(f"each input must hold {per_sample} values ({shape}), got "
                          f"{list(x.shape[1:])}", where="input")
    if lead and x.size and int(np.abs(x).max()) > 1:
        raise DeployError("this network takes spikes (-1, 0 or 1 per input and step) made by "
                          "the project's encoder, got larger values", where="input")
    return x.astype(np.int64).reshape((x.shape[0],) + lead + tuple(net.input_shape))


def check_network(net: IntegerNetwork) -> None:
    """What the arithmetic of ``ir.py`` does not define; raises :class:`DeployError`."""
    if net.input_kind not in ("static", "spikes"):
        raise DeployError(f"unknown input kind {net.input_kind!r}; expected 'static' or "
                          "'spikes'", where="input_kind")
    for layer in net.layers:
        if layer.neuron is not None and layer.neuron.ternary and layer.pool:
            raise DeployError("max pooling is an OR of binary spikes; it is not defined for "
                              "ternary spikes", where=f"node {layer.name!r}")
        bits = layer.neuron.membrane_bits if layer.neuron is not None else None
        if bits is not None and not 2 <= bits <= 32:
            raise DeployError(f"a membrane code of {bits} bits; 2 to 32 are defined",
                              where=f"node {layer.name!r}")


def simulate(net: IntegerNetwork, x_int: Any) -> SimResult:
    """Run ``net`` on integer inputs ``x_int[B, ...]``, event-driven; bit-exact by design."""
    check_network(net)
    x = as_int_input(net, x_int)
    batch = x.shape[0]
    prepared = [_Prepared(layer) for layer in net.layers]
    states = [np.zeros((batch,) + tuple(p.layer.out_shape), dtype=np.int64)
              if p.layer.neuron is not None else None for p in prepared]
    spike_counts = {p.layer.name: np.zeros(batch, dtype=np.int64)
                    for p in prepared if p.layer.neuron is not None}
    logits = np.zeros((batch, net.n_classes), dtype=np.int64)
    readout_membrane = np.zeros_like(logits)  # an integrating read-out's running sum
    events = np.zeros(batch, dtype=np.int64)
    spiking_input = net.input_kind == "spikes"
    if spiking_input:  # encoded on the host: each input spike is one accumulate, like any spike
        dense_macs = np.zeros(batch, dtype=np.int64)
    else:
        # The input is the same at every step (direct encoding): its multiply-accumulates are
        # done once and the accumulator reused, as the energy ledger's encode-once convention
        # counts it.
        first_acc, dense_macs = prepared[0].accumulate(x != 0, x)
    neurons = sum(int(np.prod(p.layer.out_shape)) for p in prepared if p.layer.neuron is not None)
    for t in range(net.time_steps):
        active: np.ndarray | None = x[:, t] if spiking_input else None
        for index, p in enumerate(prepared):
            if index == 0 and not spiking_input:
                acc = first_acc
            elif active.dtype == np.bool_:
                acc, done = p.accumulate(active)
                events += done
            else:  # ternary spikes: each non-zero one adds or subtracts its weights
                acc, done = p.accumulate(active != 0, active)
                events += done
            current = (acc << p.layer.shift) + p.bias
            if p.layer.neuron is None:
                if p.layer.integrate:
                    readout_membrane += current
                    current = readout_membrane
                logits += current
                continue
            spikes, states[index] = neuron_step(p.layer.neuron, p.threshold, states[index],
                                                current)
            spike_counts[p.layer.name] += (spikes != 0).reshape(batch, -1).sum(axis=1)
            active = or_pool(spikes, p.layer.pool) if p.layer.pool else spikes
    return SimResult(
        predictions=np.argmax(logits, axis=1).astype(np.int64), logits=logits,
        spike_counts=spike_counts, synaptic_events=events, dense_macs=dense_macs,
        neuron_updates=np.full(batch, neurons * net.time_steps, dtype=np.int64))


def iter_simulate(net: IntegerNetwork, x_int: Any, chunk: int = 8) -> Iterator[SimResult]:
    """Stream ``x_int`` through :func:`simulate` ``chunk`` samples at a time."""
    if chunk < 1:
        raise DeployError(f"chunk must be at least 1, got {chunk}", where="chunk")
    x = as_int_input(net, x_int)
    for start in range(0, x.shape[0], chunk):
        yield simulate(net, x[start:start + chunk])


# -- energy -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyTable:
    id: str
    e_mac_pj: float
    e_ac_pj: float
    source: str


def int8_table(lookup: Any = None) -> EnergyTable:
    """The INT8 45 nm cost table: ``wb_core.int8_45nm`` from the registry when it is there,
    else the same published figures."""
    spec = lookup.get("wb_core.int8_45nm") if lookup is not None else None
    if spec is not None and hasattr(spec, "e_mac_pj"):
        return EnergyTable(spec.id, float(spec.e_mac_pj), float(spec.e_ac_pj), spec.source)
    return EnergyTable("wb_core.int8_45nm", DEFAULT_E_MAC_PJ, DEFAULT_E_AC_PJ, DEFAULT_SOURCE)


def energy_pj(result: SimResult, table: Any = None) -> np.ndarray:
    """Estimated energy per sample (pJ, float64 [B]) from the counted events:
    ``dense_macs * e_mac + synaptic_events * e_ac``. An estimate, not a measurement: the
    counts are exact, the cost per operation comes from ``table`` (default INT8, 45 nm,
    Horowitz ISSCC 2014). Neuron updates are not charged (docs/energy.md)."""
    if table is None:
        table = int8_table()
    if isinstance(table, Mapping):
        e_mac, e_ac = float(table["e_mac_pj"]), float(table["e_ac_pj"])
    else:
        e_mac, e_ac = float(table.e_mac_pj), float(table.e_ac_pj)
    return result.dense_macs.astype(np.float64) * e_mac + result.synaptic_events * e_ac
