"""Compression methods on the embedded digits, 3 seeds each: accuracy and model size.

For every seed the script trains the full-precision teachers from scratch (``digits_conv``,
``digits_q_snn`` and ``digits_bestformer``), then compresses copies of them in memory:

- uniform (vanilla) vs ReScaW quantisation at 2 and 4 bits (QP-SNN, docs/qp_snn.md);
- SVS vs L1-norm structured pruning at the same ratio (50 % of the prunable kernels);
- plain binary vs CIE-distilled binary (BESTformer, docs/bestformer.md);
- Q-SNN binary weights (docs/q_snn.md): on ``digits_conv`` plain sign vs WS-DR's weight half
  only (its two neuron layers are the first and the last, which spike regulation skips); on
  ``digits_q_snn`` (four neuron layers) plain sign without regulation vs both halves of WS-DR.

It prints mean ± std of test accuracy and of the model size (the rule of docs/wb_core.md) per row.

    python benchmarks/compression_digits.py [--seeds 0 1 2] [--finetune-epochs N]
                                            [--rows TEXT] [--json]

``--rows TEXT`` runs only the rows whose label contains TEXT (and their teachers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

#: (row label, teacher project, method id, params)
ROWS = [
    ("full precision", "digits_conv", None, {}),
    ("uniform 4-bit", "digits_conv", "wb_qp_snn.uniform", {"bits": 4}),
    ("ReScaW 4-bit", "digits_conv", "wb_qp_snn.rescaw", {"bits": 4}),
    ("uniform 2-bit", "digits_conv", "wb_qp_snn.uniform", {"bits": 2}),
    ("ReScaW 2-bit", "digits_conv", "wb_qp_snn.rescaw", {"bits": 2}),
    ("L1 prune 50 %", "digits_conv", "wb_qp_snn.l1_prune", {"ratio": 0.5}),
    ("SVS prune 50 %", "digits_conv", "wb_qp_snn.svs_prune", {"ratio": 0.5}),
    ("Q-SNN binary: sign weights", "digits_conv", "wb_q_snn.q_snn",
     {"ws_dr": False, "spike_reg": 0.0}),
    ("Q-SNN binary: WS-DR weights only", "digits_conv", "wb_q_snn.q_snn", {"ws_dr": True}),
    ("Q-SNN deep full precision", "digits_q_snn", None, {}),
    ("Q-SNN deep: sign, no regulation", "digits_q_snn", "wb_q_snn.q_snn",
     {"ws_dr": False, "spike_reg": 0.0}),
    ("Q-SNN deep: WS-DR weights + spikes", "digits_q_snn", "wb_q_snn.q_snn", {"ws_dr": True}),
    ("BESTformer full precision", "digits_bestformer", None, {}),
    ("BESTformer plain binary", "digits_bestformer", "wb_bestformer.binarize", {}),
    ("BESTformer CIE binary", "digits_bestformer", "wb_bestformer.cie", {}),
]


def train_teacher(name: str, seed: int, registry):
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session

    project = load_project(examples_dir() / name)
    project.folder = None  # never write weights or records into the examples
    project.training.seed = seed
    session = Session(project, registry)
    finished = session.train(fresh=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"training {name} (seed {seed}) failed: {finished.error}")
    return session


def compress_row(session, method: str | None, params: dict) -> dict[str, float]:
    from workbench.core.runs import catalog
    from workbench.core.runs.compress import measure

    if method is None:
        figures = measure(session.model, session)
        return {"accuracy": figures["accuracy"], "bytes": figures["model_size_bytes"]}
    finished = catalog.compress(session, method=method, params=params).result()
    if finished.status != "ok":
        raise RuntimeError(f"{method} {params}: {finished.error}")
    after = finished.summary["after"]
    return {"accuracy": after["accuracy"], "bytes": after["model_size_bytes"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--finetune-epochs", type=int,
                        help="override every method's fine-tuning epochs")
    parser.add_argument("--rows", default="", metavar="TEXT",
                        help="run only the rows whose label contains TEXT")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row for row in ROWS if args.rows in row[0]]
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
            print(f"seed {seed}  {label:<36} {results[label][-1]['accuracy']:.4f}", flush=True)
    table = {}
    for label, runs in results.items():
        acc = [r["accuracy"] for r in runs]
        size = [r["bytes"] for r in runs]
        table[label] = {"accuracy_mean": statistics.mean(acc),
                        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                        "bytes_mean": statistics.mean(size),
                        "bytes_std": statistics.stdev(size) if len(size) > 1 else 0.0,
                        "runs": runs}
    if args.json:
        print(json.dumps({"seeds": args.seeds, "rows": table}, indent=2))
        return 0
    print(f"\ndigits (8x8), seeds {args.seeds}, {time.perf_counter() - started:.0f} s in all")
    print(f"{'method':<36}{'test accuracy %':>20}{'model size (kB)':>22}")
    for label, row in table.items():
        print(f"{label:<36}{100 * row['accuracy_mean']:>12.2f} ± {100 * row['accuracy_std']:<5.2f}"
              f"{row['bytes_mean'] / 1e3:>14.2f} ± {row['bytes_std'] / 1e3:<6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
