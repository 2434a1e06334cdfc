"""Compression methods over 5 seeds with paired tests, on the digits or on MNIST-1D.

For every seed the script trains the full-precision teachers from scratch and compresses
copies of them in memory, as ``compression_digits.py`` does (its rows and its
``compress_row``). Each method is compared with its baseline on the same seed's teacher:
uniform vs ReScaW at the same bits, L1 vs SVS at the same pruning ratio, Q-SNN without vs with
WS-DR, plain vs CIE-distilled binary BESTformer. Per pair it prints the mean paired difference
(method − baseline), the paired t-test's p-value and, where it is defined, the Wilcoxon
signed-rank test's; with 5 pairs the smallest two-sided Wilcoxon p is 2/32 = 0.0625.

MNIST-1D (``wb_datasets.mnist1d``, 4000 training and 1000 test samples) runs the digits
examples' networks on it: ``digits_conv`` and ``digits_q_snn`` on the ``grid`` layout (the 40
steps folded into a 5×8 image, so 3×3 kernels, pooling and SVS's spike-map ranks see two
dimensions) and ``digits_bestformer`` on the ``row`` layout (a 1×40 image: 20 tokens in time
order after its one pooling), with pruning at 50 % and at 80 %.

    python benchmarks/compression_bench.py [--dataset {digits,mnist1d}] [--seeds 0 1 2 3 4]
                                           [--finetune-epochs N] [--rows TEXT] [--json]

``--rows TEXT`` runs only the rows whose label contains TEXT (and their teachers).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

from compression_digits import ROWS as DIGITS_ROWS
from compression_digits import compress_row

#: MNIST-1D teachers: (digits example whose network is used, layout, training epochs)
MNIST1D_TEACHERS = {
    "mnist1d_conv": ("digits_conv", "grid", 20),
    "mnist1d_q_snn": ("digits_q_snn", "grid", 20),
    "mnist1d_bestformer": ("digits_bestformer", "row", 4),
}

#: (row label, teacher, method id, params), as in compression_digits.ROWS
MNIST1D_ROWS = [
    ("full precision", "mnist1d_conv", None, {}),
    ("uniform 4-bit", "mnist1d_conv", "wb_qp_snn.uniform", {"bits": 4}),
    ("ReScaW 4-bit", "mnist1d_conv", "wb_qp_snn.rescaw", {"bits": 4}),
    ("uniform 2-bit", "mnist1d_conv", "wb_qp_snn.uniform", {"bits": 2}),
    ("ReScaW 2-bit", "mnist1d_conv", "wb_qp_snn.rescaw", {"bits": 2}),
    ("L1 prune 50 %", "mnist1d_conv", "wb_qp_snn.l1_prune", {"ratio": 0.5}),
    ("SVS prune 50 %", "mnist1d_conv", "wb_qp_snn.svs_prune", {"ratio": 0.5}),
    ("L1 prune 80 %", "mnist1d_conv", "wb_qp_snn.l1_prune", {"ratio": 0.8}),
    ("SVS prune 80 %", "mnist1d_conv", "wb_qp_snn.svs_prune", {"ratio": 0.8}),
    ("Q-SNN deep full precision", "mnist1d_q_snn", None, {}),
    ("Q-SNN deep: sign, no regulation", "mnist1d_q_snn", "wb_q_snn.q_snn",
     {"ws_dr": False, "spike_reg": 0.0}),
    ("Q-SNN deep: WS-DR weights + spikes", "mnist1d_q_snn", "wb_q_snn.q_snn", {"ws_dr": True}),
    ("BESTformer full precision", "mnist1d_bestformer", None, {}),
    ("BESTformer plain binary", "mnist1d_bestformer", "wb_bestformer.binarize", {}),
    ("BESTformer CIE binary", "mnist1d_bestformer", "wb_bestformer.cie", {}),
]

DATASETS = {"digits": DIGITS_ROWS, "mnist1d": MNIST1D_ROWS}

#: method -> (its baseline method, params the two rows share)
BASELINES = {
    "wb_qp_snn.rescaw": ("wb_qp_snn.uniform", ("bits",)),
    "wb_qp_snn.svs_prune": ("wb_qp_snn.l1_prune", ("ratio",)),
    "wb_bestformer.cie": ("wb_bestformer.binarize", ()),
}


def paired_test(baseline: list[float], method: list[float]) -> dict[str, Any]:
    """Paired comparison of ``method`` with ``baseline`` (entry i of both: the same seed).

    Returns the mean and sample std of the differences ``method − baseline``, the paired
    t statistic and its two-sided p-value (``scipy.stats.ttest_rel``), and the two-sided
    Wilcoxon signed-rank p (scipy's default: zero differences dropped, exact below 50 pairs
    without ties). A p is None where the test is undefined: fewer than two pairs, or
    differences that are all equal (t: no spread) or all zero (Wilcoxon).
    """
    from scipy import stats

    if len(baseline) != len(method):
        raise ValueError(f"{len(baseline)} baseline values but {len(method)} method values")
    diffs = [m - b for b, m in zip(baseline, method, strict=True)]
    result: dict[str, Any] = {
        "n": len(diffs),
        "mean_diff": statistics.mean(diffs) if diffs else math.nan,
        "std_diff": statistics.stdev(diffs) if len(diffs) > 1 else math.nan,
        "t": None, "p_t": None, "p_wilcoxon": None,
    }
    if len(diffs) > 1 and max(diffs) != min(diffs):
        t = stats.ttest_rel(method, baseline)
        result["t"], result["p_t"] = float(t.statistic), float(t.pvalue)
    if len(diffs) > 1 and any(diffs):
        result["p_wilcoxon"] = float(stats.wilcoxon(diffs).pvalue)
    return result


def baseline_of(method: str | None, params: dict) -> tuple[str, dict] | None:
    """The method and the params of a row's baseline row, or None for a row without one."""
    if method == "wb_q_snn.q_snn":  # WS-DR (on by default) against plain sign weights
        return (method, {"ws_dr": False}) if params.get("ws_dr", True) else None
    if method not in BASELINES:
        return None
    base, shared = BASELINES[method]
    return base, {key: params.get(key) for key in shared}


def pairs(rows: list[tuple]) -> list[tuple[str, str]]:
    """``(baseline label, method label)`` for each row whose baseline row (same teacher, the
    baseline method, the same shared params) is in ``rows``."""
    found = []
    for label, teacher, method, params in rows:
        want = baseline_of(method, params)
        if want is None:
            continue
        found += [(other, label) for other, other_teacher, other_method, other_params in rows
                  if other_teacher == teacher and other_method == want[0]
                  and all(other_params.get(k) == v for k, v in want[1].items())]
    return found


def on_mnist1d(example: str, layout: str, epochs: int | None = None):
    """The digits example ``example``'s project with MNIST-1D in the ``layout`` as its data
    (and ``epochs`` training epochs when given), in memory only."""
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project

    project = load_project(examples_dir() / example)
    project.folder = None  # never write weights or records into the examples
    project.dataset.id = "wb_datasets.mnist1d"
    project.dataset.params = {"layout": layout}
    if epochs is not None:
        project.training.epochs = epochs
    return project


def teacher_project(name: str):
    """The project ``name`` trains: a digits example, or an MNIST-1D teacher built from one."""
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project

    if name in MNIST1D_TEACHERS:
        project = on_mnist1d(*MNIST1D_TEACHERS[name])
        project.name = name
        return project
    project = load_project(examples_dir() / name)
    project.folder = None  # never write weights or records into the examples
    return project


def train_teacher(name: str, seed: int, registry):
    from workbench.core.runs.session import Session

    project = teacher_project(name)
    project.training.seed = seed
    session = Session(project, registry)
    finished = session.train(fresh=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"training {name} (seed {seed}) failed: {finished.error}")
    return session


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    acc = [r["accuracy"] for r in runs]
    size = [r["bytes"] for r in runs]
    return {"accuracy_mean": statistics.mean(acc),
            "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "bytes_mean": statistics.mean(size),
            "bytes_std": statistics.stdev(size) if len(size) > 1 else 0.0,
            "runs": runs}


def format_p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_tables(dataset: str, seeds: list[int], seconds: float, table: dict[str, Any],
                 compared: list[dict[str, Any]]) -> None:
    print(f"\n{dataset}, seeds {seeds}, {seconds:.0f} s in all")
    print(f"{'method':<36}{'test accuracy %':>20}{'model size (kB)':>22}")
    for label, row in table.items():
        print(f"{label:<36}{100 * row['accuracy_mean']:>12.2f} ± {100 * row['accuracy_std']:<5.2f}"
              f"{row['bytes_mean'] / 1e3:>14.2f} ± {row['bytes_std'] / 1e3:<6.2f}")
    if not compared:
        return
    names = [f"{pair['baseline']} -> {pair['method']}" for pair in compared]
    width = max(map(len, names)) + 2
    print("\npaired over seeds: difference = method − baseline, test accuracy in points")
    print(f"{'baseline -> method':<{width}}{'mean ± std':>16}{'t':>8}{'p (t)':>8}{'p (W)':>8}")
    for name, pair in zip(names, compared, strict=True):
        diff = f"{100 * pair['mean_diff']:+.2f} ± {100 * pair['std_diff']:.2f}"
        t = "n/a" if pair["t"] is None else f"{pair['t']:.2f}"
        p_t, p_w = format_p(pair["p_t"]), format_p(pair["p_wilcoxon"])
        print(f"{name:<{width}}{diff:>16}{t:>8}{p_t:>8}{p_w:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--finetune-epochs", type=int,
                        help="override every method's fine-tuning epochs")
    parser.add_argument("--rows", default="", metavar="TEXT",
                        help="run only the rows whose label contains TEXT")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row for row in DATASETS[args.dataset] if args.rows in row[0]]
    if not rows:
        parser.error(f"--rows {args.rows!r} matches no row label")
    from workbench.pluginhost.manager import load_plugins

    registry = load_plugins().registry
    results: dict[str, list[dict[str, float]]] = {label: [] for label, *_ in rows}
    started = time.perf_counter()
    for seed in args.seeds:
        teachers = {}
        for label, teacher, method, params in rows:
            if teacher not in teachers:
                teachers[teacher] = train_teacher(teacher, seed, registry)
            params = dict(params)
            if method and args.finetune_epochs is not None:
                params["finetune_epochs"] = args.finetune_epochs
            results[label].append(compress_row(teachers[teacher], method, params))
            print(f"seed {seed}  {label:<36} {results[label][-1]['accuracy']:.4f}  "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    table = {label: summary(runs) for label, runs in results.items()}
    compared = [{"baseline": base, "method": label,
                 **paired_test([r["accuracy"] for r in results[base]],
                               [r["accuracy"] for r in results[label]])}
                for base, label in pairs(rows)]
    if args.json:
        print(json.dumps({"dataset": args.dataset, "seeds": args.seeds, "seconds": seconds,
                          "rows": table, "pairs": compared}, indent=2))
        return 0
    print_tables(args.dataset, args.seeds, seconds, table, compared)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
