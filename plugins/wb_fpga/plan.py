"""The layout of the spiking core for one network: layer table, bit widths, memories.

Pure numpy: the fit check and the cycle model use it without importing Amaranth. The widths
come from bounds on the network's own integers (interval arithmetic over the ``T`` time steps),
so no register or memory word can overflow for any input the core accepts (``0 .. 2**input_bits
- 1`` per input, each input index written at most once per sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workbench.core.errors import DeployError

from wb_sim.ir import IntegerNetwork, IntLayer

#: Cycles an accumulation group spends after its last event issue: the event memory read and the
#: weight memory read (both synchronous, one cycle each) before the last add.
ACC_FLUSH = 2


def signed_width(lo: int, hi: int) -> int:
    """The smallest two's-complement width holding ``lo .. hi`` (at least 2 bits)."""
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def unsigned_width(hi: int) -> int:
    return max(1, int(hi).bit_length())


@dataclass(frozen=True)
class Bounds:
    """Inclusive integer ranges one layer's values take (over all neurons and time steps)."""

    acc: tuple[int, int]
    current: tuple[int, int]  # I = (acc << shift) + bias
    potential: tuple[int, int]  # V stored between steps
    pre_reset: tuple[int, int]  # H before the comparison
    threshold: tuple[int, int]


@dataclass(frozen=True)
class LayerPlan:
    index: int
    name: str
    c_in: int
    c_out: int
    groups: int  # ceil(c_out / P): accumulation groups of P output neurons
    last_group: int  # neurons in the last group
    wbase: int  # first word of this layer in the weight store
    voff: int  # first word in the threshold memory (-1: read-out, no neuron)
    boff: int  # first word in the bias memory
    shift: int
    leak_shift: int | None
    reset: str
    has_neuron: bool
    uniform_threshold: int | None  # the layer's threshold when all neurons share it
    bounds: Bounds

    @property
    def potential_width(self) -> int:
        """Width of this layer's membrane memory (each neuron layer has its own)."""
        return signed_width(*self.bounds.potential)


@dataclass(frozen=True)
class Widths:
    weight: int  # signed width of one weight lane
    input: int  # unsigned width of an input value
    acc: int
    current: int
    potential: int  # the widest layer's membrane (the datapath)
    pre_reset: int
    threshold: int
    bias: int
    logit: int
    count: int  # spike counters
    cycles: int
    in_index: int
    ev_index: int


@dataclass(frozen=True)
class MemoryInfo:
    """One memory of the core, with the layer each word range belongs to."""

    name: str
    depth: int
    width: int
    kind: str  # "weights", "membrane", "bias", "threshold", "events", "cache", "logits"
    init: bool  # initialised by the bitstream (ROM) or written at run time
    per_layer: dict[str, int] = field(default_factory=dict)  # layer name -> words
    layer: str | None = None  # the one layer a per-layer memory belongs to

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class CorePlan:
    net: IntegerNetwork
    parallelism: int
    layers: tuple[LayerPlan, ...]
    widths: Widths
    weight_words: int
    membrane_words: int  # neurons of all neuron layers (the threshold memory's depth)
    bias_words: int
    has_bias: bool
    uniform_thresholds: bool
    cache_input: bool  # layer 0's accumulators are kept from t = 0 (its input never changes)
    event_depth: int  # spike-event buffer half (a power of two >= the widest hidden layer)
    weight_store: str  # "rom": initialised block RAM; "ram": loaded over the load port (SPRAM)

    @property
    def time_steps(self) -> int:
        return self.net.time_steps

    @property
    def n_classes(self) -> int:
        return self.layers[-1].c_out

    def memories(self) -> list[MemoryInfo]:
        """Every memory the core instantiates, in the order of :mod:`wb_fpga.hdl`."""
        w = self.widths
        ls = self.layers
        mems = [MemoryInfo("weights", self.weight_words, self.parallelism * w.weight, "weights",
                           self.weight_store == "rom",
                           {lp.name: lp.groups * lp.c_in for lp in ls}),
                MemoryInfo("input_events", max(ls[0].c_in, 1), w.in_index + w.input, "events",
                           False, {ls[0].name: ls[0].c_in})]
        if len(ls) > 1:
            mems.append(MemoryInfo("spike_events", 2 * self.event_depth, w.ev_index, "events",
                                   False, {lp.name: lp.c_in for lp in ls[1:]}))
        for lp in ls:
            if lp.has_neuron:
                mems.append(MemoryInfo(f"membrane{lp.index}", lp.c_out, lp.potential_width,
                                       "membrane", False, {lp.name: lp.c_out}, lp.name))
        if self.has_bias:
            mems.append(MemoryInfo("bias", self.bias_words, w.bias, "bias", True,
                                   {lp.name: lp.c_out for lp in ls}))
        if not self.uniform_thresholds:
            mems.append(MemoryInfo("threshold", self.membrane_words, w.threshold, "threshold",
                                   True, {lp.name: lp.c_out for lp in ls if lp.has_neuron}))
        if self.cache_input:
            mems.append(MemoryInfo("input_cache", ls[0].c_out, w.acc, "cache", False,
                                   {ls[0].name: ls[0].c_out}))
        mems.append(MemoryInfo("logits", ls[-1].c_out, w.logit, "logits", False,
                               {ls[-1].name: ls[-1].c_out}))
        return mems

    def weight_init(self) -> list[int]:
        """The weight store's words: lane ``p`` of word ``wbase + g * c_in + i`` holds
        ``W[g * P + p, i]`` (two's complement, zero beyond ``c_out``)."""
        P, wb = self.parallelism, self.widths.weight
        mask = (1 << wb) - 1
        words: list[int] = []
        for lp, layer in zip(self.layers, self.net.layers):
            w = np.asarray(layer.weight, dtype=np.int64)
            padded = np.zeros((lp.groups * P, lp.c_in), dtype=np.int64)
            padded[: lp.c_out] = w
            lanes = (padded & mask).astype(object).reshape(lp.groups, P, lp.c_in)
            for g in range(lp.groups):
                word = np.zeros(lp.c_in, dtype=object)
                for p in range(P):
                    word = word + (lanes[g, p] << (p * wb))
                words.extend(int(v) for v in word)
        return words

    def bias_init(self) -> list[int]:
        return [int(b) for layer in self.net.layers for b in np.asarray(layer.bias).ravel()]

    def threshold_init(self) -> list[int]:
        return [int(v) for layer in self.net.layers if layer.neuron is not None
                for v in np.asarray(layer.neuron.threshold).ravel()]


def unsupported(net: IntegerNetwork) -> list[tuple[str, str]]:
    """``(layer name, why)`` for every layer the core cannot implement."""
    found = []
    for i, layer in enumerate(net.layers):
        if layer.kind != "linear":
            found.append((layer.name, f"a {layer.kind} layer: the FPGA core implements linear "
                                      "(fully connected) layers only; use wb_sim for "
                                      "convolutional networks"))
        elif layer.pool:
            found.append((layer.name, "pooling after a linear layer is not supported"))
        elif (layer.neuron is None) != (i == len(net.layers) - 1):
            found.append((layer.name, "only the last layer may be (and must be) a read-out "
                                      "without a neuron"))
        elif layer.neuron is not None and layer.neuron.reset not in ("hard", "soft"):
            found.append((layer.name, f"unknown reset {layer.neuron.reset!r}"))
    return found


def plan_core(net: IntegerNetwork, parallelism: int, *, weight_store: str = "rom",
              cache_input: bool | None = None) -> CorePlan:
    """Lay out the core for ``net`` with ``parallelism`` lanes. Raises :class:`DeployError`
    naming the layer when the network has something the core cannot implement."""
    if parallelism < 1:
        raise DeployError(f"parallelism must be at least 1, got {parallelism}",
                          where="parallelism")
    if weight_store not in ("rom", "ram"):
        raise DeployError(f"unknown weight store {weight_store!r}", where="weight_store")
    if not net.layers:
        raise DeployError("the integer network has no layers", where="network")
    bad = unsupported(net)
    if bad:
        name, why = bad[0]
        raise DeployError(why, where=f"node {name!r}")
    P = int(parallelism)
    T = int(net.time_steps)
    if T < 1:
        raise DeployError(f"time_steps must be at least 1, got {T}", where="time_steps")
    layers: list[LayerPlan] = []
    wbase = voff = boff = 0
    for i, layer in enumerate(net.layers):
        w = np.asarray(layer.weight, dtype=np.int64)
        if w.ndim != 2:
            raise DeployError(f"a linear layer needs a 2-D weight, got shape {list(w.shape)}",
                              where=f"node {layer.name!r}")
        c_out, c_in = (int(v) for v in w.shape)
        expected_in = net.input_shape if i == 0 else (layers[-1].c_out,)
        if int(np.prod(layer.in_shape)) != c_in or (i and c_in != expected_in[0]):
            raise DeployError(f"weight shape {list(w.shape)} does not match its input "
                              f"{list(layer.in_shape)}", where=f"node {layer.name!r}")
        groups = math.ceil(c_out / P)
        neuron = layer.neuron
        bounds = _bounds(net, i, layer)
        uniform = None
        if neuron is not None:
            thr = np.asarray(neuron.threshold, dtype=np.int64).ravel()
            if thr.size and np.all(thr == thr[0]):
                uniform = int(thr[0])
        layers.append(LayerPlan(
            i, layer.name, c_in, c_out, groups, c_out - (groups - 1) * P, wbase,
            voff if neuron is not None else -1, boff, int(layer.shift),
            None if neuron is None else neuron.leak_shift,
            "hard" if neuron is None else neuron.reset, neuron is not None, uniform, bounds))
        wbase += groups * c_in
        boff += c_out
        if neuron is not None:
            voff += c_out
    ls = tuple(layers)
    weight_bits = max(_signed_bits_of(layer.weight) for layer in net.layers)
    declared = max(int(layer.weight_bits) for layer in net.layers)
    weight_bits = max(weight_bits, min(declared, 64))
    hidden = [lp for lp in ls if lp.has_neuron]
    cache = (T > 1) if cache_input is None else bool(cache_input)
    biases = np.concatenate([np.asarray(layer.bias, dtype=np.int64).ravel()
                             for layer in net.layers])
    has_bias = bool(np.any(biases != 0))
    uniform_thr = all(lp.uniform_threshold is not None for lp in hidden)
    event_depth = 1 << max(0, (max((lp.c_out for lp in ls[:-1]), default=1) - 1).bit_length())

    def span(attr: str) -> tuple[int, int]:
        values = [getattr(lp.bounds, attr) for lp in ls]
        return min(v[0] for v in values), max(v[1] for v in values)

    last = ls[-1].bounds.current
    logit = (min(T * last[0], 0), max(T * last[1], 0))
    cycle_bound = _cycle_bound(ls, P, T, cache)
    widths = Widths(
        weight=weight_bits,
        input=max(1, int(net.input_bits)),
        acc=signed_width(*span("acc")),
        current=signed_width(*span("current")),
        potential=signed_width(*span("potential")) if hidden else 2,
        pre_reset=signed_width(*span("pre_reset")) if hidden else 2,
        threshold=signed_width(*span("threshold")) if hidden else 2,
        bias=signed_width(int(biases.min()), int(biases.max())) if biases.size else 2,
        logit=signed_width(*logit),
        count=unsigned_width(T * max(lp.c_out for lp in ls)),
        cycles=unsigned_width(cycle_bound),
        in_index=unsigned_width(max(ls[0].c_in - 1, 1)),
        ev_index=unsigned_width(max(event_depth - 1, 1)),
    )
    if max(widths.acc, widths.current, widths.potential, widths.logit) > 62:
        raise DeployError("the network's integers need more than 62 bits in the core; lower "
                          "frac_bits or the weight/input bits", where="network")
    return CorePlan(net, P, ls, widths, wbase, voff, boff, has_bias, uniform_thr, cache,
                    event_depth, weight_store)


def _signed_bits_of(weight: np.ndarray) -> int:
    w = np.asarray(weight, dtype=np.int64)
    if not w.size:
        return 2
    return signed_width(int(w.min()), int(w.max()))


def _bounds(net: IntegerNetwork, index: int, layer: IntLayer) -> Bounds:
    """Ranges by interval arithmetic: exact per-neuron sums of the positive and negative
    weights times the largest input, then ``T`` steps of the neuron update on intervals."""
    w = np.asarray(layer.weight, dtype=np.int64)
    xmax = (1 << int(net.input_bits)) - 1 if index == 0 else 1
    # Row sums in int64 (weights < 2**32, fan-in < 2**24: far from overflow), then Python ints.
    pos = np.where(w > 0, w, 0).sum(axis=1).astype(object) * xmax
    neg = np.where(w < 0, w, 0).sum(axis=1).astype(object) * xmax
    bias = np.asarray(layer.bias, dtype=np.int64).astype(object).ravel()
    scale = 1 << int(layer.shift)
    i_lo = neg * scale + bias
    i_hi = pos * scale + bias
    acc = (min(0, min(neg)), max(0, max(pos)))
    current = (min(min(i_lo), 0), max(max(i_hi), 0))
    neuron = layer.neuron
    if neuron is None:
        return Bounds(acc, current, (0, 0), (0, 0), (0, 0))
    thr = np.asarray(neuron.threshold, dtype=np.int64).astype(object).ravel()
    k = neuron.leak_shift

    def leak(v):
        return v if k is None else v - (v >> int(k))

    v_lo = np.zeros_like(thr)
    v_hi = np.zeros_like(thr)
    pot_lo, pot_hi, h_lo_all, h_hi_all = 0, 0, 0, 0
    for _ in range(int(net.time_steps)):
        h_lo = np.array([leak(v) for v in v_lo], dtype=object) + i_lo
        h_hi = np.array([leak(v) for v in v_hi], dtype=object) + i_hi
        h_lo_all, h_hi_all = min(h_lo_all, min(h_lo)), max(h_hi_all, max(h_hi))
        new_lo, new_hi = [], []
        for c in range(len(thr)):
            los, his = [], []
            if h_lo[c] < thr[c]:  # may stay below threshold
                los.append(h_lo[c])
                his.append(min(h_hi[c], thr[c] - 1))
            if h_hi[c] >= thr[c]:  # may fire
                if neuron.reset == "soft":
                    los.append(max(h_lo[c], thr[c]) - thr[c])
                    his.append(h_hi[c] - thr[c])
                else:
                    los.append(0)
                    his.append(0)
            new_lo.append(min(los))
            new_hi.append(max(his))
        v_lo = np.array(new_lo, dtype=object)
        v_hi = np.array(new_hi, dtype=object)
        pot_lo, pot_hi = min(pot_lo, min(v_lo)), max(pot_hi, max(v_hi))
    threshold = (min(min(thr), 0), max(max(thr), 0))
    return Bounds(acc, current, (pot_lo, pot_hi), (h_lo_all, h_hi_all), threshold)


def _cycle_bound(layers: tuple[LayerPlan, ...], P: int, T: int, cache: bool) -> int:
    """Cycles of the densest possible sample (every input an event), for the counter width."""
    from wb_fpga.cycles import CACHED_PASS_EXTRA, pass_cycles

    total = 0
    for t in range(T):
        for lp in layers:
            if cache and lp.index == 0 and t > 0:
                total += lp.c_out + CACHED_PASS_EXTRA
            else:
                total += int(pass_cycles(np.array([lp.c_in]), lp.groups, P, lp.last_group)[0])
    return total + 1
