"""``snn-workbench evaluate``: test accuracy and the energy ledger of the trained network.

A driver over :func:`workbench.core.runs.catalog.evaluate`: prints the accuracy, the energy per
sample with its cost table, and the operations per layer.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import drive, exit_status, finish, load_session, log, pct
from workbench.core.model.quantity import format_energy_pj


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
    print(f"energy (estimate, {energy['table_name']}): "
          f"{format_energy_pj(energy['total_pj_per_sample'])}/sample = "
          f"{energy['macs_per_sample']:.0f} MACs + {energy['sops_per_sample']:.0f} SOPs, each "
          "layer priced at its width (below)", file=out)
    print(f"source: {energy['source']}", file=out)
    print(f"SOP counting: {energy.get('sop_counting', 'exact')} (docs/energy.md)", file=out)
    if energy.get("pricing"):  # reports saved before the ledger priced widths have none
        print(f"pricing: {energy['pricing']}", file=out)
    print(f"{'layer':<18}{'input':>8}{'rate':>8}{'MACs':>12}{'SOPs':>12}{'priced at':>12}"
          f"{'E_MAC':>10}{'E_AC':>10}{'energy':>12}", file=out)
    for layer in energy["layers"]:
        # reports saved before the ledger priced widths have no per-layer prices
        e_mac, e_ac = layer.get("e_mac_pj", energy["e_mac_pj"]), layer.get("e_ac_pj",
                                                                           energy["e_ac_pj"])
        print(f"{layer['name']:<18}{layer['input']:>8}{layer['firing_rate']:>8.3f}"
              f"{layer['macs']:>12.0f}{layer['sops']:>12.0f}"
              f"{layer.get('priced_at', energy.get('precision', '')):>12}"
              f"{format_energy_pj(e_mac):>10}{format_energy_pj(e_ac):>10}"
              f"{format_energy_pj(layer['pj']):>12}", file=out)
    for neuron in energy["neurons"]:
        print(f"  neurons {neuron['name']}: firing rate {neuron['firing_rate']:.3f}", file=out)
    return 0
