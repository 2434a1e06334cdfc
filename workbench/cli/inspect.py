"""``snn-workbench inspect``: spikes and membranes of every neuron layer for one test sample.

A driver over :func:`workbench.core.runs.catalog.probe`; ``--out`` makes the run write the
spikes and membranes to an ``.npz`` file.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import drive, exit_status, finish, load_session


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    summary = drive(catalog.probe(session, sample=args.sample, layers=args.layer or None,
                                  out=args.out), args, out)
    if not finish(summary, args, out):
        return exit_status(summary)
    print(f"sample {summary['sample']}: label {summary['label']}, "
          f"predicted {summary['predicted']}", file=out)
    for name, layer in summary["layers"].items():
        print(f"  {name:<16} {str(layer['shape']):<14} {layer['spikes']:>7} spikes  "
              f"rate {layer['firing_rate']:.3f}", file=out)
    if summary.get("out"):
        print(f"spikes and membranes written to {summary['out']}", file=out)
    return 0
