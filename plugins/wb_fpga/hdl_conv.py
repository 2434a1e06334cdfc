"""The conv engine of the spiking core: scatter the events' kernel taps, then sweep the neurons.

Per conv layer and time step (states of the sequencer in :mod:`wb_fpga.hdl`)::

    SCATTER  event (c, y, x[, value]) ──> valid taps (dy, dx) from per-layer tables of y, x
               tap, group g: weight word wbase + ((c*k + dy)*k + dx)*G + g   (P lanes)
                             membrane word (oy*W_out + ox)*G + g              (P lanes)
               S0 addresses -> S1 memory reads -> S2 U[p] += (W[p] * value) << shift, write
    DRAIN    one cycle: the last tap's read (the first sweep read sees its write: the read
             port is transparent for the write port)
    SWEEP    per window (wy, wx) of pool x pool outputs and group g: read each word, then
               H = U + bias;  S = H >= thr;  V = reset(H, S);  U = V - (V >> k)  (0 at t = T-1)
             P neurons per cycle; the spikes of the window are ORed (max pooling)
    MASK     the window's last word; its first spiking channel becomes an event
    EMIT     one cycle per further spiking channel of the window

The membrane memory holds ``U = V - (V >> k)`` between steps and the running sum of the step's
``acc << shift`` during the scatter, so ``H = U + bias`` is exactly ``ir.py``'s
``V - (V >> k) + (acc << shift) + bias`` without a separate accumulator memory. It starts at
zero (bitstream) and the last step of each sample writes zero back.
"""

from __future__ import annotations

from amaranth.hdl import (
    Cat,
    Const,
    Elaboratable,
    MemoryData,
    MemoryInstance,
    Module,
    Mux,
    Signal,
    signed,
)

from wb_fpga.conv import field_bits


class ConvSignals:
    """What the conv engine shares with the sequencer, the linear datapath and the neuron
    unit (each signal is driven in exactly one module)."""

    def __init__(self, plan) -> None:
        convs = plan.conv_layers
        P = plan.parallelism
        geoms = [lp.conv for lp in convs]
        self.present = bool(convs)
        most = max([g.inputs for g in geoms] + [1])
        self.ev_addr = Signal(range(most + 2))  # event memory address while a conv layer runs
        self.waddr = Signal(range(max(plan.weight_words, 2)))  # weight store address (S1)
        self.scatter_done = Signal()  # the last scatter cycle of the pass
        self.wg_end = Signal()  # the last read of a window and group is issued
        self.more = Signal()  # MASK / EMIT: more channels of the window are still to emit
        self.last_wg = Signal()  # the window and group in MASK / EMIT is the pass's last
        self.emit = Signal()  # write an event this cycle
        self.emit_data = Signal(max(plan.widths.ev_index, 1))
        self.spike_inc = Signal(range(P + 1))  # neurons of the current conv layer that fired
        # sequencer states
        self.scatter = Signal()
        self.sweep = Signal()
        self.mask = Signal()
        self.emitting = Signal()


def _select(s, values: dict[int, object]):
    """A per-conv-layer value: the constant when all layers share it, else a Mux on the layer."""
    distinct = {repr(v): v for v in values.values()}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    items = list(values.items())
    out = items[-1][1]
    for index, value in reversed(items[:-1]):
        out = Mux(s.layer == index, value, out)
    return out


def conv_memories(m: Module, plan, ports: dict) -> None:
    """The conv membrane memory (every conv layer from its ``mbase``): P lanes of the conv
    datapath's width per word, read through a port transparent for the write port (a read in
    the cycle of a write to the same word sees the new value)."""
    convs = plan.conv_layers
    if not convs:
        return
    depth = sum(lp.membrane_words for lp in convs)
    mem = _AlwaysWriting(plan.parallelism * plan.widths.conv, depth)
    m.submodules.conv_membranes = mem
    ports["u_wr"], ports["u_rd"] = mem.wr, mem.rd


class _Port:
    def __init__(self, addr: Signal, data: Signal) -> None:
        self.addr, self.data = addr, data


class _AlwaysWriting(Elaboratable):
    """A memory (zeros at configuration) with one write port that writes every cycle and one
    synchronous read port transparent for it. The enable is the constant 1 in the netlist,
    which is what synthesis sees and what keeps Amaranth's simulator from expanding it bit by
    bit over the word on every clock (``amaranth.lib.memory`` ports always have an enable
    signal)."""

    def __init__(self, width: int, depth: int) -> None:
        self.data = MemoryData(shape=width, depth=depth, init=[])
        addr_width = max(0, depth - 1).bit_length()
        self.wr = _Port(Signal(addr_width, name="u_wr_addr"), Signal(width, name="u_wr_data"))
        self.rd = _Port(Signal(addr_width, name="u_rd_addr"), Signal(width, name="u_rd_data"))

    def elaborate(self, platform) -> MemoryInstance:
        inst = MemoryInstance(data=self.data)
        inst.write_port(domain="sync", addr=self.wr.addr, data=self.wr.data, en=Const(1, 1))
        inst.read_port(domain="sync", addr=self.rd.addr, data=self.rd.data, en=Const(1, 1),
                       transparent_for=(0,))
        return inst


def conv_engine(s, cv: ConvSignals) -> list[tuple[str, Module]]:
    """The conv engine's modules (scatter control, lanes, sweep, memory glue)."""
    if not cv.present:
        return []
    return [("conv_scatter", _scatter(s, cv)), ("conv_ports", _ports(s, cv)),
            ("conv_lanes", _scatter_lanes(s)), ("conv_sweep", _sweep(s, cv))]


class _Lanes:
    """Signals between the conv modules (the P lanes of a word, packed)."""

    def __init__(self, plan) -> None:
        P, cw = plan.parallelism, plan.widths.conv
        most_words = sum(lp.membrane_words for lp in plan.conv_layers)
        self.rd_addr = Signal(range(max(most_words, 2)))  # (the width of every membrane address)
        # scatter pipeline: S1 (reads issued) and S2 (data back, written)
        self.s1_valid = Signal()
        self.s1_uaddr = Signal.like(self.rd_addr)
        self.s1_val = Signal(plan.widths.input + 1)
        self.s2_valid = Signal()
        self.s2_val = Signal.like(self.s1_val)
        self.s2_new = Signal(P * cw)
        # sweep pipeline: SW1 (data back, written)
        self.sw_addr = Signal.like(self.rd_addr)
        self.sw1_valid = Signal()
        self.sw1_new = Signal(P * cw)  # the updated word, or the word as read (no update)
        self.emit_lane = Signal(range(max(P, 2)))  # the channel the emitter sends, in its group


def _scatter(s, cv: ConvSignals) -> Module:
    """Walk the events and their valid kernel taps; S0 -> S1 address registers."""
    plan = s.plan
    convs = plan.conv_layers
    m = Module()
    lanes = s.conv_lanes
    w = plan.widths
    most_g = max(lp.conv.groups for lp in convs)
    most_k = max(lp.conv.k for lp in convs)
    e = Signal(range(max(lp.conv.inputs for lp in convs) + 1))
    iy = Signal(range(max(most_k, 2)))
    ix = Signal.like(iy)
    g = Signal(range(max(most_g, 2)))
    ny, nx = Signal(range(most_k + 1)), Signal(range(most_k + 1))
    last_g = Signal()
    waddr = Signal.like(cv.waddr)
    uaddr = Signal.like(lanes.s1_uaddr)
    val = Signal.like(lanes.s1_val)
    in_rd, ev_rd = s.mem["in_rd"], s.mem.get("ev_rd")
    in_idx, in_val = in_rd.data[: w.in_index], in_rd.data[w.in_index:]
    with m.Switch(s.layer):
        for lp in convs:
            geom = lp.conv
            with m.Case(lp.index):
                xb, yb, cb = geom.in_fields
                src = in_idx if lp.index == 0 else ev_rd.data
                ex = src[:xb] if xb else Const(0, 1)
                ey = src[xb:xb + yb] if yb else Const(0, 1)
                ec = src[xb + yb:xb + yb + cb] if cb else Const(0, 1)
                m.d.comb += val.eq(in_val if lp.index == 0 else 1)
                dy_lo, oy0 = Signal(range(geom.k), name=f"dy_lo{lp.index}"), \
                    Signal(range(geom.h_out + 1), name=f"oy0_{lp.index}")
                dx_lo, ox0 = Signal(range(geom.k), name=f"dx_lo{lp.index}"), \
                    Signal(range(geom.w_out + 1), name=f"ox0_{lp.index}")
                for coord, table, lo, n, o0 in ((ey, geom.taps_y, dy_lo, ny, oy0),
                                                (ex, geom.taps_x, dx_lo, nx, ox0)):
                    with m.Switch(coord):
                        for pos, (d, count, first) in enumerate(table):
                            with m.Case(pos):
                                m.d.comb += [lo.eq(d), n.eq(count), o0.eq(first)]
                k, st, G = geom.k, geom.stride, geom.groups
                dy = dy_lo + iy * st
                dx = dx_lo + ix * st
                m.d.comb += [
                    waddr.eq(lp.wbase + ec * (k * k * G) + dy * (k * G) + dx * G + g),
                    uaddr.eq(lp.mbase + ((oy0 - iy) * geom.w_out + (ox0 - ix)) * G + g),
                    last_g.eq(g == G - 1),
                ]
    has_taps = (ny != 0) & (nx != 0)
    ev_end = ~has_taps | (last_g & (ix == nx - 1) & (iy == ny - 1))
    advance = cv.scatter & ev_end
    m.d.comb += [cv.scatter_done.eq(advance & (e == s.n - 1)),
                 cv.ev_addr.eq(Mux(s.layer_start, 0, e + advance))]
    with m.If(s.layer_start):
        m.d.sync += [e.eq(0), iy.eq(0), ix.eq(0), g.eq(0)]
    with m.Elif(cv.scatter):
        with m.If(ev_end):
            m.d.sync += [e.eq(e + 1), iy.eq(0), ix.eq(0), g.eq(0)]
        with m.Elif(last_g):
            m.d.sync += g.eq(0)
            with m.If(ix == nx - 1):
                m.d.sync += [ix.eq(0), iy.eq(iy + 1)]
            with m.Else():
                m.d.sync += ix.eq(ix + 1)
        with m.Else():
            m.d.sync += g.eq(g + 1)
    # S0 -> S1: the addresses go through a register, off the event memory's output path.
    m.d.sync += [lanes.s1_valid.eq(cv.scatter & has_taps), cv.waddr.eq(waddr),
                 lanes.s1_uaddr.eq(uaddr), lanes.s1_val.eq(val),
                 lanes.s2_valid.eq(lanes.s1_valid), lanes.s2_val.eq(lanes.s1_val)]
    return m


def _ports(s, cv: ConvSignals) -> Module:
    """The membrane memory's ports: the scatter (S1 read, S2 write) or the sweep (issue read,
    SW1 write).

    The write port is always enabled and writes the word read in the previous cycle: the
    scatter's or the sweep's new word, or, in any other cycle, the word as read (transparent
    for the last write), which changes nothing. A constant enable also keeps Amaranth's
    simulator from expanding the enable bit by bit over the wide word on every clock."""
    lanes = s.conv_lanes
    rd, wr = s.mem["u_rd"], s.mem["u_wr"]
    m = Module()
    prev = Signal.like(lanes.rd_addr)
    m.d.comb += rd.addr.eq(Mux(cv.sweep, lanes.sw_addr, lanes.s1_uaddr))
    m.d.sync += prev.eq(rd.addr)
    m.d.comb += [wr.addr.eq(prev),
                 wr.data.eq(Mux(lanes.s2_valid, lanes.s2_new, lanes.sw1_new))]
    return m


def _scatter_lanes(s) -> Module:
    plan = s.plan
    P, cw, wb = plan.parallelism, plan.widths.conv, plan.widths.weight
    lanes = s.conv_lanes
    w_rd = s.mem["w_rd"]
    m = Module()
    multiply = plan.layers[0].kind == "conv"  # only a conv first layer sees multi-bit values
    shifts = {lp.index: lp.shift for lp in plan.conv_layers}
    out = []
    for p in range(P):
        weight = w_rd.data[p * wb:(p + 1) * wb].as_signed()
        prod = weight * lanes.s2_val if multiply else weight
        term = _select(s, {i: prod << sh for i, sh in shifts.items()})
        out.append((s.mem["u_rd"].data[p * cw:(p + 1) * cw].as_signed() + term)[:cw])
    # Only while S2 holds a tap: the simulator then skips the lanes in every other cycle (the
    # mux this implies merges with the write-data mux in synthesis).
    with m.If(lanes.s2_valid):
        m.d.comb += lanes.s2_new.eq(Cat(*out))
    return m


def _sweep(s, cv: ConvSignals) -> Module:
    """Walk windows x groups x window positions; the neuron update of P lanes; the OR of the
    window and the events it emits."""
    plan = s.plan
    convs = plan.conv_layers
    P, cw = plan.parallelism, plan.widths.conv
    lanes = s.conv_lanes
    m = Module()
    most_win = max(lp.conv.win for lp in convs)
    wy = Signal(range(max(max(lp.conv.windows[0] for lp in convs), 2)))
    wx = Signal(range(max(max(lp.conv.windows[1] for lp in convs), 2)))
    g = Signal(range(max(max(lp.conv.groups for lp in convs), 2)))
    ey = Signal(range(max(most_win, 2)))
    ex = Signal.like(ey)
    valid = Signal()
    addr = Signal.like(lanes.sw_addr)
    pos_end = Signal()
    last_wg = Signal()
    complete = Signal()
    lane_ok = Signal(P)
    bias = Signal(P * cw)
    thr = Signal(P * cw)
    ev_data = Signal.like(cv.emit_data)
    lane = lanes.emit_lane
    with m.Switch(s.layer):
        for lp in convs:
            geom = lp.conv
            layer = plan.net.layers[lp.index]
            win, G = geom.win, geom.groups
            nwy, nwx = geom.windows
            hp, wp = geom.pooled
            with m.Case(lp.index):
                y = wy * win + ey
                x = wx * win + ex
                m.d.comb += [
                    valid.eq((y < geom.h_out) & (x < geom.w_out)),
                    addr.eq(lp.mbase + (y * geom.w_out + x) * G + g),
                    pos_end.eq((ey == win - 1) & (ex == win - 1)),
                    last_wg.eq((g == G - 1) & (wx == nwx - 1) & (wy == nwy - 1)),
                    complete.eq((wy < hp) & (wx < wp)),
                    lane_ok.eq(Mux(g == G - 1, (1 << geom.last_group) - 1, (1 << P) - 1)),
                ]
                with m.Switch(g):  # per-channel biases and thresholds: constants
                    for gi in range(G):
                        chans = range(gi * P, min((gi + 1) * P, geom.c_out))
                        b = [int(layer.bias[c]) for c in chans]
                        t = [int(layer.neuron.threshold[c]) for c in chans]
                        with m.Case(gi):
                            m.d.comb += [bias.eq(_pack(b, P, cw)), thr.eq(_pack(t, P, cw))]
                chan = g * P + lane
                if lp.next_kind == "conv":
                    xb, yb, cb = field_bits(wp), field_bits(hp), field_bits(geom.c_out)
                    m.d.comb += ev_data.eq(Cat(wx[:xb], wy[:yb], chan[:cb]))
                else:  # the C, H, W flatten index of the linear layer after it
                    m.d.comb += ev_data.eq(chan * (hp * wp) + wy * wp + wx)
    m.d.comb += [lanes.sw_addr.eq(addr), cv.wg_end.eq(cv.sweep & pos_end),
                 cv.last_wg.eq(last_wg)]
    # window position counters (the window and group advance when its events are out)
    leave = (cv.mask | cv.emitting) & ~cv.more
    with m.If(s.layer_start):
        m.d.sync += [wy.eq(0), wx.eq(0), g.eq(0), ey.eq(0), ex.eq(0)]
    with m.Elif(cv.sweep):
        with m.If(pos_end):
            m.d.sync += [ey.eq(0), ex.eq(0)]
        with m.Elif(ex == _select(s, {lp.index: lp.conv.win - 1 for lp in convs})):
            m.d.sync += [ex.eq(0), ey.eq(ey + 1)]
        with m.Else():
            m.d.sync += ex.eq(ex + 1)
    with m.Elif(leave):
        G_last = _select(s, {lp.index: lp.conv.groups - 1 for lp in convs})
        nwx_last = _select(s, {lp.index: lp.conv.windows[1] - 1 for lp in convs})
        with m.If(g == G_last):
            m.d.sync += g.eq(0)
            with m.If(wx == nwx_last):
                m.d.sync += [wx.eq(0), wy.eq(wy + 1)]
            with m.Else():
                m.d.sync += wx.eq(wx + 1)
        with m.Else():
            m.d.sync += g.eq(g + 1)
    m.d.sync += lanes.sw1_valid.eq(cv.sweep & valid)

    # SW1: the neuron update of the word read in the previous cycle
    spikes = Signal(P)
    m.submodules.neurons = _neuron_lanes(s, bias, thr, spikes)
    fired = Signal(P)
    m.d.comb += fired.eq(spikes & lane_ok)
    m.submodules.emitter = _emitter(s, cv, fired, complete, ev_data)
    return m


def _emitter(s, cv: ConvSignals, fired, complete, ev_data) -> Module:
    """The spike count, the OR of the window, and its channels out as events, lowest first."""
    P = s.plan.parallelism
    m = Module()
    lane = s.conv_lanes.emit_lane
    m.d.comb += cv.spike_inc.eq(sum(fired[p] for p in range(P)))
    window = Signal(P)
    rem = Signal(P)
    bits = Signal(P)
    low = Signal(P)
    with m.If(cv.sweep):
        m.d.sync += window.eq(window | fired)
    with m.Elif(cv.mask):
        m.d.sync += window.eq(0)
    m.d.comb += bits.eq(Mux(cv.mask, Mux(complete, window | fired, 0), rem))
    m.d.comb += low.eq(bits & (~bits + 1))
    rest = Signal(P)
    m.d.comb += rest.eq(bits & ~low)
    with m.If(cv.mask | cv.emitting):
        m.d.sync += rem.eq(rest)
    for b in range(max(1, (P - 1).bit_length())):
        mask_b = sum(1 << p for p in range(P) if (p >> b) & 1)
        m.d.comb += lane[b].eq((low & mask_b).any())
    m.d.comb += [cv.more.eq(rest != 0), cv.emit.eq((cv.mask | cv.emitting) & (bits != 0)),
                 cv.emit_data.eq(ev_data)]
    return m


def _neuron_lanes(s, bias, thr, spikes) -> Module:
    """P neuron updates: ``H = U + bias``, ``S = H >= thr``, reset, then the stored
    ``V - (V >> k)`` (zero after the last step, ready for the next sample)."""
    plan = s.plan
    convs = plan.conv_layers
    P, cw = plan.parallelism, plan.widths.conv
    lanes = s.conv_lanes
    m = Module()
    soft = _select(s, {lp.index: int(lp.reset == "soft") for lp in convs})
    last_step = s.t == plan.time_steps - 1
    out, fire, hs = [], [], []
    # H of every lane in one signal: computed once per lane, and one signal to update (the
    # simulator resets every signal of a module whenever the module wakes up)
    hw = cw + 1
    h_all = Signal(P * hw)
    for p in range(P):
        u = s.mem["u_rd"].data[p * cw:(p + 1) * cw].as_signed()
        h = h_all[p * hw:(p + 1) * hw].as_signed()
        t = thr[p * cw:(p + 1) * cw].as_signed()
        hs.append((u + bias[p * cw:(p + 1) * cw].as_signed())[:hw])
        spike = h >= t
        v = Mux(spike, Mux(soft, h - t, 0), h)
        leaks = {}
        for lp in convs:
            k = lp.leak_shift
            leaks[lp.index] = Const(0, signed(cw + 1)) if k is None else (v >> k)
        stored = Mux(last_step, 0, v - _select(s, leaks))
        out.append(stored[:cw])
        fire.append(spike)
    with m.If(lanes.sw1_valid):  # only then (see _scatter_lanes)
        m.d.comb += h_all.eq(Cat(*hs))
        m.d.comb += [lanes.sw1_new.eq(Cat(*out)), spikes.eq(Cat(*fire))]
    with m.Else():  # the word goes back unchanged (see _ports)
        m.d.comb += lanes.sw1_new.eq(s.mem["u_rd"].data)
    return m


def _pack(values: list[int], lanes: int, width: int) -> int:
    """``values`` (signed) as ``lanes`` packed two's-complement fields; missing lanes 0."""
    mask = (1 << width) - 1
    word = 0
    for p, v in enumerate(values[:lanes]):
        word |= (int(v) & mask) << (p * width)
    return word
