"""``snn-workbench deploy``: fit check, build and a live run of a trained project on a backend.

A driver over :func:`workbench.core.runs.catalog.deploy` (backend, target and parameters
default to the project's last deployment): prints each step as it starts and the backend's
report, flattened by :func:`workbench.core.runs.reports.flatten_report`.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from workbench.cli._common import (
    UsageError,
    drive,
    exit_status,
    finish,
    load_session,
    parse_params,
    pct,
    show_log,
)


def _print_report(report: Any, out: TextIO) -> None:
    from workbench.core.runs.reports import flatten_report

    for key, text in flatten_report(report):
        print(f"  {key}: {text}", file=out)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    if not args.backend and not (session.project.deploy or {}).get("backend"):
        raise UsageError("--backend is required: the project records no deploy target yet "
                         "(see `snn-workbench plugins` for the backends)")
    steps = [0]

    def show(event: Any, write: Any) -> None:
        if event.name == "step":
            steps[0] += 1
            write(f"[{steps[0]}] {event.step}")
        else:
            show_log(event, write)

    summary = drive(catalog.deploy(session, backend=args.backend, target=args.target,
                                   params=parse_params(args.param), out=args.out,
                                   limit=args.limit), args, out, show)
    if not finish(summary, args, out):
        return exit_status(summary)
    print(f"deployed {session.project.name} with {summary['backend']} to {summary['target']}",
          file=out)
    print("report:", file=out)
    _print_report(summary.get("report") or {}, out)
    live, estimate = summary.get("live") or {}, summary.get("estimate") or {}
    if live:
        print("run on the test set:", file=out)
        _print_report(live, out)
    if estimate:
        print(f"estimate ({estimate['table']}): {estimate['pj_per_sample'] / 1e6:.4f} µJ/sample "
              f"for the torch model, accuracy {pct(estimate['accuracy'])}", file=out)
    print(f"files in {summary['out']}", file=out)
    return 0
