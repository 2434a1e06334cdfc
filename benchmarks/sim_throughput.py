"""Integer inference throughput: wb_sim against dense torch and Brian2, and where each wins.

Part 1 trains the ``digits_mlp`` example (LIF 64-256-256-10, T = 4) for a few epochs, converts it
to integers (8-bit weights, ``wb_sim.convert.to_integer``) and runs the same test samples
through:

- ``wb_sim``: the event-driven integer simulator (numpy + scipy's CSR product), on the whole
  batch at once and streamed in the backend's default chunks (``iter_simulate``);
- ``torch float``: the trained float model (``CompiledNetwork``, dense float32);
- ``torch integer``: the dense integer reference ``wb_sim.reference.torch_integer_forward``;
- ``Brian2``: the same integer LIF equations written as Brian2 ``NeuronGroup``s (one neuron per
  sample and unit) and ``Synapses`` whose ``on_pre`` adds the integer weight to an accumulator,
  with the ``numpy`` and the compiled ``cython`` code-generation targets. Every value is an
  integer held exactly in float64; the leak ``V >> k`` is ``floor(V / 2**k)``. The objects are
  ordered inside each time step so a layer's spikes reach the next layer in the same step, as
  in wb_sim.

Every engine is timed over ``--rounds`` runs after a warm-up (a run of a quick engine repeats
its call until it lasts about 0.1 s, and the engines take turns); the table gives the median
samples/s and the range (slowest to fastest run). Brian2 is timed on ``run()`` alone: each
chunk of ``--brian-chunk`` samples (chunks bound the memory its per-sample synapses take) is
built once, run for zero time to generate and compile its code, stored, and then restored
before each timed run; construction and code generation are reported apart. Each ``run()``
call also costs Brian2 a fixed time before its first step, which dominates at T = 4; the
"steps only" rows leave it out (a run ``LONG_RUN`` times as long, less a zero-length run,
divided by ``LONG_RUN``). The script checks that Brian2's logits, predictions and spike counts
equal wb_sim's.

Part 2 sweeps the firing rate and the layer width: the same architecture with hidden layers
of ``--widths`` neurons, untrained (seed 0), converted the same way; the hidden thresholds are
scaled (bisection on a common factor) until the hidden neurons fire about ``--rates`` spikes per
neuron per step on the test samples. It prints wb_sim's time per batch against dense torch
(float and integer, whose work does not depend on the firing rate) and the speed ratio.

    OMP_NUM_THREADS=1 python benchmarks/sim_throughput.py [--rounds 5] [--json]

Brian2 2.9.0 does not import with NumPy >= 2.4 (it wraps ``ndarray.ptp``, which NumPy removed;
fixed upstream in brian-team/brian2#1705). When that is the case, this script applies the same
one-line fix to Brian2's source as it is imported; nothing on disk changes.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np


# -- Brian2 ------------------------------------------------------------------------------------
class _PtpFix(importlib.abc.MetaPathFinder):
    """Load ``brian2.units.fundamentalunits`` with ``np.ndarray.ptp`` read as ``np.ptp``."""

    TARGET = "brian2.units.fundamentalunits"

    def find_spec(self, name, path, target=None):
        if name != self.TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.origin is None:
            return None

        class Loader(importlib.machinery.SourceFileLoader):
            def get_code(self, fullname):
                source = self.get_data(self.path).replace(b"np.ndarray.ptp", b"np.ptp")
                return compile(source, self.path, "exec")

        spec.loader = Loader(name, spec.origin)
        return spec


def import_brian2():
    if not hasattr(np.ndarray, "ptp"):
        sys.meta_path.insert(0, _PtpFix())
    import brian2

    return brian2


def brian2_build(b2, net, x_int: np.ndarray):
    """``net`` on the samples ``x_int`` as a Brian2 ``Network``, its code generated (a
    zero-length run) and its state stored; returns (network, read-out group, spike monitors)."""
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    batch = x_int.shape[0]
    x = x_int.reshape(batch, -1).astype(np.float64)
    objects = []
    # The input: every non-zero pixel "spikes" at every step and adds w * x to layer 1.
    source = b2.NeuronGroup(x.size, "x : 1 (constant)", threshold="x > 0", reset="",
                           name="inp")
    source.x = x.reshape(-1)
    _schedule(source, 1)
    objects.append(source)
    monitors = {}
    weighted = True
    readout_group = None
    for index, layer in enumerate(net.layers):
        order = 10 * (index + 1)
        width = layer.weight.shape[0]
        readout = layer.neuron is None
        equations = "acc : 1\nbias : 1 (constant)\n" + ("logit : 1" if readout else
                                                        "v : 1\nthr : 1 (constant)")
        if readout:
            group = readout_group = b2.NeuronGroup(batch * width, equations, name=f"l{index}")
            update = f"logit += acc * {2 ** layer.shift}.0 + bias\nacc = 0"
        else:
            reset = "v = 0" if layer.neuron.reset == "hard" else "v -= thr"
            group = b2.NeuronGroup(batch * width, equations, threshold="v >= thr", reset=reset,
                                   name=f"l{index}")
            k = layer.neuron.leak_shift
            leak = "v" if k is None else f"v - floor(v / {2 ** k}.0)"
            update = f"v = {leak} + acc * {2 ** layer.shift}.0 + bias\nacc = 0"
            group.thr = np.tile(layer.neuron.threshold.astype(np.float64), batch)
            monitors[layer.name] = b2.SpikeMonitor(group, record=False, name=f"m{index}")
            _schedule(group, order + 2)
        group.bias = np.tile(layer.bias.astype(np.float64), batch)
        fan_in = layer.weight.shape[1]
        synapses = b2.Synapses(source, group, "w : 1 (constant)", name=f"s{index}",
                               on_pre="acc_post += w * x_pre" if weighted else "acc_post += w")
        pre, post = _all_to_all(batch, fan_in, width)
        synapses.connect(i=pre, j=post)
        i, j = np.asarray(synapses.i[:]), np.asarray(synapses.j[:])
        synapses.w = layer.weight[j % width, i % fan_in].astype(np.float64)
        synapses.pre.when, synapses.pre.order = "groups", order
        regular = group.run_regularly(update, when="groups", order=order + 1,
                                      name=f"u{index}")
        objects += [group, synapses, regular]
        source, weighted = group, False
    objects += list(monitors.values())
    network = b2.Network(objects)
    # A zero-length run generates (and for cython compiles) the code, so the timed runs are
    # the simulation itself (a fairer figure for Brian2 than one that includes code generation).
    network.run(0 * b2.ms, namespace={})
    network.store()
    return network, readout_group, monitors


#: Brian2's time steps alone are timed on a run this many times as long, less a zero-length
#: run: at T = 4 the steps of the compiled target take less time than one run() call's fixed
#: cost varies by.
LONG_RUN = 5


def brian2_rounds(b2, target: str, net, x_int: np.ndarray, chunk: int, rounds: int
                  ) -> tuple[dict, float, dict[str, list[float]]]:
    """Brian2 with code-generation ``target`` on all of ``x_int``, ``chunk`` samples per
    network: (the result of the last run, seconds to build, seconds per round over all chunks
    of: ``run`` (T steps), ``fixed`` (a zero-length run: the fixed cost of a call) and
    ``steps`` (the steps of a ``LONG_RUN`` times longer run, divided by ``LONG_RUN``))."""
    b2.prefs.codegen.target = target
    batch = x_int.shape[0]
    built, parts = 0.0, []
    seconds = {kind: [0.0] * rounds for kind in ("fixed", "long", "run")}
    for start in range(0, batch, chunk):
        started = time.perf_counter()
        network, readout, monitors = brian2_build(b2, net, x_int[start:start + chunk])
        built += time.perf_counter() - started
        for r in range(rounds):
            # the T-step run last: its logits and spike counts are the result
            for kind, steps in (("fixed", 0), ("long", LONG_RUN * net.time_steps),
                                ("run", net.time_steps)):
                network.restore()
                started = time.perf_counter()
                network.run(steps * b2.defaultclock.dt, namespace={})
                seconds[kind][r] += time.perf_counter() - started
        part = len(x_int[start:start + chunk])
        logits = np.rint(np.asarray(readout.logit[:])).astype(np.int64).reshape(part, -1)
        # SpikeMonitor counts per neuron; neurons are numbered sample-major.
        counts = {name: np.asarray(m.count[:]).reshape(part, -1).sum(axis=1).astype(np.int64)
                  for name, m in monitors.items()}
        parts.append((logits, counts))
    logits = np.concatenate([p[0] for p in parts])
    counts = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    seconds["steps"] = [(long - fixed) / LONG_RUN
                        for long, fixed in zip(seconds.pop("long"), seconds["fixed"])]
    return ({"logits": logits, "predictions": np.argmax(logits, axis=1), "spike_counts": counts},
            built, seconds)


def _schedule(group, order: int) -> None:
    """Threshold and reset of ``group`` run right after its update, inside the 'groups' slot."""
    for obj in list(group.thresholder.values()) + list(group.resetter.values()):
        obj.when, obj.order = "groups", order
        order += 1


def _all_to_all(batch: int, fan_in: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense connections inside each sample: pre ``b*fan_in + i`` -> post ``b*width + c``."""
    b = np.arange(batch)[:, None, None]
    pre = (b * fan_in + np.arange(fan_in)[None, :, None]) + 0 * np.arange(width)[None, None, :]
    post = (b * width + np.arange(width)[None, None, :]) + 0 * pre
    return pre.reshape(-1), post.reshape(-1)


# -- timing ----------------------------------------------------------------------------------
def run_times(engines: dict[str, Callable[[], object]], rounds: int,
              least: float = 0.1) -> dict[str, list[float]]:
    """Seconds per call of each engine in each of ``rounds`` rounds, after one warm-up call.
    A round repeats a quick call until it lasts about ``least`` seconds, so that the timer and
    a moment's load matter less; the engines take turns within a round, so that a change in
    the machine's load hits them alike."""
    repeats = {}
    for name, fn in engines.items():
        started = time.perf_counter()
        fn()
        repeats[name] = max(1, round(least / max(time.perf_counter() - started, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, fn in engines.items():
            started = time.perf_counter()
            for _ in range(repeats[name]):
                fn()
            times[name].append((time.perf_counter() - started) / repeats[name])
    return times


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def rates(samples: int, seconds: list[float]) -> dict[str, float]:
    """Samples per second: the median run and the range from the slowest to the fastest."""
    return spread([samples / s for s in seconds])


# -- part 1: the trained digits MLP -----------------------------------------------------------
def digits_session(args):
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.pluginhost.manager import load_plugins

    project = load_project(examples_dir() / "digits_mlp")
    project.folder = None  # never write into the example
    project.compute.threads = args.threads  # the run sets torch's threads from the project
    return Session(project, load_plugins().registry)


def float_runner(session, model, x):
    import torch

    from workbench.core.model.readout import class_scores

    encode = session.encoder()

    def run():
        with torch.no_grad():
            return class_scores(model(encode(x))).argmax(-1).numpy()

    return run


def hidden_rate(net, result) -> float:
    """Spikes per hidden neuron per step, over the batch."""
    neurons = sum(int(np.prod(layer.out_shape)) for layer in net.layers if layer.neuron)
    spikes = sum(int(c.sum()) for c in result.spike_counts.values())
    return spikes / (neurons * net.time_steps * len(result))


def default_chunk() -> int:
    """The ``chunk`` the ``wb_sim.simulator`` backend streams with by default."""
    import wb_sim

    spec = wb_sim.wb_backends()[0]
    return int(next(p.default for p in spec.params if p.name == "chunk"))


def part_digits(args, session) -> dict:
    from wb_sim.convert import input_scale_for, to_integer
    from wb_sim.reference import torch_integer_forward
    from wb_sim.simulate import iter_simulate, simulate

    finished = session.train(epochs=args.epochs, fresh=True).result()
    if finished.status != "ok":
        raise SystemExit(f"training failed: {finished.error}")
    model = session.model
    model.eval()
    data = session.data()
    x, y = next(data.test.batches(args.samples))
    y = y.numpy()
    net = to_integer(model, time_steps=session.project.time_steps,
                     input_scale=input_scale_for(data.train), weight_bits=8)
    x_int = net.quantize_input(x.numpy())
    n, chunk = len(y), default_chunk()
    run_float = float_runner(session, model, x)
    sim = simulate(net, x_int)
    ref = torch_integer_forward(net, x_int)
    engines = {
        "wb_sim (one batch)": lambda: simulate(net, x_int),
        f"wb_sim (chunks of {chunk})": lambda: list(iter_simulate(net, x_int, chunk=chunk)),
        "torch float": run_float,
        "torch integer": lambda: torch_integer_forward(net, x_int),
    }
    speed = {name: rates(n, t) for name, t in run_times(engines, args.rounds).items()}
    accuracy = {name: float(np.mean(sim.predictions == y)) for name in engines if "wb_sim" in name}
    accuracy["torch float"] = float(np.mean(run_float() == y))
    accuracy["torch integer"] = float(np.mean(ref.predictions == y))
    agreement = {
        "torch_integer_bit_exact": bool(np.array_equal(ref.logits, sim.logits)
                                        and np.array_equal(ref.predictions, sim.predictions)),
        "float_vs_integer_predictions_equal": float(np.mean(run_float() == sim.predictions)),
    }
    brian: dict = {"version": None, "build_s": {}, "fixed_s_per_run_call": {}, "failed": {}}
    try:
        b2 = import_brian2()
        brian["version"] = b2.__version__
    except Exception as exc:  # noqa: BLE001 - a missing or broken peer is reported, not fatal
        brian["failed"]["import"] = f"{type(exc).__name__}: {exc}"
        b2 = None
    for target in ("numpy", "cython") if b2 is not None else ():
        name = f"Brian2 ({target})"
        try:
            out, built, seconds = brian2_rounds(b2, target, net, x_int, args.brian_chunk,
                                                args.rounds)
        except Exception as exc:  # noqa: BLE001 - e.g. no C compiler for the cython target
            brian["failed"][target] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            continue
        speed[name] = rates(n, seconds["run"])
        speed[f"{name}, steps only"] = rates(n, seconds["steps"])
        brian["build_s"][target] = built
        calls = -(-n // args.brian_chunk)  # one network and one run() per chunk
        brian["fixed_s_per_run_call"][target] = statistics.median(seconds["fixed"]) / calls
        accuracy[name] = accuracy[f"{name}, steps only"] = float(np.mean(out["predictions"] == y))
        agreement[f"brian2_{target}_equals_wb_sim"] = bool(
            np.array_equal(out["logits"], sim.logits)
            and np.array_equal(out["predictions"], sim.predictions)
            and all(np.array_equal(out["spike_counts"][k], sim.spike_counts[k])
                    for k in sim.spike_counts))
    return {"samples": n, "time_steps": net.time_steps, "epochs": args.epochs, "chunk": chunk,
            "hidden_spikes_per_neuron_step": hidden_rate(net, sim),
            "samples_per_s": speed, "accuracy": accuracy, "agreement": agreement,
            "brian2": brian}


def print_digits(result: dict, args) -> None:
    speed = result["samples_per_s"]
    ours = speed["wb_sim (one batch)"]["median"]
    print(f"digits_mlp (LIF 64-256-256-10), {result['epochs']} epochs, T = "
          f"{result['time_steps']}, {result['samples']} test samples, 8-bit weights; torch "
          f"threads {args.threads}; {args.rounds} runs each")
    print(f"hidden layers: {result['hidden_spikes_per_neuron_step']:.3f} spikes per neuron "
          "per step")
    print(f"{'engine':<24}{'samples/s':>11}  {'range (runs)':<17}{'wb_sim ×':>9}"
          f"{'accuracy':>10}")
    for name, r in speed.items():
        span = f"{r['min']:.0f}–{r['max']:.0f}"
        print(f"{name:<24}{r['median']:>11.0f}  {span:<17}{ours / r['median']:>9.2f}"
              f"{100 * result['accuracy'][name]:>9.2f}%")
    print("wb_sim × = wb_sim's median samples/s (one batch) / this engine's median; steps "
          f"only = without the fixed cost of each Brian2 run() call ({LONG_RUN}x longer run "
          f"less a zero-length run, / {LONG_RUN})")
    brian = result["brian2"]
    for target, seconds in brian["build_s"].items():
        print(f"Brian2 {brian['version']} ({target}): construction and code generation "
              f"{seconds:.1f} s (not in samples/s); each run() call costs "
              f"{brian['fixed_s_per_run_call'][target]:.2f} s before its first step "
              "(median zero-length run)")
    for target, why in brian["failed"].items():
        print(f"Brian2 ({target}) did not run: {why}")
    for key, value in result["agreement"].items():
        print(f"{key}: {value}")


# -- part 2: firing rate x width --------------------------------------------------------------
def scaled(net, factor: float):
    """A copy of ``net`` whose hidden thresholds are ``factor`` times as large (at least 1);
    the weight arrays are shared, so their tables are built once for every copy."""
    layers = [layer if layer.neuron is None else replace(layer, neuron=replace(
        layer.neuron, threshold=np.maximum(np.rint(layer.neuron.threshold * factor), 1)
        .astype(np.int64))) for layer in net.layers]
    return replace(net, layers=layers)


def calibrate(net, x_int, target: float, steps: int = 14):
    """The threshold factor (bisection on its logarithm) at which the hidden layers fire
    closest to ``target`` spikes per neuron per step on ``x_int``: (scaled net, its rate)."""
    from wb_sim.simulate import simulate

    low, high = -12.0, 12.0  # log2 of the factor: more threshold, fewer spikes
    best = None
    for _ in range(steps):
        mid = (low + high) / 2
        candidate = scaled(net, 2.0 ** mid)
        rate = hidden_rate(candidate, simulate(candidate, x_int))
        if best is None or abs(rate - target) < abs(best[1] - target):
            best = (candidate, rate)
        low, high = (mid, high) if rate > target else (low, mid)
    return best


def part_sweep(args, session) -> list[dict]:
    from wb_sim.convert import input_scale_for, to_integer
    from wb_sim.reference import torch_integer_forward
    from wb_sim.simulate import simulate

    data = session.data()
    x, _ = next(data.test.batches(args.sweep_samples))
    rows = []
    for width in args.widths:
        for node in ("hidden1", "hidden2"):
            session.project.graph.node(node).params["out_features"] = width
        model = session.build(load_saved_weights=False)
        model.eval()
        net = to_integer(model, time_steps=session.project.time_steps,
                         input_scale=input_scale_for(data.train), weight_bits=8)
        x_int = net.quantize_input(x.numpy())
        started = time.perf_counter()
        simulate(net, x_int[:1])  # the first call builds the weight tables
        first = time.perf_counter() - started
        engines = {"torch float": float_runner(session, model, x),
                   "torch integer": lambda n=net, xi=x_int: torch_integer_forward(n, xi)}
        seen = {}
        for target in args.rates:
            # calibrated on a few samples (quicker), the rate reported is the whole batch's
            tuned = calibrate(net, x_int[:32], target)[0]
            seen[target] = hidden_rate(tuned, simulate(tuned, x_int))
            engines[f"wb_sim {target}"] = lambda n=tuned, xi=x_int: simulate(n, xi)
        times = {name: spread(t) for name, t in run_times(engines, args.rounds).items()}
        for target in args.rates:
            rows.append({"width": width, "target_rate": target, "rate": seen[target],
                         "first_call_s": first, "wb_sim_s": times[f"wb_sim {target}"],
                         "torch float_s": times["torch float"],
                         "torch integer_s": times["torch integer"]})
    return rows


def print_sweep(rows: list[dict], args) -> None:
    print()
    print(f"firing rate x width: 64-W-W-10 LIF, untrained (seed 0), hidden thresholds scaled; "
          f"{args.sweep_samples} test samples, T = 4; ms per batch, median [range] of "
          f"{args.rounds} runs; speed = dense time / wb_sim time (> 1: wb_sim is faster)")
    print(f"{'width':>6}{'rate':>7}  {'wb_sim ms':<24}{'torch float ms':<24}"
          f"{'torch int ms':<24}{'vs float':>9}{'vs int':>8}")

    def cell(s):
        return f"{1e3 * s['median']:.1f} [{1e3 * s['min']:.1f}–{1e3 * s['max']:.1f}]"

    for row in rows:
        ours, fl, it = row["wb_sim_s"], row["torch float_s"], row["torch integer_s"]
        print(f"{row['width']:>6}{row['rate']:>7.3f}  {cell(ours):<24}{cell(fl):<24}"
              f"{cell(it):<24}{fl['median'] / ours['median']:>8.2f}x"
              f"{it['median'] / ours['median']:>7.2f}x")
    firsts = {row["width"]: row["first_call_s"] for row in rows}
    print("first call on 1 sample (builds the weight tables, once per network): "
          + ", ".join(f"W={w}: {1e3 * s:.0f} ms" for w, s in firsts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=360, help="test samples (<= 360)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per engine (>= 5)")
    parser.add_argument("--brian-chunk", type=int, default=90)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.3],
                        help="target spikes per hidden neuron per step")
    parser.add_argument("--sweep-samples", type=int, default=128)
    parser.add_argument("--no-sweep", action="store_true", help="part 1 only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.rounds < 5:
        parser.error("--rounds: at least 5, so that the median and range mean something")

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    session = digits_session(args)
    result = {"digits_mlp": part_digits(args, session), "threads": args.threads,
              "numpy_version": np.__version__, "torch_version": torch.__version__,
              "cpu_count": os.cpu_count()}
    if not args.json:
        print_digits(result["digits_mlp"], args)
    if not args.no_sweep:
        result["sweep"] = part_sweep(args, session)
        if not args.json:
            print_sweep(result["sweep"], args)
    result["seconds"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(result))
    else:
        print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
