"""Run the generated core in Amaranth's Python simulator, sample by sample.

The testbench drives the core's host interface exactly as the hardware host would: clear,
write the non-zero inputs (a spike-train input: each step's spikes, then ``in_step``), start,
wait for ``done`` (the simulator runs the design without waking the testbench on every cycle),
read the cycle counter, the spike counters and the logits. With ``weight_store="ram"`` it first
writes the weights over the load port.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
from wb_sim.ir import IntegerNetwork


@dataclass
class HardwareResult:
    predictions: np.ndarray  # int64 [B]
    logits: np.ndarray  # int64 [B, C]
    spike_counts: dict[str, np.ndarray]  # neuron layer name -> int64 [B]
    cycles: np.ndarray  # int64 [B], start -> done


def simulate_core(net: IntegerNetwork, x_int: np.ndarray, parallelism: int = 16, *,
                  weight_store: str = "rom", cache_input: bool | None = None,
                  max_cycles: int | None = None) -> HardwareResult:
    """Simulate the core for ``net`` on ``x_int[B, ...]`` (integers in ``0 .. 2**input_bits-1``),
    or, for an ``input_kind = "spikes"`` network, on spike trains ``x[B, T, ...]`` in {-1, 0, 1}.

    ``max_cycles`` bounds one sample (default: the plan's densest-sample bound)."""
    run = iter_core(net, x_int, parallelism, weight_store=weight_store,
                    cache_input=cache_input, max_cycles=max_cycles)
    while True:
        try:
            next(run)
        except StopIteration as stop:
            return stop.value


def iter_core(net: IntegerNetwork, x_int: np.ndarray, parallelism: int = 16, *,
              weight_store: str = "rom", cache_input: bool | None = None,
              max_cycles: int | None = None) -> Generator[int, None, HardwareResult]:
    """:func:`simulate_core` as a generator: yields the number of finished samples after each
    one (report progress, or close the generator to cancel), returns the result."""
    from amaranth.sim import Simulator

    from wb_fpga.hdl import SpikingCore
    from wb_fpga.plan import plan_core

    plan = plan_core(net, parallelism, weight_store=weight_store, cache_input=cache_input)
    core = SpikingCore(plan)
    # The counter's width holds the densest sample, so reaching its top means a hang.
    limit = min(max_cycles or (1 << plan.widths.cycles) - 1, (1 << plan.widths.cycles) - 1)
    bench_top, stop = _with_stop(core, limit)
    spike_input = plan.spike_input
    if spike_input:  # [B, T, inputs]: the host loads each step's spikes
        x = np.asarray(x_int, dtype=np.int64).reshape(len(x_int), plan.time_steps, -1)
        if x.size and np.abs(x).max() > 1:
            raise ValueError("a spike-train input takes -1, 0 or 1 per input and step")
    else:
        x = np.asarray(x_int, dtype=np.int64).reshape(len(x_int), -1)
        top = (1 << int(net.input_bits)) - 1
        if x.size and (x.min() < 0 or x.max() > top):
            raise ValueError(f"inputs must be integers in 0..{top}")
    B, C = x.shape[0], plan.n_classes
    logits = np.zeros((B, C), dtype=np.int64)
    cycles = np.zeros(B, dtype=np.int64)
    neuron_layers = [lp for lp in plan.layers if lp.has_neuron]
    counts = {lp.name: np.zeros(B, dtype=np.int64) for lp in neuron_layers}
    words = plan.weight_init() if weight_store == "ram" else []
    finished = [0]

    async def bench(ctx) -> None:
        for addr, word in enumerate(words):  # SPRAM weights: loaded over the load port
            ctx.set(core.wl_en, 1)
            ctx.set(core.wl_addr, addr)
            ctx.set(core.wl_data, word)
            await ctx.tick()
        if words:
            ctx.set(core.wl_en, 0)
        for b in range(B):
            ctx.set(core.in_clear, 1)
            await ctx.tick()
            ctx.set(core.in_clear, 0)
            if spike_input:
                for t in range(plan.time_steps):
                    await _write_events(ctx, core, plan, x[b, t], mask=3)  # -1 -> 0b11
                    ctx.set(core.in_step, 1)
                    await ctx.tick()
                    ctx.set(core.in_step, 0)
            else:
                await _write_events(ctx, core, plan, x[b])
            ctx.set(core.start, 1)
            await ctx.tick()
            ctx.set(core.start, 0)
            # Woken only when ``stop`` changes: the design runs without the testbench.
            await ctx.changed(stop)
            await ctx.tick()
            cycles[b] = ctx.get(core.cycles)
            if not ctx.get(core.done):
                raise RuntimeError(f"sample {b} did not finish within {limit} cycles")
            for lp, sig in zip(neuron_layers, core.spike_counts):
                counts[lp.name][b] = ctx.get(sig)
            for c in range(C):
                ctx.set(core.out_addr, c)
                await ctx.tick()
                logits[b, c] = ctx.get(core.out_data)
            finished[0] = b + 1

    sim = Simulator(bench_top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    reported = 0
    while sim.advance():
        if finished[0] != reported:
            reported = finished[0]
            yield reported
    return HardwareResult(np.argmax(logits, axis=1) if B else np.zeros(0, np.int64), logits,
                          counts, cycles)


async def _write_events(ctx, core, plan, values: np.ndarray, mask: int = -1) -> None:
    """Write the non-zero ``values`` (flat, one sample or one step) over ``in_we``."""
    ctx.set(core.in_we, 1)
    active = np.flatnonzero(values)
    for i, where in zip(active, plan.host_index(active)):
        ctx.set(core.in_idx, int(where))
        ctx.set(core.in_val, int(values[i]) & mask)
        await ctx.tick()
    ctx.set(core.in_we, 0)


def _with_stop(core, limit: int):
    """Wrap ``core`` with a ``stop`` signal (done, or the cycle limit reached): waiting on a
    plain signal is much faster in the simulator than on an expression."""
    from amaranth.hdl import Module, Signal

    top = Module()
    top.submodules.core = core
    stop = Signal()
    top.d.comb += stop.eq(core.done | (core.cycles >= limit))
    return top, stop
