"""``snn-workbench evaluate``: test accuracy and the energy ledger of the trained network.

A driver over :func:`workbench.core.runs.catalog.evaluate`: prints the accuracy, the energy per
sample with its cost table, and the operations per layer.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import drive, exit_status, finish, load_session, log, pct


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    weights = session.project.weights_path
    if weights is None or not weights.exists():
        log.warning("%s has no trained weights; evaluating the untrained network",
                    session.project.folder or "the project")
    summary = drive(catalog.evaluate(session, limit=args.limit, table=args.table), args, out)
    summary["weights_loaded"] = session.weights_loaded
    if not finish(summary, args, out):
        return exit_status(summary)
    energy = summary["energy"]
    print(f"accuracy {pct(summary['accuracy'])} on {summary['samples']} test samples", file=out)
    print(f"energy (estimate, {energy['table_name']}): {energy['total_pj_per_sample'] / 1e6:.4f} "
          f"µJ/sample  = {energy['macs_per_sample']:.0f} MACs × {energy['e_mac_pj']} pJ + "
          f"{energy['sops_per_sample']:.0f} SOPs × {energy['e_ac_pj']} pJ", file=out)
    print(f"source: {energy['source']}", file=out)
    print(f"{'layer':<18}{'input':>8}{'rate':>8}{'MACs':>12}{'SOPs':>12}{'pJ':>14}", file=out)
    for layer in energy["layers"]:
        print(f"{layer['name']:<18}{layer['input']:>8}{layer['firing_rate']:>8.3f}"
              f"{layer['macs']:>12.0f}{layer['sops']:>12.0f}{layer['pj']:>14.1f}", file=out)
    for neuron in energy["neurons"]:
        print(f"  neurons {neuron['name']}: firing rate {neuron['firing_rate']:.3f}", file=out)
    return 0
