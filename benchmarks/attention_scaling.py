"""How the attention core's cost grows with the number of tokens N: SSSA against SSA.

Times the attention core alone (forward + backward from binary Q, K, V spikes to the merged
head outputs, without the Q/K/V and output projections) for N in {64, 256, 1024, 4096} and
fits the growth exponent: the slope of log(time) over log(N). SSSA never forms the N×N
matrix (target exponent <= 1.15); Spikformer's SSA does (about 2).

    python benchmarks/attention_scaling.py [--tokens 64 256 1024 4096] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from wb_core.neurons import lif
from wb_snn_vit.attention import SSA, SSSA

T, B, D, HEADS = 4, 1, 32, 2


def core_time(module: torch.nn.Module, tokens: int, repeats: int) -> float:
    """Best-of-``repeats`` seconds for one forward + backward of ``module.attend``."""
    gen = torch.Generator().manual_seed(tokens)
    q, k, v = ((torch.rand(T, B, tokens, D, generator=gen) < 0.2).float().requires_grad_()
               for _ in range(3))
    best = math.inf
    for _ in range(repeats):
        for t in (q, k, v):
            t.grad = None
        start = time.perf_counter()
        y = module.attend(q, k, v)[0]
        y.sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def exponent(tokens: list[int], seconds: list[float]) -> float:
    xs = [math.log(n) for n in tokens]
    ys = [math.log(s) for s in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    modules = {"sssa": SSSA(D, HEADS, lif), "ssa": SSA(D, HEADS, lif)}
    times = {name: [core_time(m, n, args.repeats) for n in args.tokens]
             for name, m in modules.items()}
    fits = {name: exponent(args.tokens, t) for name, t in times.items()}
    if args.json:
        print(json.dumps({"tokens": args.tokens, "seconds": times, "exponent": fits,
                          "shape": {"T": T, "B": B, "D": D, "heads": HEADS}}))
        return 0
    print(f"attention core, forward + backward; T={T}, B={B}, D={D}, heads={HEADS}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'N':>6}" + "".join(f"{name + ' ms':>12}" for name in times))
    for i, n in enumerate(args.tokens):
        print(f"{n:>6}" + "".join(f"{1e3 * times[name][i]:>12.3f}" for name in times))
    print("growth exponent (time ~ N^k): " + ", ".join(f"{name} {k:.2f}"
                                                      for name, k in fits.items())
          + "   (target: sssa <= 1.15; ssa about 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
