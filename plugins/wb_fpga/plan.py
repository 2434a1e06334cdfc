"""The layout of the spiking core for one network: layer table, bit widths, memories.

Pure numpy: the fit check and the cycle model use it without importing Amaranth. The widths
come from bounds on the network's own integers (interval arithmetic over the ``T`` time steps),
so no register or memory word can overflow for any input the core accepts (``0 .. 2**input_bits
- 1`` per input, each input index written at most once per sample; for a spike-train input
``-1 .. 1`` per input and step, each index at most once per step).

Signal networks (QT-SNN) run on the linear engine: a ternary layer's spikes carry their sign
(the next layer adds or subtracts the weight), a layer with a membrane code stores only the
``b``-bit code ``V >> membrane_shift`` (its memory is ``b`` bits wide or less, from the bounds),
and a spike-train input is loaded per step by the host.

Linear layers run on the accumulate-then-fire engine (P accumulator registers, a serial neuron
unit); conv layers on the scatter-and-sweep engine (:mod:`wb_fpga.conv`): events add their
kernel taps into a membrane memory of P-lane words, then a sweep updates P neurons per cycle,
ORs the pooling windows and emits the next layer's events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from wb_sim.ir import IntegerNetwork, IntLayer

from wb_fpga.conv import ConvGeometry, field_bits
from wb_fpga.timing import cycle_bound
from workbench.pluginhost import DeployError


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
    # conv layers store V - (V >> k) plus the partial sums of (acc << shift) of the running step
    stored: tuple[int, int] = (0, 0)
    bias: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class LayerPlan:
    index: int
    name: str
    c_in: int  # inputs (conv: C_in x H_in x W_in positions; the event count's bound)
    c_out: int  # neurons (conv: C_out x H_out x W_out)
    groups: int  # ceil(output channels / P): groups of P output neurons (conv: channels)
    last_group: int  # neurons (conv: channels) in the last group
    wbase: int  # first word of this layer in the weight store
    voff: int  # first word in the threshold memory (-1: read-out or conv, no serial neuron)
    boff: int  # first word in the bias memory (-1: conv, biases are constants)
    shift: int
    leak_shift: int | None
    reset: str
    has_neuron: bool
    uniform_threshold: int | None  # the layer's threshold when all neurons share it
    bounds: Bounds
    kind: str = "linear"  # "linear" or "conv"
    conv: ConvGeometry | None = None
    # a conv layer's events for the next layer: "conv" (bit fields x, y, c) or "linear" (the
    # C, H, W flatten index); None for the last layer
    next_kind: str | None = None
    mbase: int = 0  # conv: first word of this layer in the conv membrane memory
    ternary: bool = False  # fires -1 at H <= -threshold too; its events carry the sign
    membrane_bits: int | None = None  # stores the b-bit code V >> membrane_shift
    membrane_shift: int = 0
    signed_input: bool = False  # its input events carry a sign (add or subtract the weight)

    @property
    def potential_width(self) -> int:
        """Width of this layer's membrane memory (a conv layer's: what it stores between
        events; a layer with a membrane code: the code's, ``V >> membrane_shift``)."""
        if self.kind == "conv":
            return signed_width(*self.bounds.stored)
        lo, hi = self.bounds.potential
        if self.membrane_bits is not None:
            return signed_width(lo >> self.membrane_shift, hi >> self.membrane_shift)
        return signed_width(lo, hi)

    @property
    def weight_words(self) -> int:
        return self.conv.weight_words if self.conv is not None else self.groups * self.c_in

    @property
    def membrane_words(self) -> int:
        return self.conv.membrane_words if self.conv is not None else self.c_out


    @property
    def emits(self) -> int:
        """Events this layer can produce in one step (after pooling)."""
        if self.conv is None:
            return self.c_out
        hp, wp = self.conv.pooled
        return self.conv.c_out * hp * wp


@dataclass(frozen=True)
class Widths:
    weight: int  # signed width of one weight lane
    input: int  # unsigned width of an input value
    acc: int  # the linear engine's datapath from here to ``threshold``
    current: int
    potential: int  # the widest linear layer's membrane (the datapath)
    pre_reset: int
    threshold: int
    bias: int
    logit: int
    count: int  # spike counters
    cycles: int
    in_index: int
    ev_index: int
    conv: int = 2  # the conv engine's datapath: stored values, H, thresholds, biases


@dataclass(frozen=True)
class MemoryInfo:
    """One memory of the core, with the layer each word range belongs to."""

    name: str
    depth: int
    width: int
    kind: str  # "weights", "membrane", "bias", "threshold", "events", "cache", "logits"
    init: bool  # initialised by the bitstream (ROM, or a conv membrane's zeros) or not
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
    membrane_words: int  # neurons of the linear neuron layers (the threshold memory's depth)
    bias_words: int
    has_bias: bool
    uniform_thresholds: bool  # every linear neuron layer has one threshold
    cache_input: bool  # layer 0's accumulators are kept from t = 0 (linear layer 0 only)
    event_depth: int  # spike-event buffer half (a power of two >= the most events of a layer)
    weight_store: str  # "rom": initialised block RAM; "ram": loaded over the load port (SPRAM)
    signed_events: bool = False  # spike-event words carry a sign bit (a ternary layer emits)

    @property
    def time_steps(self) -> int:
        return self.net.time_steps

    @property
    def spike_input(self) -> bool:
        """The input is a spike train loaded step by step (``input_kind == "spikes"``)."""
        return self.net.input_kind == "spikes"

    @property
    def input_depth(self) -> int:
        """Input events one sample can hold: every input once, or once per step (spikes)."""
        c_in = max(self.layers[0].c_in, 1)
        return c_in * self.time_steps if self.spike_input else c_in

    @property
    def input_word(self) -> int:
        """Width of an input event: the index and the value, or the index and a sign bit."""
        return self.widths.in_index + (1 if self.spike_input else self.widths.input)

    @property
    def event_word(self) -> int:
        """Width of a spike event: the index, and the sign when a ternary layer emits."""
        return self.widths.ev_index + int(self.signed_events)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].c_out

    @property
    def linear_layers(self) -> tuple[LayerPlan, ...]:
        return tuple(lp for lp in self.layers if lp.kind == "linear")

    @property
    def conv_layers(self) -> tuple[LayerPlan, ...]:
        return tuple(lp for lp in self.layers if lp.kind == "conv")

    def memories(self) -> list[MemoryInfo]:
        """Every memory the core instantiates, in the order of :mod:`wb_fpga.hdl`."""
        w = self.widths
        ls = self.layers
        lin = self.linear_layers
        mems = [MemoryInfo("weights", self.weight_words, self.parallelism * w.weight, "weights",
                           self.weight_store == "rom",
                           {lp.name: lp.weight_words for lp in ls}),
                MemoryInfo("input_events", self.input_depth, self.input_word, "events",
                           False, {ls[0].name: self.input_depth})]
        if len(ls) > 1:
            mems.append(MemoryInfo("spike_events", 2 * self.event_depth, self.event_word,
                                   "events", False, {lp.name: lp.c_in for lp in ls[1:]}))
        for lp in lin:
            if lp.has_neuron:
                mems.append(MemoryInfo(f"membrane{lp.index}", lp.c_out, lp.potential_width,
                                       "membrane", False, {lp.name: lp.c_out}, lp.name))
        convs = self.conv_layers
        if convs:
            # One memory for every conv layer: words of P lanes at the conv datapath's width,
            # read by the lanes without a multiplexer. The scatter adds to it from the first
            # step on, so it relies on the zeros the bitstream gives it (each sample's last
            # step writes zeros back).
            mems.append(MemoryInfo("conv_membranes", sum(lp.membrane_words for lp in convs),
                                   self.parallelism * w.conv, "membrane", True,
                                   {lp.name: lp.membrane_words for lp in convs}))
        if self.has_bias:
            mems.append(MemoryInfo("bias", self.bias_words, w.bias, "bias", True,
                                   {lp.name: lp.c_out for lp in lin}))
        if not self.uniform_thresholds:
            mems.append(MemoryInfo("threshold", self.membrane_words, w.threshold, "threshold",
                                   True, {lp.name: lp.c_out for lp in lin if lp.has_neuron}))
        if self.cache_input:
            mems.append(MemoryInfo("input_cache", ls[0].c_out, w.acc, "cache", False,
                                   {ls[0].name: ls[0].c_out}))
        mems.append(MemoryInfo("logits", ls[-1].c_out, w.logit, "logits", False,
                               {ls[-1].name: ls[-1].c_out}))
        return mems

    def membrane_costs(self) -> dict[str, dict[str, int | None]]:
        """What each linear neuron layer's membrane memory costs: ``neurons`` x
        ``stored_bits`` = ``bits``; with a membrane code (``code_bits``, on a grid of
        ``2**code_shift``) also ``full_width_bits``, the width the same layer's membranes
        would need unquantised (bounded the same way), which the code saves."""
        costs: dict[str, dict[str, int | None]] = {}
        for lp in self.linear_layers:
            if not lp.has_neuron:
                continue
            entry: dict[str, int | None] = {
                "neurons": lp.c_out, "stored_bits": lp.potential_width,
                "bits": lp.c_out * lp.potential_width, "code_bits": lp.membrane_bits,
                "code_shift": lp.membrane_shift if lp.membrane_bits is not None else None,
                "full_width_bits": None}
            if lp.membrane_bits is not None:
                layer = self.net.layers[lp.index]
                full = _bounds(self.net, lp.index, layer, _input_range(self.net, lp.index),
                               codes=False)
                entry["full_width_bits"] = signed_width(*full.potential)
            costs[lp.name] = entry
        return costs

    def weight_init(self) -> list[int]:
        """The weight store's words. Linear: lane ``p`` of word ``wbase + g * c_in + i`` holds
        ``W[g * P + p, i]``. Conv: lane ``p`` of word ``wbase + ((c * k + dy) * k + dx) * G +
        g`` holds ``W[g * P + p, c, dy, dx]``. Two's complement, zero beyond the channels."""
        P, wb = self.parallelism, self.widths.weight
        mask = (1 << wb) - 1
        words: list[int] = []
        for lp, layer in zip(self.layers, self.net.layers):
            w = np.asarray(layer.weight, dtype=np.int64)
            c_out = int(w.shape[0])
            padded = np.zeros((lp.groups * P,) + w.shape[1:], dtype=np.int64)
            padded[:c_out] = w
            if lp.kind == "conv":  # [G*P, C_in, k, k] -> rows (c, dy, dx, g) of P lanes
                lanes = padded.reshape(lp.groups, P, -1).transpose(2, 0, 1).reshape(-1, P)
            else:  # [G*P, C_in] -> rows (g, i) of P lanes
                lanes = padded.reshape(lp.groups, P, -1).transpose(0, 2, 1).reshape(-1, P)
            lanes = (lanes & mask).astype(object)
            word = np.zeros(lanes.shape[0], dtype=object)
            for p in range(P):
                word = word + (lanes[:, p] << (p * wb))
            words.extend(int(v) for v in word)
        return words

    def bias_init(self) -> list[int]:
        return [int(b) for lp, layer in zip(self.layers, self.net.layers) if lp.kind == "linear"
                for b in np.asarray(layer.bias).ravel()]

    def threshold_init(self) -> list[int]:
        return [int(v) for lp, layer in zip(self.layers, self.net.layers)
                if lp.kind == "linear" and layer.neuron is not None
                for v in np.asarray(layer.neuron.threshold).ravel()]

    def host_index(self, flat: np.ndarray) -> np.ndarray:
        """The ``in_idx`` the host writes for the flat (C, H, W) input index ``flat``: the
        index itself for a linear first layer; bit fields ``x | y << xb | c << (xb + yb)`` for
        a conv first layer (so the core decodes them without a divider)."""
        first = self.layers[0]
        flat = np.asarray(flat, dtype=np.int64)
        if first.conv is None:
            return flat
        g = first.conv
        c, rest = np.divmod(flat, g.h_in * g.w_in)
        y, x = np.divmod(rest, g.w_in)
        return g.event_index(c, y, x)


def unsupported(net: IntegerNetwork) -> list[tuple[str, str]]:
    """``(layer name, why)`` for every layer the core cannot implement."""
    found = []
    kind = getattr(net, "input_kind", "static")
    if kind not in ("static", "spikes") and net.layers:
        found.append((net.layers[0].name, (f"unknown input kind {kind!r}: the core takes a "
                                           "static integer input or a spike train ('spikes')")))
    for i, layer in enumerate(net.layers):
        why = _why_unsupported(net, i, layer)
        if why:
            found.append((layer.name, why))
    return found


def _why_unsupported(net: IntegerNetwork, i: int, layer: IntLayer) -> str | None:
    """Why the core cannot implement layer ``i`` (the first reason), or None."""
    last = len(net.layers) - 1
    neuron = layer.neuron
    ternary = neuron is not None and bool(getattr(neuron, "ternary", False))
    bits = getattr(neuron, "membrane_bits", None) if neuron is not None else None
    conv = layer.kind == "conv"
    if layer.kind not in ("linear", "conv"):
        return f"a {layer.kind} layer: the FPGA core implements linear and conv layers"
    if (neuron is None) != (i == last):
        return "only the last layer may be (and must be) a read-out without a neuron"
    if neuron is None and getattr(layer, "integrate", False):
        return ("an integrating read-out (its neurons sum a running membrane): the core's "
                "read-out adds each step's current to the logits only; turn integrate off or "
                "deploy to wb_sim.simulator")
    if conv and i == last:
        return ("the read-out must be a linear layer (flatten, then wb_core.linear); a conv "
                "read-out is not supported")
    if conv and i and net.layers[i - 1].kind != "conv":
        return "a conv layer must take the network input or a conv layer's spikes"
    if conv and (np.asarray(layer.weight).ndim != 4
                 or layer.weight.shape[2] != layer.weight.shape[3]):
        return "a conv layer needs a square kernel [C_out, C_in, k, k]"
    if conv and (layer.stride < 1 or layer.padding < 0):
        return (f"stride {layer.stride} / padding {layer.padding}: the core needs stride >= 1 "
                "and padding >= 0")
    if layer.pool and not conv:
        return "pooling after a linear layer is not supported"
    if neuron is not None and neuron.reset not in ("hard", "soft"):
        return f"unknown reset {neuron.reset!r}"
    if conv and i == 0 and getattr(net, "input_kind", "static") == "spikes":
        return ("a spike-train input needs a linear first layer: the conv engine takes one "
                "static integer map")
    if conv and ternary:
        return ("ternary spikes on a conv layer: the conv engine fires binary spikes (ternary "
                "layers must be linear)")
    if conv and bits is not None:
        return ("a membrane code on a conv layer: the conv membranes are stored at full width "
                "(membrane codes need a linear layer)")
    if ternary and int(np.min(neuron.threshold, initial=1)) < 1:
        return ("a ternary neuron needs thresholds of at least 1 (at 0 or below it would fire "
                "+1 and -1 at once)")
    if bits is not None and not (2 <= int(bits) <= 32
                                 and 0 <= int(neuron.membrane_shift) <= 32):
        return (f"a membrane code of {bits} bits on a grid of 2^{neuron.membrane_shift}: the "
                "core takes 2 to 32 bits and a shift of 0 to 32")
    return None


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
    wbase = voff = boff = mbase = 0
    for i, layer in enumerate(net.layers):
        w = np.asarray(layer.weight, dtype=np.int64)
        neuron = layer.neuron
        channels = int(w.shape[0]) if w.ndim else 0
        sizes = [np.asarray(layer.bias).size] + ([np.asarray(neuron.threshold).size]
                                                 if neuron is not None else [])
        if any(size != channels for size in sizes):
            raise DeployError(f"{channels} output channels but {sizes[0]} biases"
                              + (f" and {sizes[1]} thresholds" if len(sizes) > 1 else ""),
                              where=f"node {layer.name!r}")
        signed_input = _signed_input(net, i)
        bounds = _bounds(net, i, layer, _input_range(net, i))
        uniform = None
        if neuron is not None:
            thr = np.asarray(neuron.threshold, dtype=np.int64).ravel()
            if thr.size and np.all(thr == thr[0]):
                uniform = int(thr[0])
        next_kind = net.layers[i + 1].kind if i + 1 < len(net.layers) else None
        if layer.kind == "conv":
            geom = ConvGeometry.of(layer, P)
            _check_conv(layer, geom, net.input_shape if i == 0 else
                        _pooled_shape(layers[-1].conv))
            lp = LayerPlan(
                i, layer.name, geom.inputs, geom.neurons, geom.groups, geom.last_group, wbase,
                -1, -1, int(layer.shift), neuron.leak_shift, neuron.reset, True, uniform, bounds,
                "conv", geom, next_kind, mbase)
            mbase += geom.membrane_words
        else:
            if w.ndim != 2:
                raise DeployError(f"a linear layer needs a 2-D weight, got shape "
                                  f"{list(w.shape)}", where=f"node {layer.name!r}")
            c_out, c_in = (int(v) for v in w.shape)
            if i:
                prev = layers[-1]
                expected = prev.emits if prev.conv is not None else prev.c_out
            else:
                expected = int(np.prod(layer.in_shape))
            if int(np.prod(layer.in_shape)) != c_in or c_in != expected:
                raise DeployError(f"weight shape {list(w.shape)} does not match its input "
                                  f"{list(layer.in_shape)}", where=f"node {layer.name!r}")
            groups = math.ceil(c_out / P)
            lp = LayerPlan(
                i, layer.name, c_in, c_out, groups, c_out - (groups - 1) * P, wbase,
                voff if neuron is not None else -1, boff, int(layer.shift),
                None if neuron is None else neuron.leak_shift,
                "hard" if neuron is None else neuron.reset, neuron is not None, uniform, bounds,
                "linear", None, next_kind, ternary=bool(neuron is not None and neuron.ternary),
                membrane_bits=None if neuron is None else neuron.membrane_bits,
                membrane_shift=0 if neuron is None else int(neuron.membrane_shift),
                signed_input=signed_input)
            boff += c_out
            if neuron is not None:
                voff += c_out
        layers.append(lp)
        wbase += lp.weight_words
    ls = tuple(layers)
    weight_bits = max(_signed_bits_of(layer.weight) for layer in net.layers)
    declared = max(int(layer.weight_bits) for layer in net.layers)
    weight_bits = max(weight_bits, min(declared, 64))
    lin = [lp for lp in ls if lp.kind == "linear"]
    convs = [lp for lp in ls if lp.kind == "conv"]
    hidden = [lp for lp in lin if lp.has_neuron]
    # A spike-train input changes every step: nothing to cache.
    cache = (((T > 1) if cache_input is None else bool(cache_input)) and ls[0].kind == "linear"
             and net.input_kind != "spikes")
    lin_biases = [np.asarray(net.layers[lp.index].bias, dtype=np.int64).ravel() for lp in lin]
    biases = np.concatenate(lin_biases) if lin_biases else np.zeros(0, dtype=np.int64)
    has_bias = bool(np.any(biases != 0))
    uniform_thr = all(lp.uniform_threshold is not None for lp in hidden)
    most_events = max((lp.emits for lp in ls[:-1]), default=1)
    event_depth = 1 << max(0, (most_events - 1).bit_length())

    def span(attr: str, among) -> tuple[int, int]:
        values = [getattr(lp.bounds, attr) for lp in among]
        return min(v[0] for v in values), max(v[1] for v in values)

    last = ls[-1].bounds.current
    logit = (min(T * last[0], 0), max(T * last[1], 0))
    conv_width = 2
    for lp in convs:  # stored values, H, V, thresholds and biases share one datapath
        b = lp.bounds
        for lo, hi in (b.stored, b.pre_reset, b.potential, b.threshold, b.bias):
            conv_width = max(conv_width, signed_width(lo, hi))
    widths = Widths(
        weight=weight_bits,
        input=2 if net.input_kind == "spikes" else max(1, int(net.input_bits)),
        acc=signed_width(*span("acc", lin)),
        current=signed_width(*span("current", lin)),
        potential=signed_width(*span("potential", hidden)) if hidden else 2,
        pre_reset=signed_width(*span("pre_reset", hidden)) if hidden else 2,
        threshold=signed_width(*span("threshold", hidden)) if hidden else 2,
        bias=signed_width(int(biases.min()), int(biases.max())) if biases.size else 2,
        logit=signed_width(*logit),
        count=unsigned_width(T * max(lp.c_out for lp in ls)),
        cycles=2,  # set below, from the cycle model's bound
        in_index=max(1, _in_index_bits(ls[0])),
        ev_index=max([1] + [_in_index_bits(lp) for lp in ls[1:]]),
        conv=conv_width,
    )
    if max(widths.acc, widths.current, widths.potential, widths.logit, widths.conv) > 62:
        raise DeployError("the network's integers need more than 62 bits in the core; lower "
                          "frac_bits or the weight/input bits", where="network")
    signed_events = any(lp.ternary for lp in ls[:-1])
    plan = CorePlan(net, P, ls, widths, wbase, voff, boff, has_bias, uniform_thr, cache,
                    event_depth, weight_store, signed_events)
    return replace(plan, widths=replace(widths, cycles=unsigned_width(cycle_bound(plan))))


def _pooled_shape(geom: ConvGeometry) -> tuple[int, int, int]:
    hp, wp = geom.pooled
    return geom.c_out, hp, wp


def _check_conv(layer: IntLayer, geom: ConvGeometry, incoming: tuple[int, ...]) -> None:
    """The conv layer's shapes must agree with wb_sim's arithmetic and with its input."""
    where = f"node {layer.name!r}"
    if tuple(int(v) for v in layer.in_shape) != tuple(int(v) for v in incoming):
        raise DeployError(f"input shape {list(layer.in_shape)} does not match what reaches "
                          f"it, {list(incoming)}", where=where)
    if geom.c_in != int(layer.weight.shape[1]) or len(layer.out_shape) != 3 \
            or int(layer.out_shape[0]) != geom.c_out:
        raise DeployError(f"weight shape {list(layer.weight.shape)} does not match its input "
                          f"{list(layer.in_shape)} and output {list(layer.out_shape)}",
                          where=where)
    for size_in, size_out in ((geom.h_in, geom.h_out), (geom.w_in, geom.w_out)):
        if size_out != (size_in + 2 * geom.padding - geom.k) // geom.stride + 1 or size_out < 1:
            raise DeployError(f"output shape {list(layer.out_shape)} is not what a {geom.k}x"
                              f"{geom.k} kernel with stride {geom.stride} and padding "
                              f"{geom.padding} gives on {list(layer.in_shape)}", where=where)


def _in_index_bits(lp: LayerPlan) -> int:
    """Width of the event index layer ``lp`` reads: bit fields (x, y, c) for a conv layer, the
    input (or flatten) index for a linear one."""
    if lp.conv is not None:
        return sum(lp.conv.in_fields)
    return field_bits(lp.c_in)


def _signed_bits_of(weight: np.ndarray) -> int:
    w = np.asarray(weight, dtype=np.int64)
    if not w.size:
        return 2
    return signed_width(int(w.min()), int(w.max()))


def _signed_input(net: IntegerNetwork, index: int) -> bool:
    """Whether layer ``index``'s input events carry a sign: a spike-train input, or the
    spikes of a ternary layer."""
    if index == 0:
        return net.input_kind == "spikes"
    before = net.layers[index - 1].neuron
    return before is not None and bool(before.ternary)


def _input_range(net: IntegerNetwork, index: int) -> tuple[int, int]:
    """The values one input of layer ``index`` takes: ``0 .. 2**input_bits - 1`` (a static
    input), ``-1 .. 1`` (signed spikes) or ``0 .. 1`` (binary spikes)."""
    if index == 0 and net.input_kind != "spikes":
        return 0, (1 << int(net.input_bits)) - 1
    return (-1 if _signed_input(net, index) else 0), 1


def requantized(v: int, bits: int, shift: int) -> int:
    """``wb_sim.ir.requantize`` of one Python integer (monotone in ``v``, so it maps the ends
    of an interval to the ends of the requantised interval)."""
    top = (1 << (bits - 1)) - 1
    q, rest = v >> shift, v & ((1 << shift) - 1)
    if shift and (rest > 1 << (shift - 1) or (rest == 1 << (shift - 1) and q & 1)):
        q += 1
    return max(-top, min(top, q)) << shift


def _bounds(net: IntegerNetwork, index: int, layer: IntLayer, x_range: tuple[int, int],
            *, codes: bool = True) -> Bounds:
    """Ranges by interval arithmetic: exact per-neuron sums of the positive and negative
    weights times the input's extremes (``x_range``), then ``T`` steps of the neuron update on
    intervals (``codes=False``: as if the membranes were kept at full width). A conv layer's
    rows are its output channels (each input position adds a tap at most once to a neuron, so
    the channel's sums bound every neuron of it)."""
    w = np.asarray(layer.weight, dtype=np.int64)
    w = w.reshape(w.shape[0], -1)
    x_lo, x_hi = (int(v) for v in x_range)
    # Row sums in int64 (weights < 2**32, fan-in < 2**24: far from overflow), then Python ints.
    w_pos = np.where(w > 0, w, 0).sum(axis=1).astype(object)
    w_neg = np.where(w < 0, w, 0).sum(axis=1).astype(object)
    # the largest and the smallest sum: each weight meets the input extreme that favours it
    pos = w_pos * x_hi + w_neg * x_lo
    neg = w_neg * x_hi + w_pos * x_lo
    bias = np.asarray(layer.bias, dtype=np.int64).astype(object).ravel()
    scale = 1 << int(layer.shift)
    i_lo = neg * scale + bias
    i_hi = pos * scale + bias
    acc = (min(0, min(neg)), max(0, max(pos)))
    current = (min(min(i_lo), 0), max(max(i_hi), 0))
    bias_range = (min(0, min(bias)), max(0, max(bias)))
    neuron = layer.neuron
    if neuron is None:
        return Bounds(acc, current, (0, 0), (0, 0), (0, 0), (0, 0), bias_range)
    thr = np.asarray(neuron.threshold, dtype=np.int64).astype(object).ravel()
    k = neuron.leak_shift
    ternary = bool(neuron.ternary)
    bits = neuron.membrane_bits if codes else None
    m_shift = int(neuron.membrane_shift)

    def leak(v):
        return v if k is None else v - (v >> int(k))

    v_lo = np.zeros_like(thr)
    v_hi = np.zeros_like(thr)
    pot_lo, pot_hi, h_lo_all, h_hi_all = 0, 0, 0, 0
    st_lo, st_hi = 0, 0
    for _ in range(int(net.time_steps)):
        leak_lo = np.array([leak(v) for v in v_lo], dtype=object)
        leak_hi = np.array([leak(v) for v in v_hi], dtype=object)
        # A conv membrane holds leak(V) plus any part of this step's (acc << shift): the
        # partial sums stay between the negative and the positive weight sums.
        st_lo = min(st_lo, min(leak_lo + np.minimum(neg, 0) * scale))
        st_hi = max(st_hi, max(leak_hi + np.maximum(pos, 0) * scale))
        h_lo = leak_lo + i_lo
        h_hi = leak_hi + i_hi
        h_lo_all, h_hi_all = min(h_lo_all, min(h_lo)), max(h_hi_all, max(h_hi))
        new_lo, new_hi = [], []
        for c in range(len(thr)):
            los, his = [], []
            floor = -thr[c] + 1 if ternary else None  # a ternary neuron fires at -thr too
            if h_lo[c] < thr[c] and (floor is None or h_hi[c] >= floor):  # may stay silent
                los.append(h_lo[c] if floor is None else max(h_lo[c], floor))
                his.append(min(h_hi[c], thr[c] - 1))
            if h_hi[c] >= thr[c]:  # may fire +1
                if neuron.reset == "soft":
                    los.append(max(h_lo[c], thr[c]) - thr[c])
                    his.append(h_hi[c] - thr[c])
                else:
                    los.append(0)
                    his.append(0)
            if ternary and h_lo[c] <= -thr[c]:  # may fire -1
                if neuron.reset == "soft":
                    los.append(h_lo[c] + thr[c])
                    his.append(min(h_hi[c], -thr[c]) + thr[c])
                else:
                    los.append(0)
                    his.append(0)
            lo, hi = min(los), max(his)
            if bits is not None:  # the stored code: requantize is monotone
                lo, hi = requantized(lo, bits, m_shift), requantized(hi, bits, m_shift)
            new_lo.append(lo)
            new_hi.append(hi)
        v_lo = np.array(new_lo, dtype=object)
        v_hi = np.array(new_hi, dtype=object)
        pot_lo, pot_hi = min(pot_lo, min(v_lo)), max(pot_hi, max(v_hi))
    threshold = (min(min(thr), 0), max(max(thr), 0))
    return Bounds(acc, current, (pot_lo, pot_hi), (h_lo_all, h_hi_all), threshold,
                  (int(st_lo), int(st_hi)), bias_range)
