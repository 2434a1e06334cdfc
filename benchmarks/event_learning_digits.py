"""Five ways to train the same digits network, and what each costs in the backward pass (#14).

For 3 seeds each, through the CLI as a user would (``snn-workbench train <copy> --fresh --json``,
then ``evaluate --json``), on the embedded 8x8 digits with the same layer sizes (64-256-256-10):

- **BPTT** (``digits_mlp``): surrogate-gradient backpropagation through time, LIF neurons, T = 4;
- **MPD-ED** (``digits_mpd_ed``): the same network trained event-driven, the spike derivative
  non-zero only where a neuron fired;
- **STD-ED** (``digits_std_ed``): single-spike neurons firing inside their own window, trained
  through the analytical derivatives of their firing times (the DTA reading);
- **STDBP, ReL-PSP** (``digits_stdbp``): non-leaky single-spike neurons with a rectified-linear
  post-synaptic potential, trained through their closed-form spike times;
- **STDBP, alpha PSP**: ``digits_stdbp`` with the alpha kernel, the paper's comparison.

It prints test accuracy (last epoch), backward events per training sample against the dense
equivalent (the (neuron, step) pairs a time-step method visits), inference SOPs per sample
(``evaluate``'s energy ledger) and, for a 3-hidden-layer version of each network at its
initialisation, the gradient norm of every layer's weights on one batch of 64 training digits
(the paper's claim: the ReL-PSP kernel keeps gradients from vanishing or exploding with depth).
Every figure is mean ± std over the seeds. The backward counts and gradient norms are the
learning rules' own metrics (``backward_events``, ``dense_backward_events``,
``grad_norm.<layer>``), the figures the training panel and ``train --json`` show.

    python benchmarks/event_learning_digits.py [--seeds 3] [--methods bptt,mpd_ed,...] [--json]
"""

from __future__ import annotations

import argparse
import copy
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

#: method -> (example, what to change in its project.json)
METHODS = {
    "bptt": ("BPTT (surrogate gradient)", "digits_mlp", None),
    "mpd_ed": ("MPD-ED", "digits_mpd_ed", None),
    "std_ed": ("STD-ED (DTA reading)", "digits_std_ed", None),
    "stdbp": ("STDBP, ReL-PSP", "digits_stdbp", None),
    "stdbp_alpha": ("STDBP, alpha PSP", "digits_stdbp", {"kernel": "alpha"}),
}


def cli(*argv: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "workbench", *argv, "--json"],
                         capture_output=True, text=True, env=os.environ, check=False)
    if out.returncode:
        raise SystemExit(f"snn-workbench {' '.join(argv)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def project_copy(example: str, change: dict | None, seed: int, folder: Path) -> Path:
    from workbench.core.persistence.examples import examples_dir

    shutil.copytree(examples_dir() / example, folder)
    project = json.loads((folder / "project.json").read_text())
    project["training"]["seed"] = seed
    for node in project["graph"]["nodes"]:
        if change and node["spec"].endswith("_linear"):
            node["params"].update(change)
    (folder / "project.json").write_text(json.dumps(project))
    return folder


def train_run(method: str, seed: int, work: Path) -> dict[str, float]:
    _, example, change = METHODS[method]
    folder = project_copy(example, change, seed, work / f"{method}-{seed}")
    trained = cli("train", str(folder), "--fresh")
    last = trained["history"][-1]
    samples = train_samples(folder)
    energy = cli("evaluate", str(folder))["energy"]
    return {"accuracy": trained["test_accuracy"],
            "backward_events": last["backward_events"] / samples,
            "dense_events": last["dense_backward_events"] / samples,
            "sops": energy["sops_per_sample"], "seconds": trained["seconds"]}


def train_samples(folder: Path) -> int:
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.pluginhost.manager import load_plugins

    return len(Session(load_project(folder), load_plugins().registry).data().train)


def deep_gradient_norms(method: str, seed: int, work: Path) -> dict[str, float]:
    """A 3-hidden-layer version (hidden3 = a copy of hidden2) at its initialisation: the
    rule's ``grad_norm.<layer>`` after one training step on 64 training digits."""
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session
    from workbench.pluginhost.manager import load_plugins

    _, example, change = METHODS[method]
    folder = project_copy(example, change, seed, work / f"deep-{method}-{seed}")
    project = json.loads((folder / "project.json").read_text())
    nodes = project["graph"]["nodes"]
    index = next(i for i, n in enumerate(nodes) if n["id"] == "hidden2")
    third = copy.deepcopy(nodes[index])
    third["id"] = "hidden3"
    nodes.insert(index + 1, third)
    edges = project["graph"]["edges"]
    after = next(e for e in edges if e[0] == "hidden2")
    edges.remove(after)
    edges += [["hidden2", "hidden3"], ["hidden3", after[1]]]
    (folder / "project.json").write_text(json.dumps(project))
    session = Session(load_project(folder), load_plugins().registry)
    model = session.build(load_saved_weights=False)
    spec = session.rule_spec()
    params = {p.name: p.default for p in spec.params}
    params.update(project["training"]["rule"].get("params", {}))
    trainer = spec.create(model, epochs=1, steps_per_epoch=1, **params)
    split = session.data().train
    torch.manual_seed(seed)
    pick = np.random.default_rng(seed).choice(len(split), 64, replace=False)
    x, y = split.batch(pick)[:2]
    metrics = trainer.train_step(session.encoder()(x), y)
    # the read-out is named differently by each example (fc, out, readout): "output" in all
    return {(layer if layer.startswith("hidden") else "output"): value
            for layer, value in ((key.split(".", 1)[1], value) for key, value in metrics.items()
                                 if key.startswith("grad_norm."))}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["SNN_WORKBENCH_PROJECTS"] = str(work / "projects")
        for method in methods:
            runs = [train_run(method, seed, work) for seed in range(args.seeds)]
            norms = [deep_gradient_norms(method, seed, work) for seed in range(args.seeds)]
            print(f"{method}: {runs} {norms}", file=sys.stderr, flush=True)  # progress
            results[method] = {
                **{key: spread([r[key] for r in runs]) for key in runs[0]},
                "grad_norm": {layer: spread([n[layer] for n in norms]) for layer in norms[0]},
            }
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"mean ± std over {args.seeds} seeds; digits 64-256-256-10")
    print("| method | test accuracy | backward events / sample | dense equivalent | "
          "SOPs / sample (inference) | train time (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in methods:
        r = results[method]
        print(f"| {METHODS[method][0]} | {r['accuracy'][0]:.1%} ± {r['accuracy'][1]:.1%} | "
              f"{r['backward_events'][0]:,.0f} ± {r['backward_events'][1]:,.0f} | "
              f"{r['dense_events'][0]:,.0f} | {r['sops'][0]:,.0f} ± {r['sops'][1]:,.0f} | "
              f"{r['seconds'][0]:.0f} |")
    print()
    print("gradient norm per layer at initialisation, 3 hidden layers (one batch of 64)")
    layers = list(next(iter(results.values()))["grad_norm"])
    print("| method | " + " | ".join(layers) + " |")
    print("|---|" + "---:|" * len(layers))
    for method in methods:
        norms = results[method]["grad_norm"]
        print(f"| {METHODS[method][0]} | " + " | ".join(
            f"{norms[layer][0]:.3g} ± {norms[layer][1]:.2g}" if layer in norms else "-"
            for layer in layers) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
