"""SNN-ViT on the embedded digits: SSSA against the Spikformer SSA baseline, 3 seeds each.

Trains the examples ``digits_snn_vit_sssa`` and ``digits_snn_vit_ssa`` (same size, T = 4)
from scratch with seeds 0, 1, 2, evaluates each on the test split, and prints test accuracy
mean ± std, the first epoch at 95 % test accuracy, energy (pJ per sample, the project's cost
table and SOP counting) and SOPs per sample. For SSSA it also prints the saccade's mask rate
per time step (at the first training forward, and on the test set after training), the
accuracy of the trained network evaluated in ``v2`` form and the share of mask entries on
which the two forms agree.

    python benchmarks/snn_vit_digits.py [--seeds 0 1 2] [--epochs N] [--projects NAME ...]
                                        [--set KEY=VALUE ...] [--threads N] [--json]

``--set`` overrides a parameter of every SSSA block (``--set threshold_rule=median``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

PROJECTS = ("digits_snn_vit_sssa", "digits_snn_vit_ssa")
BLOCK = "wb_snn_vit.block"
THRESHOLD = 0.95


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word: a choice


def test_inputs(session, split: str = "test", limit: int | None = None):
    """``(encoded inputs [T, B, ...], labels)`` of a whole split (or its first ``limit``)."""
    import torch

    data = getattr(session.data(), split)
    x = torch.as_tensor(data.x[:limit] * data.scale + data.offset, dtype=torch.float32)
    return session.encoder()(x), torch.as_tensor(data.y[:limit])


def masks_of(model, x, mode: str = "train_v1"):
    """``(scores, masks [T, entries])``: the network's output on ``x`` and the saccade masks of
    all its SSSA cores, flattened per step (grad off; the cores are left in ``train_v1``)."""
    import torch
    from wb_snn_vit.attention import SSSA

    cores = [m for m in model.modules() if isinstance(m, SSSA)]
    found: list[torch.Tensor] = []
    handles = [core.register_forward_hook(lambda m, a, out: found.append(out[1]["mask"]))
               for core in cores]
    try:
        for core in cores:
            core.mode, core.record_maps = mode, True
        with torch.no_grad():
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
        for core in cores:
            core.mode, core.record_maps = "train_v1", False
    return out, torch.cat([m.flatten(1) for m in found], 1)


def first_forward_rates(session, batch: int) -> list[float]:
    """Mask rate per step at the first training forward of a fresh network (the forward that
    initialises the saccadic thresholds), on the first ``batch`` training samples."""
    model = session.build(load_saved_weights=False)
    model.train()
    x, _ = test_inputs(session, "train", batch)
    return masks_of(model, x)[1].mean(1).tolist()


def saccade_stats(session) -> dict[str, Any]:
    """Mask rate per step, v2 accuracy and v1/v2 mask agreement of the trained network on the
    test split (one batch)."""
    model = session.model.eval()
    x, labels = test_inputs(session)
    masks, accuracy = {}, {}
    for mode in ("train_v1", "v2"):
        out, masks[mode] = masks_of(model, x, mode)
        accuracy[mode] = float((session.readout()(out).argmax(-1) == labels).float().mean())
    return {"mask_rate_per_step": masks["train_v1"].mean(1).tolist(),
            "v2_accuracy": accuracy["v2"],
            "v1_v2_agreement": float((masks["train_v1"] == masks["v2"]).float().mean())}


def run(name: str, seed: int, epochs: int | None, registry, overrides: dict[str, Any],
        threads: int | None) -> dict[str, Any]:
    from workbench.core.persistence.examples import examples_dir
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session

    project = load_project(examples_dir() / name)
    project.folder = None  # never write weights or records into the examples
    project.training.seed = seed
    if threads is not None:
        project.compute.threads = threads
    sssa = False
    for node in project.graph.nodes:
        if node.spec == BLOCK and node.params.get("attention", "sssa") == "sssa":
            node.params.update(overrides)
            sssa = True
    session = Session(project, registry)
    first_rates = first_forward_rates(session, project.training.batch_size) if sssa else None
    started = time.perf_counter()
    finished = session.train(epochs=epochs, fresh=True).result()
    if finished.status != "ok":
        raise RuntimeError(f"{name} seed {seed}: {finished.error}")
    evaluated = session.evaluate().result()
    if evaluated.status != "ok":
        raise RuntimeError(f"{name} seed {seed}: {evaluated.error}")
    energy = evaluated.summary["energy"]
    history = finished.summary["history"]
    reached = [i + 1 for i, h in enumerate(history) if h["test_accuracy"] >= THRESHOLD]
    result = {"accuracy": evaluated.summary["accuracy"],
              "seconds": time.perf_counter() - started,
              "first_epoch_95": reached[0] if reached else None,
              "pj": energy["total_pj_per_sample"], "sops": energy["sops_per_sample"],
              "table": energy["table_name"], "sop_counting": energy["sop_counting"]}
    if sssa:
        result.update(saccade_stats(session), first_forward_mask_rate_per_step=first_rates)
    return result


def spread(values: list[float]) -> str:
    """``mean (min–max)`` with two decimals."""
    return f"{statistics.mean(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the projects' epochs")
    parser.add_argument("--projects", nargs="+", choices=PROJECTS, default=list(PROJECTS))
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append",
                        default=[], metavar="KEY=VALUE",
                        help="a parameter of every SSSA block, e.g. threshold_rule=median")
    parser.add_argument("--threads", type=int, help="CPU threads per run (default: the "
                        "projects' setting, one per core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from workbench.pluginhost.manager import load_plugins

    registry = load_plugins().registry
    overrides = dict(args.overrides)
    results = {name: [run(name, seed, args.epochs, registry, overrides, args.threads)
                      for seed in args.seeds]
               for name in args.projects}
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
    first = next(iter(results.values()))[0]
    print(f"digits 8x8, T = 4, seeds {args.seeds}, SSSA overrides {overrides or 'none'}, "
          f"threads {args.threads or 'default'}; energy: {first['table']} estimate, "
          f"SOP counting {first['sop_counting']}")
    print(f"{'project':<22}{'test accuracy':>20}{'pJ/sample':>14}{'SOPs/sample':>14}"
          f"{'s/run':>8}  first epoch >= 95 %")
    for name, row in table.items():
        acc = f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f} %"
        reached = ", ".join(str(r["first_epoch_95"]) for r in row["runs"])
        print(f"{name:<22}{acc:>20}{row['pj_per_sample']:>14.0f}{row['sops_per_sample']:>14.0f}"
              f"{row['seconds_per_run']:>8.1f}  {reached}")
    for name, runs in results.items():
        if "mask_rate_per_step" not in runs[0]:
            continue
        for key, when in (("first_forward_mask_rate_per_step", "at the first training forward"),
                          ("mask_rate_per_step", "after training, test set")):
            steps = zip(*(r[key] for r in runs))
            print(f"{name}: mask rate per step {when}, mean (min–max over seeds): "
                  + "; ".join(spread(list(step)) for step in steps))
        v2 = [100 * r["v2_accuracy"] for r in runs]
        print(f"{name}: evaluated in v2 form {statistics.mean(v2):.2f} "
              f"({min(v2):.2f}–{max(v2):.2f}) % accuracy; v1/v2 mask agreement "
              + spread([r["v1_v2_agreement"] for r in runs]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
