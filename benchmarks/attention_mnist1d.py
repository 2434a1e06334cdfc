"""SSSA against SSA on MNIST-1D as a sequence of tokens, over seeds, with a paired test.

Trains the networks of ``digits_snn_vit_sssa`` and ``digits_snn_vit_ssa`` (one block, T = 4;
they differ only in the attention) on ``wb_datasets.mnist1d`` in the ``row`` layout, a 1×40
image: GL-SPS's 3×3 convs keep its one row, so each column becomes a token in time order, 40
tokens without pooling (``--tokens 40``) or 20 after one max-pool (``--tokens 20``). Per run
it evaluates the test accuracy and the energy ledger, and from the ledger takes the attention
cores' operations per sample (MACs + SOPs of the layers the ledger counts as attention: the
spike × spike products of Q·K and of the result with V, not the Q/K/V projections).

It prints mean ± std per attention and token count, the paired difference SSSA − SSA on the
same seed (t-test and Wilcoxon p, as ``compression_bench.py`` computes them), and with two
token counts how each attention's operations grow from the fewer to the more tokens (linear:
the token ratio; quadratic: its square).

    python benchmarks/attention_mnist1d.py [--seeds 0 1 2 3 4] [--tokens 20 40] [--epochs N]
                                           [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from compression_bench import format_p, on_mnist1d, paired_test

EXAMPLES = {"sssa": "digits_snn_vit_sssa", "ssa": "digits_snn_vit_ssa"}
#: GL-SPS pool stages for each token count of the 40-step row
POOL_STAGES = {40: 0, 20: 1}
EPOCHS = 5


def run(attention: str, tokens: int, seed: int, epochs: int, registry) -> dict[str, Any]:
    from workbench.core.runs.session import Session

    project = on_mnist1d(EXAMPLES[attention], "row", epochs)
    project.training.seed = seed
    for node in project.graph.nodes:
        if node.spec == "wb_snn_vit.gl_sps":
            node.params["pool_stages"] = POOL_STAGES[tokens]
    session = Session(project, registry)
    started = time.perf_counter()
    finished = session.train(fresh=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"{attention} ({tokens} tokens, seed {seed}): {finished.error}")
    evaluated = session.evaluate().result()
    if evaluated.status != "ok":
        raise RuntimeError(f"{attention} ({tokens} tokens, seed {seed}): {evaluated.error}")
    energy = evaluated.summary["energy"]
    cores = [layer for layer in energy["layers"] if layer["kind"] == "attention"]
    if not cores:
        raise RuntimeError(f"the ledger of {attention} counted no attention core")
    return {"accuracy": evaluated.summary["accuracy"],
            "attention_ops": sum(layer["macs"] + layer["sops"] for layer in cores),
            "sops": energy["sops_per_sample"], "pj": energy["total_pj_per_sample"],
            "sop_counting": energy["sop_counting"],
            "seconds": time.perf_counter() - started}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tokens", type=int, nargs="+", choices=sorted(POOL_STAGES),
                        default=[40])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs per run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from workbench.pluginhost.manager import load_plugins

    registry = load_plugins().registry
    started = time.perf_counter()
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for seed in args.seeds:
        for tokens in args.tokens:
            for attention in EXAMPLES:
                result = run(attention, tokens, seed, args.epochs, registry)
                runs.setdefault((attention, tokens), []).append(result)
                print(f"seed {seed}  {attention:<5}{tokens:>3} tokens  {result['accuracy']:.4f}  "
                      f"{result['attention_ops']:.0f} attention ops  "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    compared = {tokens: paired_test([r["accuracy"] for r in runs["ssa", tokens]],
                                    [r["accuracy"] for r in runs["sssa", tokens]])
                for tokens in args.tokens}
    growth = {}
    if len(args.tokens) > 1:
        low, high = min(args.tokens), max(args.tokens)
        growth = {attention: statistics.mean(r["attention_ops"] for r in runs[attention, high])
                  / statistics.mean(r["attention_ops"] for r in runs[attention, low])
                  for attention in EXAMPLES}
    if args.json:
        print(json.dumps({"seeds": args.seeds, "epochs": args.epochs, "seconds": seconds,
                          "runs": {f"{a} {n}": r for (a, n), r in runs.items()},
                          "paired_sssa_minus_ssa": compared, "ops_growth": growth}, indent=2))
        return 0
    counting = next(iter(runs.values()))[0]["sop_counting"]
    print(f"\nMNIST-1D as tokens (row layout), T = 4, seeds {args.seeds}, {args.epochs} epochs, "
          f"{seconds:.0f} s in all; SOP counting {counting}")
    print(f"{'attention':<10}{'tokens':>7}{'test accuracy %':>20}{'attention ops/sample':>24}"
          f"{'SOPs/sample':>14}{'pJ/sample':>12}")
    for (attention, tokens), rs in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        acc, acc_std = mean_std([100 * r["accuracy"] for r in rs])
        ops, ops_std = mean_std([r["attention_ops"] for r in rs])
        print(f"{attention.upper():<10}{tokens:>7}{acc:>12.2f} ± {acc_std:<5.2f}"
              f"{ops:>14.0f} ± {ops_std:<7.0f}{statistics.mean(r['sops'] for r in rs):>14.0f}"
              f"{statistics.mean(r['pj'] for r in rs):>12.0f}")
    for tokens, pair in compared.items():
        print(f"paired SSSA − SSA at {tokens} tokens: {100 * pair['mean_diff']:+.2f} ± "
              f"{100 * pair['std_diff']:.2f} points, p (t-test) {format_p(pair['p_t'])}, "
              f"p (Wilcoxon) {format_p(pair['p_wilcoxon'])}")
    for attention, ratio in growth.items():
        print(f"{attention.upper()}: attention ops ×{ratio:.2f} from {min(args.tokens)} to "
              f"{max(args.tokens)} tokens (linear ×{max(args.tokens) / min(args.tokens):.0f}, "
              f"quadratic ×{(max(args.tokens) / min(args.tokens)) ** 2:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
