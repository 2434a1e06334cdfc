"""Training throughput: snn-workbench's core against snnTorch and SpikingJelly, on CPU.

What is measured
----------------
Four networks (``snn_nets.NETS``; random inputs of the right shape, seed 0) are trained, in
one process, with each framework in turn; each training step is one full BPTT step on a fixed
batch, and the timed step includes everything a training loop does per batch:

    direct encoding (input repeated over T) -> forward over T steps -> logits averaged over T
    -> cross-entropy -> zero_grad -> backward -> Adam step (lr 1e-3)

- ``mlp``:    [64] -> fc 256 -> fc 256 -> 10, T = 8, B = 128
- ``conv``:   [1, 8, 8] -> conv 32 -> pool -> conv 64 -> pool -> 10, T = 8, B = 128
- ``conv28``: [1, 28, 28] -> conv 32 -> pool -> conv 64 -> pool -> 10, T = 8, B = 64
- ``vgg``:    [3, 32, 32] -> conv 64 -> conv 64 -> pool -> conv 128 -> conv 128 -> pool
  -> conv 256 -> pool -> 10, T = 4, B = 32

(fc: Linear -> LIF; conv: 3x3 Conv2d -> BatchNorm2d -> LIF; pool: MaxPool2d(2); float32.)

Neuron: LIF, tau = 2 (decay 0.5), threshold 1.0, hard reset to 0, reset detached, sigmoid
surrogate with alpha (slope) 4 -- as close as each framework allows:

- snn-workbench, in three modes: ``ours-eager`` and ``ours-fused`` are the project setting
  ``compute.kernels`` = eager / fused (the neurons' time loop in Python, or the compiled fused
  kernels of ``wb_core.fused``); ``ours-compiled`` is ``compute.compile``: the whole network
  through ``torch.compile``. ``wb_core.lif`` defaults (``H = V + (X - V) / tau``, fires at
  ``H >= 1``), a graph of ``wb_core.*`` specs compiled with ``compile_graph``, trained with
  ``BPTTTrainer.train_step`` on ``DirectEncoder().encode(x, T)``.
- snnTorch: ``snn.Leaky(beta=0.5, threshold=1.0, spike_grad=surrogate.sigmoid(slope=4),
  reset_mechanism="zero")``. Its LIF is ``U = beta * U + X`` (the input is not scaled by
  1/tau, i.e. twice ours for the same X), fires at ``U > 1``, and its zero-reset is always
  detached. Used the way its tutorials do: a Python loop over the T steps that calls every layer
  on ``[B, ...]`` at each step (so BatchNorm2d keeps statistics per step of B samples, where the
  other two normalise over T*B jointly; the arithmetic is the same).
- SpikingJelly 2.0 (``spikingjelly.activation_based``): ``neuron.LIFNode(tau=2.0,
  v_threshold=1.0, v_reset=0.0, detach_reset=True, surrogate_function=surrogate.Sigmoid(
  alpha=4.0))``, every layer in multi-step mode and ``functional.reset_net(net)`` after each
  step. Same equation and firing rule as ours. On the CPU it has one LIF path (its fused
  multi-step CPU op), chosen automatically.

Timing: per network every model is built and warmed up (``--warmup`` steps; the first step
compiles in the fused and compiled modes, so the warm-up time is reported separately as
``warm-up s``). Then, for each thread count of ``--threads``, one untimed step per model and
``--runs`` timed runs (default 5); in each run every framework trains for ``--seconds`` (at least
two steps), the order rotating between runs so that a change in the machine's load hits them
alike. samples/s = steps * B / elapsed; the table gives the MEDIAN run and the range (slowest to
fastest run). ``ratio`` is our best mode's median over the fastest peer's median (> 1: we are
faster). ``rate`` is the mean spike rate of the first LIF layer on the batch (train mode, no
gradients) after the warm-up steps, from weights every framework draws from seed 0 in the same
layer order: a sanity check that the frameworks run comparable dynamics (ours and
SpikingJelly's agree; snnTorch fires more, its input not being halved).

Installing the peers
--------------------
Without their dependency lists, so that pip cannot replace the installed torch::

    pip install --no-deps snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3

(``loguru`` is the only extra runtime import that SpikingJelly 2.0.0 needs for the modules used
here; snnTorch 1.0.0 needs only torch and numpy.) A peer that fails to import or run is reported
in its row and the benchmark goes on.

Usage::

    python benchmarks/train_throughput.py [--nets mlp,vgg] [--threads 1,2] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable

import torch
from sim_throughput import spread
from snn_nets import NETS, Net, Runner, builders, is_ours, make_data

FRAMEWORKS = ("ours-eager", "ours-fused", "ours-compiled", "snntorch", "spikingjelly")
WARMUP_STEPS = 3
MIN_STEPS = 2  # per timed run, however short --seconds is


def peer_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 100 else text[:97] + "..."


def timed(fn: Callable[[], object], seconds: float, batch: int) -> float:
    """Samples/s of ``fn`` run for at least ``seconds`` and :data:`MIN_STEPS` calls."""
    steps = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds or steps < MIN_STEPS:
        fn()
        steps += 1
        elapsed = time.perf_counter() - start
    return steps * batch / elapsed


def rotations(names: list[str], runs: int) -> list[list[str]]:
    """The order of every run: run r starts at the r-th name (mod the count)."""
    if not names:
        return [[] for _ in range(runs)]
    return [names[r % len(names):] + names[:r % len(names)] for r in range(runs)]


def ratio_to_peers(row: dict[str, dict], key: str = "median") -> float | None:
    """Our best mode over the fastest peer, by ``key`` of each row's samples/s (None when
    either side has no result)."""
    ours = [r[key] for fw, r in row.items() if is_ours(fw) and r.get(key)]
    peers = [r[key] for fw, r in row.items() if not is_ours(fw) and r.get(key)]
    return max(ours) / max(peers) if ours and peers else None


def warm_up(net: Net, frameworks: tuple[str, ...], build: dict, device: torch.device,
            steps: int, log: Callable[[str], None],
            sync: Callable[[], None] = lambda: None) -> tuple[dict[str, Runner], dict[str, dict]]:
    """Build and warm every model (``steps`` training steps, timed: the first one compiles in
    the fused and compiled modes); what failed is kept as an error row."""
    x, y = make_data(net, device)
    runners: dict[str, Runner] = {}
    info: dict[str, dict] = {}
    for fw in frameworks:
        info[fw] = {"warmup_s": None, "spike_rate": None, "error": None}
        try:
            runner = build[fw](net, x, y)
            runner.enter()
            started = time.perf_counter()
            for _ in range(steps):
                loss = runner.step()
            sync()
            info[fw]["warmup_s"] = time.perf_counter() - started
            if not torch.isfinite(torch.tensor(loss)):
                raise FloatingPointError(f"loss became {loss}")
            info[fw]["spike_rate"] = runner.spike_rate()
            runners[fw] = runner
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported
            info[fw]["error"] = short_error(exc)
            log(f"[{net.name}/{fw}] failed: {traceback.format_exc(limit=3)}")
    return runners, info


def time_runs(net: Net, runners: dict[str, Runner], info: dict[str, dict], fn: str,
              seconds: float, runs: int, log: Callable[[str], None],
              sync: Callable[[], None] = lambda: None) -> dict[str, dict]:
    """``runs`` timed runs of each runner's ``fn`` (``step`` or ``infer``), rotating the order;
    per framework the median samples/s, its range and every run."""
    rows = {fw: {"median": None, "min": None, "max": None, "runs": [], **info[fw]}
            for fw in info}
    live = dict(runners)
    for runner in live.values():  # one untimed call: the thread count or mode just changed
        runner.enter()
        getattr(runner, fn)()
    for r, order in enumerate(rotations(list(live), runs)):
        for fw in order:
            if fw not in live:
                continue
            try:
                live[fw].enter()
                call = getattr(live[fw], fn)

                def once(call=call) -> None:
                    call()
                    sync()
                rows[fw]["runs"].append(timed(once, seconds, net.batch))
            except Exception as exc:  # noqa: BLE001 - likewise, mid-benchmark
                rows[fw]["error"] = short_error(exc)
                live.pop(fw)
        log(f"[{net.name}] run {r + 1}/{runs} done")
    for fw in live:
        if rows[fw]["runs"]:
            rows[fw].update(spread(rows[fw]["runs"]))
    return rows


def run(nets: list[Net], frameworks: tuple[str, ...], threads: list[int], seconds: float,
        runs: int, log: Callable[[str], None]) -> dict:
    results: dict[str, dict] = {}
    build = builders()
    for net in nets:
        # Dynamo keys its caches on the code compiled, the same for every network: without a
        # reset the second network's shapes count as "changed" and it compiles for dynamic
        # shapes (which inductor failed on for vgg after mlp, torch 2.13)
        torch.compiler.reset()
        torch.set_num_threads(max(threads))
        runners, info = warm_up(net, frameworks, build, torch.device("cpu"), WARMUP_STEPS, log)
        results[net.name] = {}
        for n in threads:
            torch.set_num_threads(n)
            rows = time_runs(net, runners, info, "step", seconds, runs, log)
            results[net.name][str(n)] = {"rows": rows, "ratio": ratio_to_peers(rows)}
            # each block as it finishes, so that an interrupted sweep still leaves its figures
            log("\n".join(format_table({net.name: {str(n): results[net.name][str(n)]}})))
    return results


def environment() -> dict:
    import os
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "snntorch": peer_version("snntorch"),
            "spikingjelly": peer_version("spikingjelly"), "dtype": "float32", "device": "cpu"}


def format_table(results: dict, unit: str = "samples/s", key: str = "thr") -> list[str]:
    """One row per network, setting (``key``: threads, precision) and framework."""
    lines = [(f"{'net':<7} {key:>4} {'framework':<14} {unit + ' median':>17} "
              f"{'range':>15}  {'ours/this':>9}  {'warm-up s':>9}  {'rate':>5}")]
    for name, by_threads in results.items():
        for n, block in by_threads.items():
            rows = block["rows"]
            best_ours = max((r["median"] for fw, r in rows.items()
                             if is_ours(fw) and r["median"]), default=None)
            for fw, row in rows.items():
                warm = f"{row['warmup_s']:.1f}" if row.get("warmup_s") is not None else "-"
                if row["median"] is None:
                    lines.append(f"{name:<7} {n:>4} {fw:<14} {'-':>17} {'-':>15}  {'-':>9}  "
                                 f"{warm:>9}  {'-':>5}  ({row['error'] or 'no result'})")
                    continue
                span = f"{row['min']:.0f}-{row['max']:.0f}"
                ratio = "" if is_ours(fw) or best_ours is None else \
                    f"{best_ours / row['median']:.2f}x"
                rate = f"{row['spike_rate']:.3f}" if row.get("spike_rate") is not None else "-"
                lines.append(f"{name:<7} {n:>4} {fw:<14} {row['median']:>17.0f} {span:>15}  "
                             f"{ratio:>9}  {warm:>9}  {rate:>5}")
    lines.append("")
    suffix = "t" if key == "thr" else ""
    lines.append("ours (best mode) / fastest peer, medians: " + ", ".join(
        f"{name} {n}{suffix} " + (f"{b['ratio']:.2f}x" if b["ratio"] is not None else "-")
        for name, by_threads in results.items() for n, b in by_threads.items()))
    return lines


def parse_list(text: str, allowed, what: str, parser: argparse.ArgumentParser) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        parser.error(f"--{what}: unknown {', '.join(bad) or '(empty)'}; "
                     f"choose from {', '.join(allowed)}")
    return items


def parse_threads(text: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        threads = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        parser.error(f"--threads: expected positive integers separated by commas, got {text!r}")
    return threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(NETS),
                        help=f"comma-separated subset of {','.join(NETS)} (default: all)")
    parser.add_argument("--threads", default="1,2",
                        help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs per framework; the median is reported (default 5)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="wall-clock seconds per run (default 0.5; at least 2 steps)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help=f"comma-separated subset of {','.join(FRAMEWORKS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    nets = [NETS[n] for n in parse_list(args.nets, list(NETS), "nets", parser)]
    frameworks = tuple(parse_list(args.frameworks, FRAMEWORKS, "frameworks", parser))
    threads = parse_threads(args.threads, parser)
    if args.runs < 1:
        parser.error("--runs: at least 1 (5 or more for a figure worth quoting)")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = run(nets, frameworks, threads, args.seconds, args.runs, log)
    env = environment()
    if args.json:
        print(json.dumps({"environment": env, "seconds": args.seconds, "runs": args.runs,
                          "nets": {n.name: vars(n) for n in nets}, "results": results},
                         indent=2, default=str))
        return 0
    print(f"torch {env['torch']} (cpu_count {env['cpu_count']}) | snntorch {env['snntorch']} | "
          f"spikingjelly {env['spikingjelly']} | python {env['python']} | float32, CPU")
    print("; ".join(f"{n.name}: T={n.steps}, B={n.batch}" for n in nets) +
          f"; median of {args.runs} runs x {args.seconds:g} s (>= {MIN_STEPS} steps) per "
          "framework, range = slowest-fastest run")
    print()
    print("\n".join(format_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
