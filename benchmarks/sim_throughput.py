"""Integer inference throughput: wb_sim against our torch inference and Brian2.

Trains the ``digits_mlp`` example (LIF 64-256-256-10, T = 4) for a few epochs, converts it to
integers (8-bit weights, ``wb_sim.convert.to_integer``) and runs the same test samples through:

- ``wb_sim``: the event-driven integer simulator (numpy + scipy's CSR product);
- ``torch float``: the trained float model (``CompiledNetwork``, dense float32);
- ``torch integer``: the dense integer reference ``wb_sim.reference.torch_integer_forward``;
- ``Brian2``: the same integer LIF equations written as Brian2 ``NeuronGroup``s (one neuron per
  sample and unit) and ``Synapses`` whose ``on_pre`` adds the integer weight to an accumulator,
  with the numpy code-generation target. Every value is an integer held exactly in float64;
  the leak ``V >> k`` is ``floor(V / 2**k)``. The objects are ordered inside each time step so
  a layer's spikes reach the next layer in the same step, as in wb_sim.

It prints samples/s for each, the ratios, and whether Brian2's logits, predictions and spike
counts agree with wb_sim's. Brian2 is timed on ``run()`` alone, after a zero-length run that
generates its code (construction and code generation are reported apart), in chunks of
``--brian-chunk`` samples to bound the memory its per-sample synapses take. The others report
the best of ``--rounds`` runs over all samples at once.

    python benchmarks/sim_throughput.py [--epochs 6] [--samples 360] [--json]

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
import sys
import time

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


def brian2_run(b2, net, x_int: np.ndarray) -> tuple[dict, float, float]:
    """Simulate ``net`` on ``x_int`` in Brian2; returns (result, build seconds, run seconds)."""
    started = time.perf_counter()
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
    # A zero-length run generates and compiles the code, so the timed run below is the
    # simulation itself (a fairer figure for Brian2 than one that includes code generation).
    network.run(0 * b2.ms, namespace={})
    built = time.perf_counter() - started
    started = time.perf_counter()
    network.run(net.time_steps * b2.defaultclock.dt, namespace={})
    ran = time.perf_counter() - started
    logits = np.rint(np.asarray(readout_group.logit[:])).astype(np.int64).reshape(batch, -1)
    # SpikeMonitor counts per neuron; neurons are numbered sample-major.
    counts = {name: np.asarray(m.count[:]).reshape(batch, -1).sum(axis=1).astype(np.int64)
              for name, m in monitors.items()}
    return {"logits": logits, "predictions": np.argmax(logits, axis=1),
            "spike_counts": counts}, built, ran


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


# -- the rest ----------------------------------------------------------------------------------
def best_rate(fn, samples: int, rounds: int) -> float:
    """Samples per second of the fastest of ``rounds`` calls (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return samples / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--samples", type=int, default=360, help="test samples (<= 360)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--brian-chunk", type=int, default=90)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from wb_sim.convert import input_scale_for, to_integer
    from wb_sim.reference import torch_integer_forward
    from wb_sim.simulate import simulate

    from workbench.core.model.readout import class_scores
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.pluginhost.manager import load_plugins

    project = load_project(examples_dir() / "digits_mlp")
    project.folder = None  # never write into the example
    project.compute.threads = args.threads  # the run sets torch's threads from the project
    session = Session(project, load_plugins().registry)
    finished = session.train(epochs=args.epochs, fresh=True).result()
    if finished.status != "ok":
        raise SystemExit(f"training failed: {finished.error}")
    model = session.model
    model.eval()
    data = session.data()
    x, y = next(data.test.batches(args.samples))
    y = y.numpy()
    net = to_integer(model, time_steps=project.time_steps,
                     input_scale=input_scale_for(data.train), weight_bits=8)
    x_int = net.quantize_input(x.numpy())
    n = len(y)
    encode = session.encoder()

    def run_float():
        with torch.no_grad():
            return class_scores(model(encode(x))).argmax(-1).numpy()

    sim = simulate(net, x_int)
    ref = torch_integer_forward(net, x_int)
    rates = {
        "wb_sim": best_rate(lambda: simulate(net, x_int), n, args.rounds),
        "torch float": best_rate(run_float, n, args.rounds),
        "torch integer": best_rate(lambda: torch_integer_forward(net, x_int), n, args.rounds),
    }
    b2 = import_brian2()
    b2.prefs.codegen.target = "numpy"
    parts, built, ran = [], 0.0, 0.0
    for start in range(0, n, args.brian_chunk):
        part, b, r = brian2_run(b2, net, x_int[start:start + args.brian_chunk])
        parts.append(part)
        built, ran = built + b, ran + r
    brian = {"logits": np.concatenate([p["logits"] for p in parts]),
             "predictions": np.concatenate([p["predictions"] for p in parts]),
             "spike_counts": {k: np.concatenate([p["spike_counts"][k] for p in parts])
                              for k in parts[0]["spike_counts"]}}
    rates["Brian2 (numpy)"] = n / ran
    accuracy = {"wb_sim": float(np.mean(sim.predictions == y)),
                "torch float": float(np.mean(run_float() == y)),
                "torch integer": float(np.mean(ref.predictions == y)),
                "Brian2 (numpy)": float(np.mean(brian["predictions"] == y))}
    agreement = {
        "brian2_predictions_equal": float(np.mean(brian["predictions"] == sim.predictions)),
        "brian2_logits_equal": bool(np.array_equal(brian["logits"], sim.logits)),
        "brian2_spike_counts_equal": all(np.array_equal(brian["spike_counts"][k],
                                                        sim.spike_counts[k])
                                         for k in sim.spike_counts),
        "torch_integer_bit_exact": bool(np.array_equal(ref.logits, sim.logits)
                                        and np.array_equal(ref.predictions, sim.predictions)),
        "float_vs_integer_predictions_equal": float(np.mean(run_float() == sim.predictions)),
    }
    result = {"samples": n, "time_steps": net.time_steps, "epochs": args.epochs,
              "threads": args.threads, "samples_per_s": rates, "accuracy": accuracy,
              "agreement": agreement, "brian2_build_s": built, "brian2_run_s": ran,
              "brian2_version": b2.__version__, "numpy_version": np.__version__,
              "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"digits_mlp (LIF 64-256-256-10), {args.epochs} epochs, T = {net.time_steps}, "
          f"{n} test samples, 8-bit weights; torch threads {args.threads}")
    print(f"{'engine':<18}{'samples/s':>12}{'wb_sim ×':>10}{'accuracy':>10}")
    for name, rate in rates.items():
        print(f"{name:<18}{rate:>12.1f}{rates['wb_sim'] / rate:>10.1f}"
              f"{100 * accuracy[name]:>9.2f}%")
    print(f"Brian2 {b2.__version__}: network construction {built:.1f} s (not in samples/s), "
          f"run {ran:.1f} s")
    for key, value in agreement.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
