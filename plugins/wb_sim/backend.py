"""The ``wb_sim.simulator`` backend: convert, golden-check, then stream the test set.

``deploy`` converts the trained network to integers, saves ``network.npz`` and checks the three
ways of running it against each other on the test samples: the event-driven simulator, our
dense torch integer inference (they must agree bit for bit) and the float model (the integer
network should predict nearly the same). ``run`` streams the test samples through the saved
network a few at a time and reports live energy, an estimate from the counted events.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import numpy as np
import torch

from wb_sim.convert import check, encoded_spikes, input_scale_for, stored_inputs, to_integer
from wb_sim.ir import IntegerNetwork
from wb_sim.reference import torch_integer_forward
from wb_sim.simulate import SimResult, energy_pj, int8_table, iter_simulate, simulate
from wb_sim.ttfs_convert import check_ttfs, input_times, is_firing_time_network, to_ttfs
from wb_sim.ttfs_ir import TTFSNetwork, load_network
from wb_sim.ttfs_reference import torch_ttfs_forward
from wb_sim.ttfs_simulate import iter_simulate_ttfs, simulate_ttfs
from workbench.pluginhost import (
    DeployContext,
    FitIssue,
    RunEvent,
    class_scores,
    earliest_spike,
    quantized_modules,
)

NETWORK_FILE = "network.npz"
_STEPS = ("converting to integers", "saving network.npz", "simulating (event-driven)",
          "torch integer reference", "float model", "comparing")


class SimBackend:
    """The integer event-driven simulator as a deployment target."""

    def __init__(self, weight_bits: int = 8, frac_bits: int = 8, input_bits: int = 8,
                 chunk: int = 64, time_bits: int = 8) -> None:
        self.weight_bits = int(weight_bits)
        self.frac_bits = int(frac_bits)
        self.input_bits = int(input_bits)
        self.chunk = int(chunk)
        self.time_bits = int(time_bits)

    def targets(self) -> dict[str, str]:
        return {"cpu": "integer event-driven simulator (numpy)"}

    def check(self, ctx: DeployContext) -> list[FitIssue]:
        if is_firing_time_network(ctx.model):
            return check_ttfs(ctx.model) + _readout_issues(ctx)
        issues = check(ctx.model)
        if takes_encoder_spikes(ctx):
            return issues  # the encoder's spikes are the input: no range to clip
        encoder = ctx.project.encoder.id
        if encoder != "wb_core.direct":
            issues.append(FitIssue("", f"the encoder is {encoder}, which makes neither spikes "
                                       "nor a static input; the integer network takes the "
                                       "encoder's spikes (-1, 0, 1) or a static input repeated "
                                       "at every step (wb_core.direct)"))
        train = ctx.data.train
        if len(train) and float(np.min(stored_inputs(train))) * train.scale + train.offset < 0:
            issues.append(FitIssue("", "some inputs are negative; the integer input is unsigned "
                                       "and clips them to 0", severity="warning"))
        return issues

    # -- deploy ----------------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        if is_firing_time_network(ctx.model):
            return (yield from self._deploy_ttfs(ctx))
        total = len(_STEPS)
        yield ctx.progress(0, total, _STEPS[0])
        spiking = takes_encoder_spikes(ctx)
        input_scale = 1.0 if spiking else input_scale_for(ctx.data.train, self.input_bits)
        net = to_integer(ctx.model, time_steps=ctx.time_steps, input_scale=input_scale,
                         input_bits=self.input_bits, weight_bits=self.weight_bits,
                         frac_bits=self.frac_bits, name=ctx.project.name,
                         input_kind="spikes" if spiking else "static")
        quantized = sorted(quantized_modules(ctx.model))
        for note in net.notes:
            yield ctx.log(note)
        ctx.check_cancel()
        yield ctx.progress(1, total, _STEPS[1])
        path = net.save(ctx.out_dir / NETWORK_FILE)
        yield ctx.progress(2, total, _STEPS[2])
        x, y = ctx.test_arrays()
        x_int = network_input(net, ctx, x)
        started = time.perf_counter()
        sim = simulate(net, x_int)
        sim_seconds = time.perf_counter() - started
        ctx.check_cancel()
        yield ctx.progress(3, total, _STEPS[3])
        ref = torch_integer_forward(net, x_int)
        ctx.check_cancel()
        yield ctx.progress(4, total, _STEPS[4])
        with torch.no_grad():
            out = ctx.model(ctx.encode(torch.from_numpy(np.ascontiguousarray(x))))
        float_pred = class_scores(out).argmax(-1).numpy()
        yield ctx.progress(5, total, _STEPS[5])
        measured = _measured(ctx, sim, ref, y, float_pred, sim_seconds)
        if not measured["golden"]["bit_exact"]:
            yield ctx.log("wb_sim and the torch integer reference disagree: "
                          f"{measured['golden']}; this is a bug in wb_sim, please report it",
                          "error")
        report = {
            "network": str(path),
            "time_steps": net.time_steps,
            "input_scale": net.input_scale,
            "input_bits": net.input_bits,
            "input_kind": net.input_kind,
            "frac_bits": self.frac_bits,
            "weight_bits": {layer.name: layer.weight_bits for layer in net.layers},
            "quantized_layers": quantized,
            "layers": [_describe(layer) for layer in net.layers],
            "notes": list(net.notes),
            **measured,
        }
        golden = measured["golden"]
        yield ctx.log(f"integer accuracy {report['accuracy']['integer']:.4f}, float "
                      f"{report['accuracy']['float']:.4f}; bit-exact with the torch integer "
                      f"reference: {golden['bit_exact']}")
        yield ctx.progress(total, total, "done")
        return report

    def _deploy_ttfs(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        """A firing-time network: integer ticks, a priority queue of spikes per layer, checked
        against the dense closed form (docs/sim.md)."""
        total = len(_STEPS)
        yield ctx.progress(0, total, _STEPS[0])
        net = to_ttfs(ctx.model, time_bits=self.time_bits, weight_bits=self.weight_bits,
                      name=ctx.project.name)
        for note in net.notes:
            yield ctx.log(note)
        ctx.check_cancel()
        yield ctx.progress(1, total, _STEPS[1])
        path = net.save(ctx.out_dir / NETWORK_FILE)
        yield ctx.progress(2, total, _STEPS[2])
        x, y = ctx.test_arrays()
        ticks = input_times(net, ctx.encode, x)
        parts = []
        seconds = 0.0
        chunks = iter_simulate_ttfs(net, ticks, chunk=max(self.chunk, 32))
        while True:
            ctx.check_cancel()  # tens of samples per second: cancel between chunks
            started = time.perf_counter()
            part = next(chunks, None)
            seconds += time.perf_counter() - started
            if part is None:
                break
            parts.append(part)
        sim = SimResult.concat(parts) if parts else simulate_ttfs(net, ticks)
        yield ctx.progress(3, total, _STEPS[3])
        ref = torch_ttfs_forward(net, ticks)
        ctx.check_cancel()
        yield ctx.progress(4, total, _STEPS[4])
        with torch.no_grad():
            out = ctx.model(ctx.encode(torch.from_numpy(np.ascontiguousarray(x))))
        float_pred = earliest_spike(out).argmax(-1).numpy()
        yield ctx.progress(5, total, _STEPS[5])
        measured = _measured(ctx, sim, ref, y, float_pred, seconds)
        if not measured["golden"]["bit_exact"]:
            yield ctx.log("wb_sim and the torch closed-form reference disagree: "
                          f"{measured['golden']}; this is a bug in wb_sim, please report it",
                          "error")
        report = {
            "network": str(path),
            "kind": "time-to-first-spike",
            "time_bits": net.time_bits,
            "horizon_ticks": net.horizon,
            "weight_bits": {layer.name: layer.weight_bits for layer in net.layers},
            "layers": [{"name": layer.name, "kind": layer.kind,
                        "weight_shape": list(layer.weight.shape),
                        "weight_bits": layer.weight_bits,
                        "threshold_range": [int(layer.threshold.min()),
                                            int(layer.threshold.max())]}
                       for layer in net.layers],
            "notes": list(net.notes),
            **measured,
        }
        golden = measured["golden"]
        yield ctx.log(f"integer accuracy {report['accuracy']['integer']:.4f}, float "
                      f"{report['accuracy']['float']:.4f}; bit-exact with the torch closed-form "
                      f"reference: {golden['bit_exact']}")
        yield ctx.progress(total, total, "done")
        return report

    # -- run -------------------------------------------------------------------------------
    def run(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        net = load_network(ctx.out_dir / NETWORK_FILE)
        table = int8_table(ctx.session.lookup)
        source = f"wb_sim event counts × INT8 45 nm ({table.source})"
        x, y = ctx.test_arrays()
        if isinstance(net, TTFSNetwork):
            chunks = iter_simulate_ttfs(net, input_times(net, ctx.encode, x), chunk=self.chunk)
        else:
            chunks = iter_simulate(net, network_input(net, ctx, x), chunk=self.chunk)
        correct = 0
        seconds = 0.0
        energies: list[float] = []
        done = 0
        while True:
            ctx.check_cancel()
            started = time.perf_counter()
            result = next(chunks, None)
            seconds += time.perf_counter() - started
            if result is None:
                break
            hits = result.predictions == y[done:done + len(result)]
            done += len(result)
            correct += int(hits.sum())
            pj = energy_pj(result, table)
            energies.extend(pj.tolist())
            yield ctx.live_energy(pj.tolist(), hits.tolist(), kind="estimate", source=source)
        return {"accuracy": correct / max(done, 1), "samples": done,
                "mean_pj": float(np.mean(energies)) if energies else 0.0,
                "samples_per_s": done / seconds if seconds > 0 else None,
                "kind": "estimate", "source": source}


def firing_time_refusal(ctx: DeployContext, why: str) -> list[FitIssue]:
    """One issue naming the first node that takes firing times (a time-to-first-spike layer:
    it declares ``spike_events``), saying ``why`` the backend cannot run it; [] otherwise. One
    line, not one per layer and a confused message about the encoder."""
    for node in ctx.model.order:
        if any(callable(getattr(m, "spike_events", None))
               for m in ctx.model.layers[node].modules()):
            return [FitIssue(node, f"a time-to-first-spike layer (it passes one firing time "
                                   f"per neuron): {why}")]
    return []


def _readout_issues(ctx: DeployContext) -> list[FitIssue]:
    """The integer firing-time network predicts by the earliest output spike: say so when the
    project's learning rule reads its outputs another way."""
    rule = ctx.session.lookup.get(ctx.project.training.rule.id)
    resolve = getattr(rule, "resolve_readout", None)
    if resolve is None or resolve() is earliest_spike:
        return []
    return [FitIssue(ctx.model.order[-1] if ctx.model.order else "",
                     f"the learning rule {rule.id} reads the outputs another way than the "
                     "earliest spike, which is how the integer network predicts: its accuracy "
                     "will differ from the rule's", severity="warning")]


def takes_encoder_spikes(ctx: DeployContext) -> bool:
    """Whether the project's encoder makes spikes (then the integer network takes them)."""
    if ctx.project.encoder.id == "wb_core.direct":
        # direct encoding repeats the sample itself: taken once as the static input (its
        # multiplies done once), even when the sample's values happen to be 0 and 1
        return False
    train = ctx.data.train
    if not len(train):
        return False
    x, _ = next(iter(train.batches(1, limit=1)))
    return encoded_spikes(ctx.encode, x.numpy()) is not None


def network_input(net: IntegerNetwork, ctx: DeployContext, x: np.ndarray) -> np.ndarray:
    """What ``net`` takes for the real-valued samples ``x``: the encoder's spikes
    ``[B, T, ...]`` (made here, on the host) or the quantised static input."""
    if net.input_kind != "spikes":
        return net.quantize_input(x)
    spikes = encoded_spikes(ctx.encode, x)
    if spikes is None:
        raise ctx.fail("the network takes the encoder's spikes, but the encoder now makes "
                       "other values; deploy again")
    return spikes


def _measured(ctx: DeployContext, sim: SimResult, ref: SimResult, y: np.ndarray,
              float_pred: np.ndarray, seconds: float) -> dict[str, Any]:
    """What every deployment reports of its run: the golden check, the accuracies, the work
    per sample and its energy estimate, and the simulator's speed."""
    table = int8_table(ctx.session.lookup)
    energy = energy_pj(sim, table)
    n = max(len(y), 1)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(y) else 0.0

    return {
        "samples": len(y),
        "golden": _agreement(sim, ref),
        "accuracy": {
            "integer": float(np.sum(sim.predictions == y)) / n,
            "float": float(np.sum(float_pred == y)) / n,
            "integer_vs_float_agreement": float(np.sum(sim.predictions == float_pred)) / n,
        },
        "ops_per_sample": {"dense_macs": mean(sim.dense_macs),
                           "synaptic_events": mean(sim.synaptic_events),
                           "neuron_updates": mean(sim.neuron_updates)},
        "spikes_per_sample": {k: mean(v) for k, v in sim.spike_counts.items()},
        "energy": {"kind": "estimate", "pj_per_sample": mean(energy),
                   "power_model": f"wb_sim event counts × {table.id}", "source": table.source},
        "samples_per_s": len(y) / seconds if seconds > 0 else None,
    }


def _agreement(sim, ref) -> dict[str, Any]:
    n = max(len(sim), 1)
    same_counts = all(np.array_equal(sim.spike_counts[k], ref.spike_counts[k])
                      for k in sim.spike_counts) and set(sim.spike_counts) == set(ref.spike_counts)
    result = {
        "samples": len(sim),
        "predictions_equal": float(np.sum(sim.predictions == ref.predictions)) / n,
        "logits_equal": bool(np.array_equal(sim.logits, ref.logits)),
        "spike_counts_equal": bool(same_counts),
        "events_equal": bool(np.array_equal(sim.synaptic_events, ref.synaptic_events)
                             and np.array_equal(sim.dense_macs, ref.dense_macs)),
    }
    result["bit_exact"] = bool(result["predictions_equal"] == 1.0 and result["logits_equal"]
                               and same_counts and result["events_equal"])
    return result


def _describe(layer) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": layer.name, "kind": layer.kind,
                             "weight_shape": list(layer.weight.shape),
                             "weight_bits": layer.weight_bits, "shift": layer.shift,
                             "pool": layer.pool}
    if layer.neuron is not None:
        entry.update(leak_shift=layer.neuron.leak_shift, reset=layer.neuron.reset,
                     threshold_range=[int(layer.neuron.threshold.min()),
                                      int(layer.neuron.threshold.max())])
    return entry
