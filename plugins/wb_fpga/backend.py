"""The ``wb_fpga.fpga`` backend: convert, golden-check in simulation, synthesise, report.

``deploy``: the trained network becomes an integer network (``wb_sim``); the Amaranth core is
simulated on ``sim_samples`` test samples and must agree with ``wb_sim`` and the torch integer
reference in predictions, logits and every layer's spike count; then Verilog, yosys, nextpnr
and (where the flow allows) the bitstream; the report holds resources, Fmax, cycles, latency
and an energy estimate with its power model. ``run`` streams the test set through ``wb_sim``
(bit-exact with the core) and prices each sample at power x cycles / f.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from wb_sim.ir import IntegerNetwork

from wb_fpga.cycles import cycles_from_trace, trace
from wb_fpga.fit import fit
from wb_fpga.targets import TARGETS, Target, get_target
from workbench.pluginhost import DeployContext, DeployError, FitIssue, RunEvent

NETWORK_FILE = "network.npz"
_STEPS = ("converting to integers (wb_sim)", "fit check", "simulating the core (Amaranth)",
          "exporting Verilog (yosys; first use compiles it, ~1 min)", "yosys: synthesising", "nextpnr: placing and routing",
          "packing the bitstream", "report")


class FpgaBackend:
    """Spiking core in Amaranth HDL for the iCE40 UP5K and the ECP5-25F."""

    def __init__(self, parallelism: int = 16, weight_bits: int = 4, input_bits: int = 8,
                 sim_samples: int = 50, synthesize: bool = True,
                 tool_timeout_s: float = 600.0) -> None:
        self.parallelism = int(parallelism)
        self.weight_bits = int(weight_bits)
        self.input_bits = int(input_bits)
        self.sim_samples = int(sim_samples)
        self.synthesize = bool(synthesize)
        self.tool_timeout_s = float(tool_timeout_s)
        self._nets: dict[int, IntegerNetwork] = {}
        self._deployed: dict[str, Any] = {}

    def targets(self) -> dict[str, str]:
        return {name: t.description for name, t in TARGETS.items()}

    # -- fit -----------------------------------------------------------------------------------
    def network(self, ctx: DeployContext) -> IntegerNetwork:
        """The integer network of ``ctx.model`` (converted once per model)."""
        key = id(ctx.model)
        if key not in self._nets:
            from wb_sim.backend import takes_encoder_spikes
            from wb_sim.convert import input_scale_for, to_integer

            spikes = takes_encoder_spikes(ctx)  # a TAE-encoded signal, for example
            scale = 1.0 if spikes else input_scale_for(ctx.data.train, self.input_bits)
            self._nets[key] = to_integer(
                ctx.model, time_steps=ctx.time_steps, input_scale=scale,
                input_bits=self.input_bits, weight_bits=self.weight_bits,
                name=ctx.project.name, input_kind="spikes" if spikes else "static")
        return self._nets[key]

    def check(self, ctx: DeployContext) -> list[FitIssue]:
        from wb_sim.backend import firing_time_refusal, takes_encoder_spikes
        from wb_sim.convert import check as convert_check

        refused = firing_time_refusal(ctx, "the FPGA core runs spike trains step by step and "
                                           "has no firing-time neurons")
        if refused:
            return refused
        issues = list(convert_check(ctx.model))
        encoder = ctx.project.encoder.id
        if encoder != "wb_core.direct" and not takes_encoder_spikes(ctx):
            issues.append(FitIssue("", f"the encoder is {encoder}, which makes neither spikes "
                                       "nor a static input; the core takes the encoder's spikes "
                                       "(-1, 0, 1) step by step or one static integer input for "
                                       "all time steps (wb_core.direct)"))
        if any(i.severity == "error" for i in issues):
            return issues
        return issues + fit(self.network(ctx), ctx.target, self.parallelism).issues

    # -- deploy --------------------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        total = len(_STEPS)
        target = get_target(ctx.target)
        out = Path(ctx.out_dir)
        yield ctx.progress(0, total, _STEPS[0])
        net = self.network(ctx)
        for note in net.notes:
            yield ctx.log(note)
        net_path = net.save(out / NETWORK_FILE)
        yield ctx.progress(1, total, _STEPS[1])
        fitted = fit(net, target, self.parallelism)
        if not fitted.ok:
            first = next(i for i in fitted.issues if i.severity == "error")
            raise DeployError(f"does not fit {target.name}: {first.message}",
                              where=f"node {first.node!r}" if first.node else target.name)
        plan = fitted.plan
        store = "SPRAM (loaded at run time)" if plan.weight_store == "ram" else "block RAM"
        yield ctx.log(f"core: P = {plan.parallelism} lanes, weights in {store}, widths "
                      f"{_widths(plan)}")
        if fitted.membranes:
            yield ctx.log(fitted.membrane_summary())
        yield ctx.progress(2, total, _STEPS[2])
        golden = yield from self._golden(ctx, net, plan, total)
        cycles = golden.pop("_cycles")
        report: dict[str, Any] = {
            "target": target.name, "target_description": target.description,
            "parallelism": plan.parallelism, "weight_store": plan.weight_store,
            "network": str(net_path), "time_steps": net.time_steps,
            "input_kind": net.input_kind, "membranes": fitted.membranes,
            "layers": [_layer(lp) for lp in plan.layers], "widths": _widths(plan),
            "memories": fitted.memory,
            "estimate": {"bram_blocks": fitted.bram_used, "spram_blocks": fitted.spram_used,
                         "luts": fitted.lut_estimate},
            "golden": golden,
            "cycles_per_inference": {
                "mean": float(cycles.mean()), "min": int(cycles.min()),
                "max": int(cycles.max()), "samples": len(cycles),
                "source": "cycle model (wb_fpga.cycles), equal to the Amaranth simulation on "
                          "the golden samples"},
            "notes": list(net.notes),
        }
        yield ctx.progress(3, total, _STEPS[3])
        yield ctx.log("YoWASP tools compile their WebAssembly (~230 MB) into the YoWASP cache "
                      "the first time they run on a machine: about a minute for yosys, seconds "
                      "for nextpnr; later runs start at once")
        from wb_fpga import toolchain

        verilog = yield from self._tool(ctx, toolchain.export_verilog(
            plan, out, timeout_s=self.tool_timeout_s), 3, total, _STEPS[3])
        report["verilog"] = str(verilog)
        report["rtlil"] = str(out / "snn_core.il")
        resources: dict[str, Any] = {}
        fmax = 0.0
        logic_cells = None
        if self.synthesize:
            yield ctx.progress(4, total, _STEPS[4])
            netlist = yield from self._tool(ctx, toolchain.synthesize(
                target, verilog, out, timeout_s=self.tool_timeout_s, use_dsp=fitted.use_dsp,
                use_spram=plan.weight_store == "ram"), 4, total, _STEPS[4])
            yosys_cells = _yosys_cells(out / "yosys-run.log")
            yield ctx.progress(5, total, _STEPS[5])
            placed, pnr_report = yield from self._tool(ctx, toolchain.place_and_route(
                target, netlist, out, timeout_s=self.tool_timeout_s), 5, total, _STEPS[5])
            parsed = toolchain.parse_report(pnr_report, target)
            resources = _resources(target, parsed["resources"], yosys_cells)
            fmax = parsed["fmax_mhz"]
            logic_cells = resources.get("LC", resources.get("LUT", {})).get("used")
            report.update(netlist=str(netlist), pnr_report=str(pnr_report),
                          placed=str(placed), yosys_cells=yosys_cells)
            yield ctx.progress(6, total, _STEPS[6])
            bitstream = yield from self._tool(ctx, toolchain.pack_bitstream(
                target, placed, out, timeout_s=self.tool_timeout_s), 6, total, _STEPS[6])
            report["bitstream"] = str(bitstream)
            if plan.weight_store == "ram":
                report["bitstream_note"] = ("the weights are in SPRAM, which the bitstream "
                                            "cannot initialise: the host writes them over the "
                                            "weight port (wl_en/wl_addr/wl_data) after "
                                            "configuration; weights.hex holds the words")
                _write_weight_words(plan, out / "weights.hex")
                report["weights_hex"] = str(out / "weights.hex")
        else:
            report["bitstream"] = None
            report["synthesis"] = "skipped (synthesize = false)"
        yield ctx.progress(7, total, _STEPS[7])
        report["resources"] = resources
        report["fmax_mhz"] = fmax
        report.update(_timing_and_energy(target, cycles, fmax, logic_cells))
        self._deployed = {"net": net, "plan": plan, "clock_mhz": report["clock_mhz"],
                          "watts": report["power_w"], "target": target}
        yield ctx.log(_summary(report))
        yield ctx.progress(total, total, "done")
        return report

    def _golden(self, ctx: DeployContext, net: IntegerNetwork, plan, total: int
                ) -> Generator[RunEvent, None, dict[str, Any]]:
        """Amaranth simulation vs wb_sim vs the torch integer reference on the first
        ``sim_samples`` test samples; any disagreement is a :class:`DeployError`."""
        from wb_sim.reference import torch_integer_forward
        from wb_sim.simulate import simulate

        from wb_fpga.sim import iter_core

        xs, ys = [], []
        for x, y in ctx.data.test.batches(256, limit=self.sim_samples):
            xs.append(x.numpy())
            ys.append(y.numpy())
        if not xs:
            raise DeployError("the test split is empty: nothing to check the core on",
                              where="dataset")
        x_int = _network_input(net, ctx, np.concatenate(xs))
        labels = np.concatenate(ys)
        n = len(x_int)
        started = time.perf_counter()
        run = iter_core(net, x_int, plan.parallelism, weight_store=plan.weight_store,
                        cache_input=plan.cache_input)
        try:
            while True:
                try:
                    done = next(run)
                except StopIteration as stop:
                    hw = stop.value
                    break
                ctx.check_cancel()
                yield ctx.progress(2, total, f"simulating the core (Amaranth): {done}/{n}")
        finally:
            run.close()
        seconds = time.perf_counter() - started
        sim = simulate(net, x_int)
        ref = torch_integer_forward(net, x_int)
        model_cycles = cycles_from_trace(plan, trace(net, x_int))
        _compare(hw, sim, ref)
        if not np.array_equal(model_cycles, hw.cycles):
            raise RuntimeError("the cycle model disagrees with the simulated core: "
                               f"{model_cycles[:5].tolist()} vs {hw.cycles[:5].tolist()}")
        yield ctx.log(f"the core agrees with wb_sim and the torch integer reference on {n} "
                      f"samples (predictions, logits, spike counts); {seconds:.1f} s simulated")
        return {"samples": n, "bit_exact": True,
                "compared": ["predictions", "logits", "spike counts per layer", "cycles"],
                "accuracy": float(np.mean(hw.predictions == labels)),
                "simulation_seconds": round(seconds, 2), "_cycles": hw.cycles}

    def _tool(self, ctx: DeployContext, run: Generator, step: int, total: int, message: str
              ) -> Generator[RunEvent, None, Any]:
        """Drive a tool generator: heartbeats become progress, cancellation kills the tool."""
        last = -1
        try:
            while True:
                try:
                    _, elapsed = next(run)
                except StopIteration as stop:
                    return stop.value
                ctx.check_cancel()
                if int(elapsed) // 5 != last:  # every 5 s
                    last = int(elapsed) // 5
                    yield ctx.progress(step, total, f"{message} ({int(elapsed)} s)")
        finally:
            run.close()

    # -- run -----------------------------------------------------------------------------------
    def run(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        from wb_sim.simulate import iter_simulate

        if not self._deployed:
            raise DeployError("run needs a deployment first", where="wb_fpga.fpga")
        net, plan = self._deployed["net"], self._deployed["plan"]
        target: Target = self._deployed["target"]
        f_mhz, watts = self._deployed["clock_mhz"], self._deployed["watts"]
        source = (f"{target.power.name}: {target.power.source}; x cycles from the cycle model "
                  f"at {f_mhz:g} MHz")
        x, y = ctx.test_arrays()
        x_int = _network_input(net, ctx, x)
        done = correct = 0
        energies: list[float] = []
        cycles_all: list[int] = []
        for result in iter_simulate(net, x_int, chunk=32):
            ctx.check_cancel()
            chunk = x_int[done:done + len(result)]
            cycles = cycles_from_trace(plan, trace(net, chunk))
            hits = result.predictions == y[done:done + len(result)]
            done += len(result)
            correct += int(hits.sum())
            pj = (watts * cycles / (f_mhz * 1e6) * 1e12).tolist()
            energies.extend(pj)
            cycles_all.extend(int(c) for c in cycles)
            yield ctx.live_energy(pj, hits.tolist(), kind="estimate", source=source)
        return {"accuracy": correct / max(done, 1), "samples": done,
                "mean_pj": float(np.mean(energies)) if energies else 0.0,
                "mean_cycles": float(np.mean(cycles_all)) if cycles_all else 0.0,
                "clock_mhz": f_mhz, "kind": "estimate", "source": source}


# -- helpers --------------------------------------------------------------------------------------
def _network_input(net: IntegerNetwork, ctx: DeployContext, x: np.ndarray) -> np.ndarray:
    """What the core takes for the real-valued samples ``x``: the quantised static input, or
    for an ``input_kind = "spikes"`` network the encoder's spikes ``[B, T, ...]``, made on the
    host as wb_sim makes them."""
    if net.input_kind != "spikes":
        return net.quantize_input(x)
    from wb_sim.backend import network_input

    return network_input(net, ctx, x)


def _compare(hw, sim, ref) -> None:
    """Raise :class:`DeployError` naming the first disagreement between the three runs."""
    for name, other in (("wb_sim", sim), ("the torch integer reference", ref)):
        bad = np.flatnonzero(hw.predictions != other.predictions)
        if bad.size:
            i = int(bad[0])
            raise DeployError(f"the simulated core predicts {int(hw.predictions[i])} for test "
                              f"sample {i}, {name} {int(other.predictions[i])} ({bad.size} "
                              "samples differ): the hardware does not implement the integer "
                              "network exactly", where="simulation")
        if not np.array_equal(hw.logits, other.logits):
            i = int(np.flatnonzero((hw.logits != other.logits).any(axis=1))[0])
            raise DeployError(f"the simulated core's logits differ from {name}'s for test "
                              f"sample {i}: {hw.logits[i].tolist()} vs "
                              f"{other.logits[i].tolist()}", where="simulation")
        for layer, counts in hw.spike_counts.items():
            theirs = other.spike_counts.get(layer)
            if theirs is None or not np.array_equal(counts, theirs):
                i = 0 if theirs is None else int(np.flatnonzero(counts != theirs)[0])
                raise DeployError(f"layer {layer!r} spikes {int(counts[i])} times on test "
                                  f"sample {i} in the simulated core, "
                                  f"{'?' if theirs is None else int(theirs[i])} times in "
                                  f"{name}", where=f"node {layer!r}")


def _widths(plan) -> dict[str, int]:
    w = plan.widths
    return {"weight": w.weight, "input": w.input, "accumulator": w.acc, "current": w.current,
            "membrane": w.potential, "pre_reset": w.pre_reset, "threshold": w.threshold,
            "bias": w.bias, "logit": w.logit, "spike_counter": w.count, "cycle_counter": w.cycles,
            "conv_datapath": w.conv if plan.conv_layers else None}


def _layer(lp) -> dict[str, Any]:
    b = lp.bounds
    out = {"name": lp.name, "kind": lp.kind, "inputs": lp.c_in, "neurons": lp.c_out,
           "groups": lp.groups, "neuron": lp.has_neuron, "shift": lp.shift,
           "leak_shift": lp.leak_shift, "reset": lp.reset if lp.has_neuron else None,
           "bounds": {"accumulator": list(b.acc), "current": list(b.current),
                      "membrane": list(b.potential), "pre_reset": list(b.pre_reset)}}
    if lp.conv is not None:
        g = lp.conv
        out["conv"] = {"in": [g.c_in, g.h_in, g.w_in], "out": [g.c_out, g.h_out, g.w_out],
                       "kernel": g.k, "stride": g.stride, "padding": g.padding,
                       "pool": g.pool, "membrane_words": lp.membrane_words,
                       "weight_words": lp.weight_words}
        out["bounds"]["stored"] = list(b.stored)
    return out


_STAT_RE = re.compile(r"^\s+(\d+)\s+(\$?[A-Za-z_][\w$]*)\s*$")


def _yosys_cells(log: Path) -> dict[str, int]:
    """Cell counts of the last ``stat`` in a yosys log."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    block = text.rsplit("Printing statistics", 1)[-1]
    cells: dict[str, int] = {}
    for line in block.splitlines():
        match = _STAT_RE.match(line)
        if match and match.group(2)[0].isupper():  # cells, not "wires" or "ports"
            cells[match.group(2)] = int(match.group(1))
    return cells


def _resources(target: Target, pnr: dict[str, dict[str, int]], cells: dict[str, int]
               ) -> dict[str, dict[str, int]]:
    """LUT/FF/BRAM/DSP used and available (iCE40: LUT and FF from yosys, the rest from
    nextpnr, whose logic cell ``LC`` is one LUT4 with its flip-flop)."""
    out = dict(pnr)
    if target.family == "ice40":
        out["LUT"] = {"used": cells.get("SB_LUT4", 0), "available": target.luts}
        out["FF"] = {"used": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
                     "available": target.ffs}
    return out


def _timing_and_energy(target: Target, cycles: np.ndarray, fmax: float,
                       logic_cells: int | None) -> dict[str, Any]:
    power = target.power
    if fmax > 0:
        f_mhz = float(np.floor(fmax * 10) / 10)
        clock_note = "Fmax from nextpnr, rounded down to 0.1 MHz"
    else:
        f_mhz = target.nominal_mhz
        clock_note = "no Fmax (synthesis skipped): the target's nominal clock"
    if logic_cells is None:
        logic_cells = target.luts
        cells_note = "logic cells unknown without place and route: the whole device counted"
    else:
        cells_note = "logic cells placed by nextpnr"
    watts = power.watts(f_mhz, int(logic_cells))
    mean_cycles = float(np.mean(cycles))
    latency_s = mean_cycles / (f_mhz * 1e6)
    energy_j = watts * latency_s
    return {"clock_mhz": f_mhz, "clock_note": clock_note,
            "latency_us": latency_s * 1e6, "inferences_per_s": 1.0 / latency_s,
            "power_w": watts, "power_mw": watts * 1e3,
            "energy_pj_per_inference": energy_j * 1e12,
            "energy_uj_per_inference": energy_j * 1e6,
            "energy": {"kind": "estimate", "power_model": power.name,
                       "model": power.as_dict(), "source": power.source,
                       "logic_cells": int(logic_cells), "logic_cells_note": cells_note,
                       "formula": "P(f, LC) x mean cycles / f"},
            "power_model": power.name, "source": power.source}


def _write_weight_words(plan, path: Path) -> None:
    digits = -(-plan.parallelism * plan.widths.weight // 4)
    path.write_text("".join(f"{w:0{digits}x}\n" for w in plan.weight_init()), encoding="utf-8")


def _summary(report: dict[str, Any]) -> str:
    res = report.get("resources") or {}
    parts = [f"{k} {v['used']}/{v['available']}" for k, v in res.items()
             if k in ("LUT", "FF", "LC", "BRAM", "SPRAM", "DSP")]
    return (f"{report['target']}: {', '.join(parts) or 'not synthesised'}; "
            f"Fmax {report['fmax_mhz']:.1f} MHz; {report['cycles_per_inference']['mean']:.0f} "
            f"cycles/inference -> {report['latency_us']:.1f} us, "
            f"{report['energy_uj_per_inference']:.3f} uJ/inference (estimate, "
            f"{report['power_model']})")
