"""The spiking core in Amaranth HDL, generated from a :class:`~wb_fpga.plan.CorePlan`.

One shared engine runs the layers one after the other, time step by time step::

     host ──in_we/in_idx/in_val──> [input events]──┐     (index, value) of non-zero inputs
                                   [spike events]──┤     2 halves: read l % 2, write (l+1) % 2
                                                   v
      ACC:  event k ──> weight word (wbase + idx) ──> P lanes: acc[p] += W[p] * x
                          [weight store: P lanes]         (x = input value, or ±1 for a spike)
                                                   │ HANDOFF: acc -> shadow (P registers)
                                                   v
      NEURON UNIT (serial, one neuron per cycle, overlaps the next group's ACC):
          I = (acc << shift) + bias[c]            [bias] [threshold] [membrane_l]
          H = V - (V >> leak) + I ;  S = +1 if H >= thr, -1 if H <= -thr (ternary), else 0
          V = reset(H, S), then its b-bit code (a QT-SNN layer)   -> [membrane_l]
          S != 0: append (c, sign) to the next layer's [spike events], count it
          read-out layer: logit[c] += I           [logits]  -> host out_addr/out_data
          layer 0 at t = 0: keep acc in [input cache]; at t > 0 the pass reads the cache
      CONV LAYERS: their own engine (:mod:`wb_fpga.hdl_conv`): scatter each event's kernel taps
          into a membrane memory of P-lane words, then sweep it P neurons per cycle, OR the
          pooling windows and emit the next layer's events into the same [spike events]

Only active inputs are processed (non-zero input values in layer 0, spikes after it): the
accumulation of a group takes one cycle per event. The arithmetic is exactly ``wb_sim/ir.py``'s;
widths come from the plan's bounds, so nothing overflows.

Signal networks (QT-SNN, linear layers only):

- **Ternary spikes.** A ternary layer's event carries a sign bit next to the index; the lanes
  add ``W``, or ``~W`` plus the sign bit (``= -W``), so a spike of -1 is still one
  accumulate. A static first layer's lanes multiply anyway: there the sign is the value -1.
  Either polarity resets and counts once (``|S|``).
- **Membrane codes.** A layer with ``membrane_bits = b`` stores ``V >> membrane_shift``, the
  b-bit code of ``wb_sim.ir.requantize``: the floor shift, the remainder against half a step
  (a tie goes to the even code), the clip to ``±(2**(b-1) - 1)``. Each reset candidate is
  rounded next to the threshold compare, which then only picks one; the read shifts the code
  back (wiring, no logic).
- **Spike-train input.** The host loads all ``T`` steps before ``start``; layer 0 at step
  ``t`` walks that step's events (no input cache, no multiplier).

Host protocol (``sync`` domain): pulse ``in_clear``; for each non-zero input assert ``in_we``
with ``in_idx``/``in_val`` for one cycle (zeros are ignored; ``in_idx`` is
``CorePlan.host_index`` of the flat input index: bit fields x, y, c for a conv first layer);
pulse ``start``; wait for ``done``; read ``cycles`` and ``spike_counts``; drive ``out_addr`` and
read ``out_data`` one cycle later. With ``weight_store="ram"`` (SPRAM) the weights are written
once over ``wl_en``/``wl_addr``/``wl_data`` before the first ``start``.

A spike-train input (``input_kind = "spikes"``) adds one strobe, ``in_step``: after
``in_clear``, for each step ``t = 0 .. T-1`` in order, write that step's spikes with ``in_we``
(``in_val`` is 2 bits, two's complement: 1 for +1, 3 for -1; each index at most once per step),
then pulse ``in_step`` (also for a step without spikes: exactly ``T`` pulses). The core keeps
where each step's events end in a table of ``T`` registers; layer 0 at step ``t`` reads the
events from the end of step ``t - 1`` to the end of step ``t``. The input event memory holds
``T x C_in`` events of (index, sign).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.lib.memory import Memory

from wb_fpga.hdl_conv import ConvSignals, _Lanes, conv_engine, conv_memories
from wb_fpga.plan import CorePlan
from wb_fpga.timing import ACC_FLUSH


class SpikingCore(Elaboratable):
    """The core for one network; ports are attributes (see the module doc)."""

    def __init__(self, plan: CorePlan) -> None:
        self.plan = plan
        w = plan.widths
        ls = plan.layers
        self.start = Signal()
        self.busy = Signal()
        self.done = Signal()
        self.in_clear = Signal()
        self.in_we = Signal()
        self.in_idx = Signal(w.in_index)
        self.in_val = Signal(w.input)
        if plan.spike_input:  # the end of one step's input events
            self.in_step = Signal()
        self.out_addr = Signal(range(max(ls[-1].c_out, 2)))
        self.out_data = Signal(signed(w.logit))
        self.cycles = Signal(w.cycles)
        self.spike_counts = [Signal(w.count, name=f"spikes_{lp.index}")
                             for lp in ls if lp.has_neuron]
        if plan.weight_store == "ram":
            self.wl_en = Signal()
            self.wl_addr = Signal(range(max(plan.weight_words, 2)))
            self.wl_data = Signal(plan.parallelism * w.weight)

    def ports(self) -> list[Signal]:
        """Top-level ports for Verilog export."""
        ports = [self.start, self.busy, self.done, self.in_clear, self.in_we, self.in_idx,
                 self.in_val, self.out_addr, self.out_data, self.cycles, *self.spike_counts]
        if self.plan.spike_input:
            ports.append(self.in_step)
        if self.plan.weight_store == "ram":
            ports += [self.wl_en, self.wl_addr, self.wl_data]
        return ports

    def elaborate(self, platform) -> Module:
        # Each part is its own module: Amaranth's simulator re-runs a module's combinational
        # logic whenever one of its inputs changes, so keeping the neuron unit's arithmetic
        # apart from the per-cycle accumulation keeps the simulation fast. Synthesis flattens.
        plan = self.plan
        ls = plan.layers
        P = plan.parallelism
        m = Module()
        s = _Shared(plan)
        cv = s.cv
        s.mem = _memories(m, plan)
        m.submodules.constants = _constants(s)
        m.submodules.host = self._host(s)
        m.submodules.accumulate = _accumulate(s, self)
        m.submodules.neuron = _neuron_unit(s, self)
        for name, part in conv_engine(s, cv):
            m.submodules[name] = part

        def next_layer() -> None:
            """Leave the current layer: the next one, the next step, or done."""
            with m.If(s.layer == len(ls) - 1):
                m.d.sync += s.layer.eq(0)
                with m.If(s.t == plan.time_steps - 1):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += s.t.eq(s.t + 1)
                    m.next = "LAYER_START"
            with m.Else():
                m.d.sync += s.layer.eq(s.layer + 1)
                m.next = "LAYER_START"

        with m.FSM(name="seq") as fsm:
            with m.State("IDLE"):
                m.d.comb += s.idle.eq(1)
                with m.If(self.start):
                    m.d.comb += s.go.eq(1)
                    m.d.sync += [s.t.eq(0), s.layer.eq(0), self.cycles.eq(0), self.done.eq(0)]
                    m.next = "LAYER_START"
            with m.State("LAYER_START"):
                m.d.comb += s.layer_start.eq(1)
                n_next = Mux(s.layer == 0, s.n_first, s.ev_cnt)
                m.d.sync += [s.n.eq(n_next), s.g.eq(0),
                             s.wbase.eq(s.cur_base), s.k.eq(0)]
                if cv.present:
                    with m.If(s.cur_conv):
                        with m.If(n_next == 0):
                            m.next = "C_DRAIN"
                        with m.Else():
                            m.next = "C_SCATTER"
                    with m.Else():
                        m.next = "ACC"
                elif plan.cache_input:  # a conv network's first layer is conv: never cached
                    with m.If((s.layer == 0) & (s.t != 0)):
                        m.next = "CACHED"
                    with m.Else():
                        m.next = "ACC"
                else:
                    m.next = "ACC"
            with m.State("ACC"):
                m.d.comb += s.issue.eq(s.k < s.n)
                m.d.sync += s.k.eq(s.k + 1)
                with m.If(s.k == s.n + (ACC_FLUSH - 1)):
                    m.next = "HANDOFF"
            with m.State("HANDOFF"), m.If(s.dcnt == 0):
                last = s.g == s.cur_glast
                m.d.comb += [s.handoff.eq(1), s.load.eq(1),
                             s.load_count.eq(Mux(last, s.cur_plast, P))]
                m.d.sync += [s.g.eq(s.g + 1), s.wbase.eq(s.wbase + s.cur_cin), s.k.eq(0)]
                with m.If(last):
                    m.next = "WAIT_DRAIN"
                with m.Else():
                    m.next = "ACC"
            if plan.cache_input:
                with m.State("CACHED"):
                    m.d.comb += [s.load.eq(1), s.load_cached.eq(1),
                                 s.load_count.eq(ls[0].c_out)]
                    m.next = "WAIT_DRAIN"
            with m.State("WAIT_DRAIN"), m.If((s.dcnt == 0) & ~s.nv & ~s.nv2):
                next_layer()
            if cv.present:
                with m.State("C_SCATTER"):
                    m.d.comb += cv.scatter.eq(1)
                    with m.If(cv.scatter_done):
                        m.next = "C_DRAIN"
                with m.State("C_DRAIN"):
                    m.next = "C_SWEEP"
                with m.State("C_SWEEP"):
                    m.d.comb += cv.sweep.eq(1)
                    with m.If(cv.wg_end):
                        m.next = "C_MASK"
                for state, flag in (("C_MASK", cv.mask), ("C_EMIT", cv.emitting)):
                    with m.State(state):
                        m.d.comb += flag.eq(1)
                        with m.If(cv.more):
                            m.next = "C_EMIT"
                        with m.Elif(cv.last_wg):
                            next_layer()
                        with m.Else():
                            m.next = "C_SWEEP"
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        m.d.comb += self.busy.eq(~s.idle)
        return m

    def _host(self, s: _Shared) -> Module:
        """Input events written by the host while idle (zeros are not events). A spike-train
        input also keeps, per step, where that step's events end (``in_step``), and hands
        layer 0 the events of the running step."""
        m = Module()
        plan = self.plan
        in_wr = s.mem["in_wr"]
        write = Signal()
        m.d.comb += write.eq(s.idle & self.in_we & (self.in_val != 0))
        # a spike keeps only its sign: the top bit of the two's complement -1 / +1
        value = self.in_val[-1] if plan.spike_input else self.in_val
        with m.If(s.idle & self.in_clear):
            m.d.sync += s.n_in.eq(0)
        with m.Elif(write):
            m.d.comb += [in_wr.addr.eq(s.n_in), in_wr.data.eq(Cat(self.in_idx, value)),
                         in_wr.en.eq(1)]
            m.d.sync += s.n_in.eq(s.n_in + 1)
        if not plan.spike_input:
            m.d.comb += s.n_first.eq(s.n_in)
            return m
        ends_wr, ends_rd = s.mem["ends_wr"], s.mem["ends_rd"]
        steps = Signal(range(plan.time_steps + 1))
        with m.If(s.idle & self.in_clear):
            m.d.sync += steps.eq(0)
        with m.Elif(s.idle & self.in_step & (steps < plan.time_steps)):
            m.d.comb += [ends_wr.addr.eq(steps), ends_wr.data.eq(s.n_in + write),
                         ends_wr.en.eq(1)]
            m.d.sync += steps.eq(steps + 1)
        # Steps run in order, so step t's events start where step t - 1's ended.
        end_before = Signal.like(s.in_base)
        m.d.comb += [ends_rd.addr.eq(s.t), s.n_first.eq(ends_rd.data - end_before)]
        with m.If(s.go):
            m.d.sync += end_before.eq(0)
        with m.Elif(s.layer_start & (s.layer == 0)):
            m.d.sync += [s.in_base.eq(end_before), end_before.eq(ends_rd.data)]
        return m


class _Shared:
    """Signals that connect the core's parts."""

    def __init__(self, plan: CorePlan) -> None:
        w = plan.widths
        ls = plan.layers
        P = plan.parallelism
        max_cin = max(lp.c_in for lp in ls)
        max_cout = max(lp.c_out for lp in ls if lp.kind == "linear")
        self.mem: dict = {}
        # sequencer
        self.t = Signal(range(max(plan.time_steps, 2)))
        self.layer = Signal(range(max(len(ls), 2)))
        self.g = Signal(range(max(max(lp.groups for lp in ls), 2)))
        self.n = Signal(range(max_cin + 1))
        self.k = Signal(range(max_cin + ACC_FLUSH + 1))
        self.wbase = Signal(range(plan.weight_words + max_cin + 1))
        self.idle = Signal()
        self.go = Signal()  # start accepted
        self.layer_start = Signal()
        self.issue = Signal()
        self.handoff = Signal()  # accumulators -> shadow
        self.load = Signal()  # the neuron unit takes load_count neurons
        self.load_cached = Signal()  # ... from the input cache
        self.load_count = Signal(range(max(P, ls[0].c_out) + 1))
        # host
        self.n_in = Signal(range(plan.input_depth + 1))
        self.n_first = Signal.like(self.n)  # layer 0's events in this step
        self.in_base = Signal(range(plan.input_depth + 1))  # where they start (spike input)
        # accumulation
        # The P lanes packed into one word each: one signal per register bank instead of P
        # keeps the simulator's per-signal bookkeeping small (synthesis sees the same adders).
        self.acc = Signal(P * w.acc)
        self.shadow = Signal(P * w.acc)
        # neuron unit
        self.dcnt = Signal.like(self.load_count)
        self.dc = Signal(range(max_cout + 1))
        self.nv = Signal()  # stage 1 (the current I) holds a neuron
        self.nv2 = Signal()  # stage 2 (the neuron update) holds a neuron
        self.ev_cnt = Signal(range(plan.event_depth + 1))
        # the current layer's constants
        self.cur_cin = Signal.like(self.wbase)
        self.cur_base = Signal.like(self.wbase)
        self.cur_glast = Signal.like(self.g)
        self.cur_plast = Signal.like(self.load_count)
        self.cur_voff = Signal(range(max(plan.membrane_words, 2)))
        self.cur_boff = Signal(range(max(plan.bias_words, 2)))
        self.cur_conv = Signal()  # the current layer runs on the conv engine
        self.plan = plan
        self.cv = ConvSignals(plan)
        self.conv_lanes = _Lanes(plan) if self.cv.present else None


def _memories(m: Module, plan: CorePlan) -> dict:
    """Instantiate the memories (names as in ``CorePlan.memories``) and their ports."""
    w = plan.widths
    ls = plan.layers
    P = plan.parallelism
    ports: dict = {}
    # A run-time loaded store asks for "huge" RAM: yosys maps it to iCE40 SPRAM only when
    # asked (it would pick block RAM by cost), and SPRAM cannot be initialised.
    ram = plan.weight_store == "ram"
    wmem = Memory(shape=unsigned(P * w.weight), depth=plan.weight_words,
                  init=[] if ram else plan.weight_init(),
                  attrs={"ram_style": "huge"} if ram else None)
    m.submodules.weights = wmem
    ports["w_rd"] = wmem.read_port()
    if plan.weight_store == "ram":
        ports["w_wr"] = wmem.write_port()
    inmem = Memory(shape=unsigned(plan.input_word), depth=plan.input_depth, init=[])
    m.submodules.input_events = inmem
    ports["in_rd"], ports["in_wr"] = inmem.read_port(), inmem.write_port()
    if plan.spike_input:
        # Where each step's events end in [input events]: T small words, read without a
        # clock at the step's layer-0 start (registers, not block RAM).
        ends = Memory(shape=unsigned(max(1, plan.input_depth.bit_length())),
                      depth=plan.time_steps, init=[])
        m.submodules.input_step_ends = ends
        ports["ends_rd"] = ends.read_port(domain="comb")
        ports["ends_wr"] = ends.write_port()
    if len(ls) > 1:
        evmem = Memory(shape=unsigned(plan.event_word), depth=2 * plan.event_depth, init=[])
        m.submodules.spike_events = evmem
        ports["ev_rd"], ports["ev_wr"] = evmem.read_port(), evmem.write_port()
    conv_memories(m, plan, ports)
    for lp in ls:  # one membrane memory per neuron layer, as wide as its own bounds need
        if lp.has_neuron and lp.kind == "linear":
            vmem = Memory(shape=signed(lp.potential_width), depth=lp.c_out, init=[])
            m.submodules[f"membrane{lp.index}"] = vmem
            ports[f"v_rd{lp.index}"] = vmem.read_port()
            ports[f"v_wr{lp.index}"] = vmem.write_port()
    if plan.has_bias:
        bmem = Memory(shape=signed(w.bias), depth=plan.bias_words, init=plan.bias_init())
        m.submodules.bias = bmem
        ports["b_rd"] = bmem.read_port()
    if not plan.uniform_thresholds:
        tmem = Memory(shape=signed(w.threshold), depth=plan.membrane_words,
                      init=plan.threshold_init())
        m.submodules.threshold = tmem
        ports["t_rd"] = tmem.read_port()
    if plan.cache_input:
        cmem = Memory(shape=signed(w.acc), depth=ls[0].c_out, init=[])
        m.submodules.input_cache = cmem
        ports["c_rd"], ports["c_wr"] = cmem.read_port(), cmem.write_port()
    lmem = Memory(shape=signed(w.logit), depth=ls[-1].c_out, init=[])
    m.submodules.logits = lmem
    ports["l_rd"], ports["l_wr"] = lmem.read_port(), lmem.write_port()
    return ports


def _constants(s: _Shared) -> Module:
    """The current layer's sizes and offsets (the network is compiled into the core)."""
    m = Module()
    with m.Switch(s.layer):
        for lp in s.plan.layers:
            with m.Case(lp.index):
                if lp.kind == "conv":
                    m.d.comb += [s.cur_conv.eq(1), s.cur_base.eq(lp.wbase)]
                    continue
                m.d.comb += [s.cur_cin.eq(lp.c_in), s.cur_base.eq(lp.wbase),
                             s.cur_glast.eq(lp.groups - 1), s.cur_plast.eq(lp.last_group),
                             s.cur_boff.eq(lp.boff)]
                if lp.has_neuron:
                    m.d.comb += s.cur_voff.eq(lp.voff)
    return m


def _accumulate(s: _Shared, core: SpikingCore) -> Module:
    """Issue -> event read -> weight read -> P lanes ``acc[p] += W[p] * x``; the hand-off to
    the shadow registers, which the neuron unit shifts out one lane per cycle. An event with
    a sign (a spike of -1) subtracts the weight instead: still one accumulate."""
    plan = s.plan
    w = plan.widths
    P = plan.parallelism
    mem = s.mem
    m = Module()
    in_rd, w_rd, ev_rd = mem["in_rd"], mem["w_rd"], mem.get("ev_rd")
    v1, v2 = Signal(), Signal()
    x2 = Signal(signed(w.input + 1))
    neg2 = Signal()
    first = s.layer == 0
    # While a conv layer runs, its scatter reads the events (and the weights) instead.
    cv = s.cv
    k = Mux(s.cur_conv, cv.ev_addr, s.k) if cv.present else s.k
    # a spike-train input: layer 0 reads the running step's events, from in_base on
    m.d.comb += in_rd.addr.eq(k + s.in_base if plan.spike_input else k)
    ev_bits = (plan.event_depth - 1).bit_length()
    if ev_rd is not None:
        m.d.comb += ev_rd.addr.eq(Cat(k[:ev_bits], s.layer[0]))
    m.d.sync += v1.eq(s.issue)
    idx = Signal(max(w.in_index, w.ev_index))
    val = Signal(signed(w.input + 1))
    neg = Signal()  # the event is a spike of -1
    in_idx, in_val = in_rd.data[: w.in_index], in_rd.data[w.in_index:]
    in_neg = in_rd.data[w.in_index] if plan.spike_input else Const(0, 1)
    if ev_rd is not None:
        ev_idx = ev_rd.data[: w.ev_index]
        ev_neg = ev_rd.data[w.ev_index] if plan.signed_events else Const(0, 1)
        m.d.comb += [idx.eq(Mux(first, in_idx, ev_idx)), neg.eq(Mux(first, in_neg, ev_neg)),
                     val.eq(Mux(first, in_val, Mux(ev_neg, -1, 1)))]
    else:
        m.d.comb += [idx.eq(in_idx), neg.eq(in_neg), val.eq(in_val)]
    lin_addr = Mux(s.cur_conv, cv.waddr, s.wbase + idx) if cv.present else s.wbase + idx
    if plan.weight_store == "ram":
        # One address for reads and writes, so synthesis can map the store to single-port
        # SPRAM; the host loads the weights only while the core is idle.
        w_wr = mem["w_wr"]
        w_addr = Signal.like(w_rd.addr)
        m.d.comb += [w_addr.eq(Mux(core.wl_en, core.wl_addr, lin_addr)),
                     w_wr.addr.eq(w_addr), w_wr.data.eq(core.wl_data),
                     w_wr.en.eq(core.wl_en & s.idle), w_rd.addr.eq(w_addr),
                     # SPRAM keeps its output while writing ("no_change"): no read then.
                     w_rd.en.eq(~core.wl_en)]
    else:
        m.d.comb += w_rd.addr.eq(lin_addr)
    m.d.sync += [v2.eq(v1), x2.eq(val), neg2.eq(neg)]
    aw, wb = w.acc, w.weight
    # Only a static linear first layer sees multi-bit input values (the lanes multiply, and a
    # signed spike is a value of -1); otherwise the lanes add, or subtract for a signed event.
    multiply = plan.layers[0].kind == "linear" and not plan.spike_input
    subtract = not multiply and (plan.spike_input or plan.signed_events)
    lanes = []
    for p in range(P):
        weight = w_rd.data[p * wb:(p + 1) * wb].as_signed()
        acc = s.acc[p * aw:(p + 1) * aw].as_signed()
        if multiply:
            total = acc + weight * x2
        elif subtract:  # acc - W = acc + ~W + 1: the weight's bits flipped, the sign added
            flipped = (weight.as_unsigned() ^ neg2.replicate(wb)).as_signed()
            total = acc + flipped + neg2
        else:
            total = acc + weight
        lanes.append(total[:aw])
    with m.If(s.handoff):
        m.d.sync += [s.shadow.eq(s.acc), s.acc.eq(0)]
    with m.Else():
        with m.If(v2):
            m.d.sync += s.acc.eq(Cat(*lanes))
        with m.If(s.dcnt != 0):
            m.d.sync += s.shadow.eq(s.shadow >> aw)
    return m


def _neuron_unit(s: _Shared, core: SpikingCore) -> Module:
    """One neuron per cycle through three stages: issue (read bias and cache, shift the
    shadow), I = (acc << shift) + bias (read V, threshold, logit), then the update and the
    writes. Two register stages keep the adders of I and of H on separate clock cycles."""
    plan = s.plan
    w = plan.widths
    ls = plan.layers
    mem = s.mem
    m = Module()
    b_rd, t_rd = mem.get("b_rd"), mem.get("t_rd")
    c_rd, c_wr = mem.get("c_rd"), mem.get("c_wr")
    l_rd, l_wr = mem["l_rd"], mem["l_wr"]
    ev_wr = mem.get("ev_wr")
    nacc = Signal(signed(w.acc))
    nc = Signal.like(s.dc)
    nc2 = Signal.like(s.dc)
    cache_mode = Signal()
    drain = s.dcnt != 0

    # -- issue: read bias and cache for neuron dc ----------------------------------------------
    with m.If(s.load):
        m.d.sync += [s.dcnt.eq(s.load_count), cache_mode.eq(s.load_cached)]
    with m.Elif(drain):
        m.d.sync += s.dcnt.eq(s.dcnt - 1)
    with m.If(s.layer_start):
        m.d.sync += [s.dc.eq(0), s.ev_cnt.eq(0)]
    with m.Elif(drain):
        m.d.sync += [s.dc.eq(s.dc + 1), nacc.eq(s.shadow[: w.acc].as_signed()), nc.eq(s.dc)]
    m.d.sync += [s.nv.eq(drain), s.nv2.eq(s.nv), nc2.eq(nc)]
    if b_rd is not None:
        m.d.comb += b_rd.addr.eq(s.cur_boff + s.dc)
    if c_rd is not None:
        m.d.comb += c_rd.addr.eq(s.dc)

    # -- stage 1: the current I; read V, threshold and logit for neuron nc ---------------------
    accv = Signal(signed(w.acc))
    m.d.comb += accv.eq(Mux(cache_mode, c_rd.data, nacc) if c_rd is not None else nacc)
    bias = b_rd.data if b_rd is not None else Const(0, signed(2))
    current = Signal(signed(w.current))
    current2 = Signal(signed(w.current))
    lin = plan.linear_layers
    with m.Switch(s.layer):
        for lp in lin:
            with m.Case(lp.index):
                m.d.comb += current.eq((accv << lp.shift) + bias)
    m.d.sync += current2.eq(current)
    for lp in lin:
        if lp.has_neuron:
            m.d.comb += mem[f"v_rd{lp.index}"].addr.eq(nc)
    if t_rd is not None:
        m.d.comb += t_rd.addr.eq(s.cur_voff + nc)
    m.d.comb += [l_rd.addr.eq(Mux(s.idle, core.out_addr, nc)), core.out_data.eq(l_rd.data)]
    if c_wr is not None:
        m.d.comb += [c_wr.addr.eq(nc), c_wr.data.eq(accv),
                     c_wr.en.eq(s.nv & (s.layer == 0) & (s.t == 0))]

    # -- stage 2: H, the spike, the new V (or the logit) for neuron nc2 -----------------------
    h = Signal(signed(w.pre_reset))
    thr = Signal(signed(w.threshold))
    hidden = [lp for lp in lin if lp.has_neuron]
    # what the membrane memories store: V, or a layer's b-bit code V >> membrane_shift
    v_store = Signal(signed(max([lp.potential_width for lp in hidden], default=2)))
    fire_pos = Signal()  # H >= thr: a spike of +1
    fire_neg = Signal()  # a ternary layer's H <= -thr: a spike of -1
    fired = fire_pos | fire_neg
    with m.Switch(s.layer):
        for lp in hidden:
            with m.Case(lp.index):
                stored = mem[f"v_rd{lp.index}"].data
                coded = lp.membrane_bits is not None
                v_old = Mux(s.t == 0, 0, stored << lp.membrane_shift if coded else stored)
                if lp.leak_shift is None:
                    m.d.comb += h.eq(v_old + current2)
                else:
                    m.d.comb += h.eq(v_old - (v_old >> lp.leak_shift) + current2)
                if lp.uniform_threshold is not None:
                    m.d.comb += thr.eq(lp.uniform_threshold)
                else:
                    m.d.comb += thr.eq(t_rd.data)
                m.d.comb += fire_pos.eq(h >= thr)
                if lp.ternary:
                    m.d.comb += fire_neg.eq(h <= -thr)

                def store(v, lp=lp):
                    """What the memory keeps of the new V: itself, or its code."""
                    if lp.membrane_bits is None:
                        return v
                    return _membrane_code(v, lp.membrane_bits, lp.membrane_shift)

                # Each candidate is requantised next to the compare, not after it: the
                # spike only picks one, which keeps the rounding off the critical path.
                if lp.reset == "soft":
                    m.d.comb += v_store.eq(Mux(fire_pos, store(h - thr),
                                               Mux(fire_neg, store(h + thr), store(h))))
                else:
                    m.d.comb += v_store.eq(Mux(fired, 0, store(h)))
    neuron_layers = [lp for lp in ls if lp.has_neuron]
    counters = dict(zip((lp.index for lp in neuron_layers), core.spike_counts))
    ev_bits = (plan.event_depth - 1).bit_length()
    # Addresses and data are driven whatever the enables say: only the write enables wait for
    # the late spike decision, which keeps the compare off the address paths.
    for lp in hidden:
        v_wr = mem[f"v_wr{lp.index}"]
        m.d.comb += [v_wr.addr.eq(nc2), v_wr.data.eq(v_store),
                     v_wr.en.eq(s.nv2 & (s.layer == lp.index))]
    # The conv engine's events and spike counts come in here: one driver per signal.
    cv = s.cv
    emit = (s.nv2 & fired) | cv.emit if cv.present else s.nv2 & fired
    if ev_wr is not None:
        # a linear layer's event: the neuron's index, and its sign when a ternary layer emits
        index = Signal(w.ev_index)
        m.d.comb += index.eq(nc2)
        own = Cat(index, fire_neg) if plan.signed_events else index
        data = Mux(s.cur_conv, cv.emit_data, own) if cv.present else own
        m.d.comb += [ev_wr.addr.eq(Cat(s.ev_cnt[:ev_bits], ~s.layer[0])), ev_wr.data.eq(data),
                     ev_wr.en.eq(emit)]
    m.d.comb += [l_wr.addr.eq(nc2), l_wr.data.eq(Mux(s.t == 0, 0, l_rd.data) + current2),
                 l_wr.en.eq(s.nv2 & (s.layer == ls[-1].index))]
    with m.If(emit):
        m.d.sync += s.ev_cnt.eq(s.ev_cnt + 1)
    with m.Switch(s.layer):
        for lp in neuron_layers:
            with m.Case(lp.index):
                if lp.kind == "conv":
                    m.d.sync += counters[lp.index].eq(counters[lp.index] + cv.spike_inc)
                else:  # a spike of either sign counts once (|S|)
                    with m.If(s.nv2 & fired):
                        m.d.sync += counters[lp.index].eq(counters[lp.index] + 1)
    with m.If(s.go):  # after the increments: the later assignment wins
        m.d.sync += [c.eq(0) for c in core.spike_counts]
    return m


def _membrane_code(v, bits: int, shift: int):
    """``wb_sim.ir.requantize(v, bits, shift) >> shift`` in logic: the floor shift, the
    remainder against half a step (a tie goes to the even code), then the clip to
    ``±(2**(bits-1) - 1)``."""
    top = (1 << (bits - 1)) - 1
    q = v
    if shift:
        if len(v) <= shift:  # sign-extend, so bit ``shift`` (the floor's parity) exists
            v = Cat(v, v[-1].replicate(shift + 1 - len(v))).as_signed()
        rest = v[:shift]
        half = 1 << (shift - 1)
        q = (v >> shift) + ((rest > half) | ((rest == half) & v[shift]))
    return Mux(q > top, top, Mux(q < -top, -top, q))


class SerialTop(Elaboratable):
    """A pin-limited top for synthesis: the core behind two shift registers.

    The core has ~100-200 ports, far more than an iCE40 UP5K SG48's 39 pins. This wrapper needs
    five (plus ``clk``/``rst``): ``sdi``/``shift`` shift a command word in (every core input,
    concatenated in :meth:`SpikingCore.ports` order), ``apply`` drives the core from it for one
    cycle (the strobes ``start``, ``in_clear``, ``in_we``, ``wl_en`` only then), ``capture``
    loads every core output into the readback register, which ``shift`` moves out on ``sdo``.
    It stands in for the SPI or UART bridge a board would use, so the place-and-route report
    counts the whole core (nothing is optimised away for lack of a pin).
    """

    def __init__(self, core: SpikingCore) -> None:
        self.core = core
        self.sdi = Signal()
        self.shift = Signal()
        self.apply = Signal()
        self.capture = Signal()
        self.sdo = Signal()

    def ports(self) -> list[Signal]:
        return [self.sdi, self.shift, self.apply, self.capture, self.sdo]

    def inputs(self) -> list[Signal]:
        core = self.core
        found = [core.start, core.in_clear, core.in_we, core.in_idx, core.in_val, core.out_addr]
        if core.plan.spike_input:
            found.append(core.in_step)
        if core.plan.weight_store == "ram":
            found += [core.wl_en, core.wl_addr, core.wl_data]
        return found

    def outputs(self) -> list[Signal]:
        core = self.core
        return [core.busy, core.done, core.out_data, core.cycles, *core.spike_counts]

    def elaborate(self, platform) -> Module:
        m = Module()
        core = self.core
        m.submodules.core = core
        inputs, outputs = self.inputs(), self.outputs()
        cmd = Signal(sum(len(s) for s in inputs))
        readback = Signal(sum(len(s) for s in outputs))
        with m.If(self.capture):
            m.d.sync += readback.eq(Cat(*outputs))
        with m.Elif(self.shift):
            m.d.sync += readback.eq(readback >> 1)
        with m.If(self.shift):
            m.d.sync += cmd.eq(Cat(cmd[1:], self.sdi))
        strobes = {id(core.start), id(core.in_clear), id(core.in_we)}
        if core.plan.spike_input:
            strobes.add(id(core.in_step))
        if core.plan.weight_store == "ram":
            strobes.add(id(core.wl_en))
        offset = 0
        for sig in inputs:
            part = cmd[offset:offset + len(sig)]
            m.d.comb += sig.eq(part & self.apply if id(sig) in strobes else part)
            offset += len(sig)
        m.d.comb += self.sdo.eq(readback[0])
        return m
