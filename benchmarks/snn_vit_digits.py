"""SNN-ViT on the embedded digits: SSSA against the Spikformer SSA baseline, 3 seeds each.

Trains the examples ``digits_snn_vit_sssa`` and ``digits_snn_vit_ssa`` (same size, T = 4)
from scratch with seeds 0, 1, 2, evaluates each on the test split, and prints test accuracy
mean ± std, energy (pJ per sample, 45 nm FP32 estimate) and SOPs per sample.

    python benchmarks/snn_vit_digits.py [--seeds 0 1 2] [--epochs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

PROJECTS = ("digits_snn_vit_sssa", "digits_snn_vit_ssa")


def run(name: str, seed: int, epochs: int | None, registry) -> dict[str, float]:
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session

    project = load_project(examples_dir() / name)
    project.folder = None  # never write weights or records into the examples
    project.training.seed = seed
    session = Session(project, registry)
    started = time.perf_counter()
    finished = session.train(epochs=epochs, fresh=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"{name} seed {seed}: {finished.error}")
    evaluated = session.evaluate().result()
    if evaluated.status != "ok":
        raise RuntimeError(f"{name} seed {seed}: {evaluated.error}")
    energy = evaluated.summary["energy"]
    return {"accuracy": evaluated.summary["accuracy"], "seconds": time.perf_counter() - started,
            "pj": energy["total_pj_per_sample"], "sops": energy["sops_per_sample"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the projects' epochs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from workbench.pluginhost.manager import load_plugins

    registry = load_plugins().registry
    results = {name: [run(name, seed, args.epochs, registry) for seed in args.seeds]
               for name in PROJECTS}
    table = {}
    for name, runs in results.items():
        acc = [r["accuracy"] for r in runs]
        table[name] = {
            "accuracy_mean": statistics.mean(acc),
            "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "pj_per_sample": statistics.mean(r["pj"] for r in runs),
            "sops_per_sample": statistics.mean(r["sops"] for r in runs),
            "seconds_per_run": statistics.mean(r["seconds"] for r in runs),
            "runs": runs,
        }
    if args.json:
        print(json.dumps(table))
        return 0
    print(f"digits 8x8, T = 4, seeds {args.seeds}; energy: 45 nm FP32 estimate")
    print(f"{'project':<22}{'test accuracy':>20}{'pJ/sample':>14}{'SOPs/sample':>14}"
          f"{'s/run':>8}")
    for name, row in table.items():
        acc = f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f} %"
        print(f"{name:<22}{acc:>20}{row['pj_per_sample']:>14.0f}{row['sops_per_sample']:>14.0f}"
              f"{row['seconds_per_run']:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
