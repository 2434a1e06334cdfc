"""Training throughput: snn-workbench's core against snnTorch and SpikingJelly, on CPU.

What is measured
----------------
Two networks are trained, in one process, with each framework in turn; each training step is
one full BPTT step on a fixed random batch (``torch.manual_seed(0)``, inputs uniform in
[0, 1], random labels), and the timed step includes everything a training loop does per batch:

    direct encoding (input repeated over T) -> forward over T steps -> logits averaged over T
    -> cross-entropy -> zero_grad -> backward -> Adam step (lr 1e-3)

Both networks run at T = 8, batch B = 128, float32, CPU:

- ``mlp``:  [B, 64] -> Linear(64, 256) -> LIF -> Linear(256, 256) -> LIF -> Linear(256, 10)
- ``conv``: [B, 1, 8, 8] -> Conv2d(1, 32, 3, pad 1) -> BatchNorm2d -> LIF -> MaxPool2d(2)
  -> Conv2d(32, 64, 3, pad 1) -> BatchNorm2d -> LIF -> MaxPool2d(2) -> Flatten -> Linear(256, 10)

Neuron: LIF, tau = 2 (decay 0.5), threshold 1.0, hard reset to 0, reset detached, sigmoid
surrogate with alpha (slope) 4 -- as close as each framework allows:

- snn-workbench: ``wb_core.lif`` defaults (``H = V + (X - V) / tau``, fires at ``H >= 1``), built
  as a graph of ``wb_core.*`` specs, compiled with ``compile_graph`` and trained with
  ``BPTTTrainer.train_step`` on ``DirectEncoder().encode(x, T)``. Stateless layers run once on
  ``[T*B, ...]``; the neuron runs the whole sequence as one autograd node.
- snnTorch: ``snn.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.sigmoid(slope=4),
  reset_mechanism="zero")``. Its LIF is ``U = beta * U + X`` (the input is not scaled by
  1/tau, i.e. twice ours for the same X), fires at ``U > 1``, and its zero-reset is always
  detached. Used the way its tutorials do: a Python loop over the T steps that calls every layer
  on ``[B, ...]`` at each step (so BatchNorm2d keeps statistics per step of B samples, where the
  other two normalise over T*B jointly; the arithmetic is the same).
- SpikingJelly (``spikingjelly.activation_based``): ``neuron.LIFNode(tau=2.0, v_threshold=1.0,
  v_reset=0.0, detach_reset=True, surrogate_function=surrogate.Sigmoid(alpha=4.0))`` with every
  layer in multi-step mode (``functional.set_step_mode(net, "m")``; stateless layers run on
  ``[T*B, ...]``, the LIF runs its fused multi-step CPU op) and ``functional.reset_net(net)``
  after each step. Same equation and firing rule as ours. SpikingJelly 2.0 has no ``backend=``
  argument; its CPU path is chosen automatically.

Timing: a few warm-up steps per model, then ``--rounds`` rounds (default 5); in each round every
framework trains for ``--seconds`` (default 0.6) of wall-clock time, the order rotating between
rounds (about 3 s per framework and network in all). samples/s = steps * B / elapsed; the best
round is reported, since other load on the machine only ever slows a round down (with every core
in use, a competing process can slow a round tenfold: OpenMP threads wait on a descheduled
peer). A warning goes to stderr when even the two best rounds of a row differ by more than 15%.

``ratio`` is ours / that framework (> 1: we are faster). ``rate`` is the mean spike rate of the
first LIF layer on the batch with the initial weights (every framework draws them from seed 0 in
the same layer order): a sanity check that the three run comparable dynamics. snn-workbench and
SpikingJelly agree exactly; snnTorch fires more, its input not being halved. In the MLP the
first layer fires rarely at initialisation (default Linear init gives pre-activations of std
~0.33 for inputs in [0, 1]); rates rise once training starts. The cost of every step is dense
tensor arithmetic, so throughput hardly depends on the rate.

Installing the peers
--------------------
Without their dependency lists, so that pip cannot replace the installed torch::

    pip install --no-deps snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3

(``loguru`` is the only extra runtime import that SpikingJelly 2.0.0 needs for the modules used
here; snnTorch 1.0.0 needs only torch and numpy.) A peer that fails to import or run is reported
in its row and the benchmark goes on.

Usage::

    python benchmarks/train_throughput.py [--seconds 1.0] [--rounds 3] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

T = 8
B = 128
LR = 1e-3
TAU, DECAY, V_TH, ALPHA = 2.0, 0.5, 1.0, 4.0
WARMUP_STEPS = 5
NETWORKS = ("mlp", "conv")
FRAMEWORKS = ("snn-workbench", "snntorch", "spikingjelly")
INPUT_SHAPES = {"mlp": (64,), "conv": (1, 8, 8)}
N_CLASSES = 10


class Runner:
    """One framework's model for one network: ``step()`` is one timed training step."""

    def __init__(self, step: Callable[[], float], neuron_modules: list[nn.Module],
                 rate_of: Callable[[object], torch.Tensor], forward: Callable[[], object]):
        self.step = step
        self.neuron_modules = neuron_modules  # first one is probed for the spike rate
        self.rate_of = rate_of  # module output -> spike tensor
        self.forward = forward  # one forward pass (no grad) for the spike-rate probe

    def spike_rate(self) -> float:
        seen: list[torch.Tensor] = []
        hook = self.neuron_modules[0].register_forward_hook(
            lambda _m, _i, out: seen.append(self.rate_of(out).detach()))
        try:
            with torch.no_grad():
                self.forward()
        finally:
            hook.remove()
        return float(torch.stack([s.float().mean() for s in seen]).mean())


def make_data(network: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, *INPUT_SHAPES[network], generator=g)
    y = torch.randint(0, N_CLASSES, (B,), generator=g)
    return x, y


# --------------------------------------------------------------------------- snn-workbench


def build_ours(network: str, x: torch.Tensor, y: torch.Tensor) -> Runner:
    from wb_core.encoders import DirectEncoder
    from wb_core.learning import BPTTTrainer
    from wb_core.neurons import SpikingNeuron

    from workbench.core.build.compile import compile_graph
    from workbench.core.model.graph import Graph, Node
    from workbench.pluginhost.manager import load_plugins

    lif = {"id": "wb_core.lif", "params": {"tau": TAU, "v_th": V_TH, "v_reset": 0.0,
                                           "reset": "hard", "detach_reset": True,
                                           "surrogate": "sigmoid", "surrogate_alpha": ALPHA}}
    if network == "mlp":
        nodes = [
            Node("fc1", "wb_core.spiking_linear",
                 {"out_features": 256, "batch_norm": False, "neuron": lif}),
            Node("fc2", "wb_core.spiking_linear",
                 {"out_features": 256, "batch_norm": False, "neuron": lif}),
            Node("out", "wb_core.linear", {"out_features": N_CLASSES}),
        ]
    else:
        conv = {"kernel_size": 3, "padding": 1, "batch_norm": True, "neuron": lif}
        nodes = [
            Node("conv1", "wb_core.spiking_conv", {"out_channels": 32, **conv}),
            Node("pool1", "wb_core.max_pool", {"kernel_size": 2}),
            Node("conv2", "wb_core.spiking_conv", {"out_channels": 64, **conv}),
            Node("pool2", "wb_core.max_pool", {"kernel_size": 2}),
            Node("flat", "wb_core.flatten"),
            Node("out", "wb_core.linear", {"out_features": N_CLASSES}),
        ]
    registry = load_plugins(strict=True).registry
    torch.manual_seed(0)
    model = compile_graph(Graph.chain(nodes), registry, INPUT_SHAPES[network])
    trainer = BPTTTrainer(model, epochs=1, steps_per_epoch=1, lr=LR, optimizer="adam",
                          schedule="constant")
    encoder = DirectEncoder()

    def step() -> float:
        return trainer.train_step(encoder.encode(x, T), y)["loss"]

    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    return Runner(step, neurons, lambda out: out, lambda: model(encoder.encode(x, T)))


# --------------------------------------------------------------------------- snnTorch


def build_snntorch(network: str, x: torch.Tensor, y: torch.Tensor) -> Runner:
    import snntorch as snn
    from snntorch import surrogate

    def leaky() -> nn.Module:
        return snn.Leaky(beta=DECAY, threshold=V_TH, spike_grad=surrogate.sigmoid(slope=ALPHA),
                         reset_mechanism="zero")

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(64, 256), leaky()
            self.fc2, self.lif2 = nn.Linear(256, 256), leaky()
            self.fc3 = nn.Linear(256, N_CLASSES)

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            out = []
            for _ in range(T):  # direct encoding: the same input at every step
                spk1, mem1 = self.lif1(self.fc1(inp), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(self.fc3(spk2))
            return torch.stack(out)

    class ConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1, self.lif1 = (nn.Conv2d(1, 32, 3, padding=1, bias=False),
                                               nn.BatchNorm2d(32), leaky())
            self.conv2, self.bn2, self.lif2 = (nn.Conv2d(32, 64, 3, padding=1, bias=False),
                                               nn.BatchNorm2d(64), leaky())
            self.fc = nn.Linear(64 * 2 * 2, N_CLASSES)

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            out = []
            for _ in range(T):
                spk1, mem1 = self.lif1(self.bn1(self.conv1(inp)), mem1)
                spk2, mem2 = self.lif2(self.bn2(self.conv2(F.max_pool2d(spk1, 2))), mem2)
                out.append(self.fc(F.max_pool2d(spk2, 2).flatten(1)))
            return torch.stack(out)

    torch.manual_seed(0)
    model = MLP() if network == "mlp" else ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def step() -> float:
        model.train()
        loss = F.cross_entropy(model(x).mean(0), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return Runner(step, [model.lif1], lambda out: out[0], lambda: model(x))


# --------------------------------------------------------------------------- SpikingJelly


def build_spikingjelly(network: str, x: torch.Tensor, y: torch.Tensor) -> Runner:
    # SpikingJelly's op registration makes torch warn that Triton is missing (irrelevant on CPU)
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=TAU, v_threshold=V_TH, v_reset=0.0, detach_reset=True,
                              surrogate_function=surrogate.Sigmoid(alpha=ALPHA))

    torch.manual_seed(0)
    if network == "mlp":
        model = nn.Sequential(
            layer.Linear(64, 256), lif(),
            layer.Linear(256, 256), lif(),
            layer.Linear(256, N_CLASSES),
        )
    else:
        model = nn.Sequential(
            layer.Conv2d(1, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32), lif(),
            layer.MaxPool2d(2),
            layer.Conv2d(32, 64, 3, padding=1, bias=False), layer.BatchNorm2d(64), lif(),
            layer.MaxPool2d(2),
            layer.Flatten(),
            layer.Linear(64 * 2 * 2, N_CLASSES),
        )
    functional.set_step_mode(model, "m")
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def encode() -> torch.Tensor:
        return x.unsqueeze(0).expand(T, *x.shape)  # same direct encoding as ours

    def step() -> float:
        model.train()
        loss = F.cross_entropy(model(encode()).mean(0), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        functional.reset_net(model)
        return loss.item()

    def forward() -> object:
        out = model(encode())
        functional.reset_net(model)
        return out

    neurons = [m for m in model.modules() if isinstance(m, neuron.LIFNode)]
    return Runner(step, neurons, lambda out: out, forward)


BUILDERS = {"snn-workbench": build_ours, "snntorch": build_snntorch,
            "spikingjelly": build_spikingjelly}


# --------------------------------------------------------------------------- harness


def _peer_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 100 else text[:97] + "..."


def _timed(step: Callable[[], float], seconds: float) -> float:
    steps = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or steps < 3:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
    return steps * B / elapsed


def run(seconds: float, rounds: int, networks: tuple[str, ...],
        frameworks: tuple[str, ...], log: Callable[[str], None]) -> dict:
    results: dict[str, dict[str, dict]] = {}
    for network in networks:
        x, y = make_data(network)
        runners: dict[str, Runner] = {}
        rows: dict[str, dict] = {}
        for fw in frameworks:
            row = rows[fw] = {"samples_per_s": None, "rounds": [], "spike_rate": None,
                              "error": None}
            try:
                runner = BUILDERS[fw](network, x, y)
                row["spike_rate"] = runner.spike_rate()  # initial weights, before training
                for _ in range(WARMUP_STEPS):
                    loss = runner.step()
                if not torch.isfinite(torch.tensor(loss)):
                    raise FloatingPointError(f"loss became {loss}")
                runners[fw] = runner
            except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported
                row["error"] = _short_error(exc)
                log(f"[{network}/{fw}] failed: {traceback.format_exc(limit=3)}")
        order = list(runners)
        for r in range(rounds):
            for fw in order[r % len(order):] + order[:r % len(order)] if order else []:
                try:
                    rows[fw]["rounds"].append(_timed(runners[fw].step, seconds))
                except Exception as exc:  # noqa: BLE001 - likewise, mid-benchmark
                    rows[fw]["error"] = _short_error(exc)
                    runners.pop(fw)
                    order.remove(fw)
                    break
            log(f"[{network}] round {r + 1}/{rounds} done")
        for fw in runners:
            done = sorted(rows[fw]["rounds"], reverse=True)
            if done:
                rows[fw]["samples_per_s"] = done[0]
            if len(done) > 1 and done[1] < 0.85 * done[0]:
                log(f"warning: [{network}/{fw}] the two best rounds differ by "
                    f"{100 * (1 - done[1] / done[0]):.0f}%; the machine was busy, consider a "
                    "rerun with more --rounds")
        results[network] = rows
    return results


def summarise(results: dict) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for network, rows in results.items():
        ours = rows.get("snn-workbench", {}).get("samples_per_s")
        peers = [row["samples_per_s"] for fw, row in rows.items()
                 if fw != "snn-workbench" and row["samples_per_s"]]
        ratios[network] = ours / max(peers) if ours and peers else None
    return ratios


def environment(threads: int) -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "snntorch": _peer_version("snntorch"),
        "spikingjelly": _peer_version("spikingjelly"),
        "T": T, "batch": B, "dtype": "float32", "device": "cpu",
    }


def print_table(env: dict, results: dict, ratios: dict, seconds: float, rounds: int) -> None:
    print(f"torch {env['torch']} | threads {env['threads']} (cpu_count {env['cpu_count']}) | "
          f"snntorch {env['snntorch']} | spikingjelly {env['spikingjelly']} | "
          f"python {env['python']}")
    print(f"T={T}, B={B}, float32, CPU; best of {rounds} rounds x {seconds:g} s per framework")
    print()
    print(f"{'network':<9} {'framework':<14} {'samples/s':>10}  {'ratio(ours/this)':>16}  "
          f"{'rate':>6}")
    for network, rows in results.items():
        ours = rows.get("snn-workbench", {}).get("samples_per_s")
        for fw, row in rows.items():
            sps = row["samples_per_s"]
            if sps is None:
                print(f"{network:<9} {fw:<14} {'-':>10}  {'-':>16}  {'-':>6}  "
                      f"({row['error'] or 'no result'})")
                continue
            ratio = f"{ours / sps:.2f}x" if ours else "-"
            rate = f"{row['spike_rate']:.3f}" if row["spike_rate"] is not None else "-"
            print(f"{network:<9} {fw:<14} {sps:>10.0f}  {ratio:>16}  {rate:>6}")
    parts = [f"{n} {r:.2f}x" if r is not None else f"{n} -" for n, r in ratios.items()]
    print()
    print("ours / fastest peer: " + ", ".join(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.6,
                        help="timed seconds per framework per round (default 0.6)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; best is kept (default 5)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: os.cpu_count())")
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"comma-separated subset of {','.join(NETWORKS)}")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help=f"comma-separated subset of {','.join(FRAMEWORKS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)

    networks = tuple(n for n in args.networks.split(",") if n)
    frameworks = tuple(f for f in args.frameworks.split(",") if f)
    unknown = [n for n in networks if n not in NETWORKS] + \
              [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        parser.error(f"unknown network/framework: {', '.join(unknown)}")

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = run(args.seconds, args.rounds, networks, frameworks, log)
    ratios = summarise(results)
    env = environment(torch.get_num_threads())
    if args.json:
        print(json.dumps({"environment": env, "seconds": args.seconds, "rounds": args.rounds,
                          "results": results, "ours_over_fastest_peer": ratios}, indent=2))
    else:
        print_table(env, results, ratios, args.seconds, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
