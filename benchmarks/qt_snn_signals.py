"""QT-SNN against its full-precision twin and a non-spiking baseline on real signals (issue #13).

For JapaneseVowels (speech) and SelfRegulationSCP1 (EEG) and 3 seeds each, it trains

- **QT-SNN**: the shipped example ``<set>_qt_snn`` (TAE ternary input spikes, 4-bit LSQ weights,
  ternary LIF neurons with 4-bit membranes), through the CLI as a user would:
  ``snn-workbench train <copy> --fresh --json`` then ``evaluate --json`` and ``info --json``;
- **its twin** ``<set>_snn``: the same TAE input and layer sizes, float weights, binary LIF (B)
  spikes, float membranes;
- **a GRU** a user would pick instead (one GRU layer of 64 units and a linear read-out, torch,
  Adam, the same epochs and batch size, on the same z-scored signals),

and prints test accuracy, model memory (weights at their bit widths plus the membrane or hidden
state held between steps: 4 bits per QT-SNN neuron, 32 per twin neuron and GRU unit; 10^6-byte
MB as in the papers), synaptic operations (SOPs) and MACs per sample and the energy estimate per
sample (pJ; the project's 45 nm cost table for the SNNs, 4.6 pJ per FP32 MAC for the GRU), each
as mean ± std over the seeds.

    python benchmarks/qt_snn_signals.py [--seeds 3] [--sets vowels,eeg] [--json]

Takes about 10 minutes on 2 cores (most of it the EEG networks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

E_MAC_FP32_PJ = 4.6  # Horowitz, ISSCC 2014, 45 nm: FP32 multiply 3.7 + add 0.9
SETS = {"vowels": "JapaneseVowels", "eeg": "SelfRegulationSCP1"}


def cli(*argv: str) -> dict:
    env = {**os.environ, "SNN_WORKBENCH_PROJECTS": os.environ.get("SNN_WORKBENCH_PROJECTS",
                                                                  tempfile.gettempdir())}
    out = subprocess.run([sys.executable, "-m", "workbench", *argv, "--json"],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def snn_run(example: str, seed: int, work: Path) -> dict[str, float]:
    from workbench.core.persistence.examples import examples_dir

    folder = work / f"{example}-{seed}"
    shutil.copytree(examples_dir() / example, folder)
    project = json.loads((folder / "project.json").read_text())
    project["training"]["seed"] = seed
    (folder / "project.json").write_text(json.dumps(project))
    trained = cli("train", str(folder), "--fresh")
    energy = cli("evaluate", str(folder))["energy"]
    info = cli("info", str(folder))
    neurons = sum(int(np.prod(layer["out_shape"])) for layer in info["layers"]
                  if "qt_linear" in layer["spec"] or "spiking" in layer["spec"])
    membrane_bits = 4 if "qt_snn" in example else 32
    return {"accuracy": trained["test_accuracy"],
            "memory_mb": (info["bytes"] + neurons * membrane_bits / 8) / 1e6,
            "sops": energy["sops_per_sample"], "macs": energy["macs_per_sample"],
            "pj": energy["total_pj_per_sample"]}


def gru_run(set_name: str, seed: int, epochs: int, batch: int,
            data_params: dict) -> dict[str, float]:
    from wb_datasets.ts_datasets import load_eeg_scp1, load_japanese_vowels

    # the example's own data parameters (the EEG's downsampling): the same signals as the SNNs
    load = load_japanese_vowels if set_name == "vowels" else load_eeg_scp1
    splits = load(**data_params)
    torch.manual_seed(seed)
    x_train = torch.from_numpy(np.asarray(splits.train.x)).permute(0, 2, 1)  # [N, L, C]
    y_train = torch.from_numpy(np.asarray(splits.train.y)).long()
    x_test = torch.from_numpy(np.asarray(splits.test.x)).permute(0, 2, 1)
    y_test = torch.from_numpy(np.asarray(splits.test.y)).long()
    channels, steps, classes, hidden = x_train.shape[2], x_train.shape[1], int(y_train.max()) + 1, 64
    gru = torch.nn.GRU(channels, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, classes)
    params = [*gru.parameters(), *head.parameters()]
    optimiser = torch.optim.Adam(params, lr=5e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), batch):
            pick = order[start:start + batch]
            out, _ = gru(x_train[pick])
            loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y_train[pick])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        out, _ = gru(x_test)
        accuracy = float((head(out[:, -1]).argmax(-1) == y_test).float().mean())
    n_params = sum(p.numel() for p in params)
    macs = steps * 3 * (channels * hidden + hidden * hidden) + hidden * classes
    return {"accuracy": accuracy, "memory_mb": (n_params * 4 + hidden * 4) / 1e6, "sops": 0.0,
            "macs": float(macs), "pj": macs * E_MAC_FP32_PJ}


def spread(runs: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    return {key: (statistics.mean(r[key] for r in runs),
                  statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0)
            for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sets", default="vowels,eeg")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["SNN_WORKBENCH_PROJECTS"] = str(work / "projects")
        for set_name in args.sets.split(","):
            example = json.loads((Path(__import__("workbench").__file__).parent / "resources" /
                                  "projects" / f"{set_name}_qt_snn" / "project.json").read_text())
            epochs, batch = example["training"]["epochs"], example["training"]["batch_size"]
            seeds = range(args.seeds)
            results[set_name] = {
                "QT-SNN": spread([snn_run(f"{set_name}_qt_snn", s, work) for s in seeds]),
                "full-precision twin": spread([snn_run(f"{set_name}_snn", s, work)
                                               for s in seeds]),
                "GRU (64 units)": spread([gru_run(set_name, s, epochs, batch,
                                                  example["dataset"]["params"])
                                          for s in seeds]),
            }
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"mean ± std over {args.seeds} seeds")
    print("| signals | model | test accuracy | memory (MB) | SOPs / sample | MACs / sample | "
          "pJ / sample |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for set_name, models in results.items():
        for model, f in models.items():
            acc, mem, sops, macs, pj = (f[k] for k in ("accuracy", "memory_mb", "sops", "macs",
                                                       "pj"))
            print(f"| {SETS[set_name]} | {model} | {100 * acc[0]:.1f} ± {100 * acc[1]:.1f} % | "
                  f"{mem[0]:.4f} | {sops[0]:,.0f} ± {sops[1]:,.0f} | {macs[0]:,.0f} | "
                  f"{pj[0]:,.0f} ± {pj[1]:,.0f} |")
        qt, twin = models["QT-SNN"]["memory_mb"][0], models["full-precision twin"]["memory_mb"][0]
        print(f"| {SETS[set_name]} | memory, QT-SNN vs twin | | {100 * (1 - qt / twin):.1f} % "
              "less | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
