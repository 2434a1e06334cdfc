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
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.quantity import format_energy_pj


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
    fit_errors: list[str] = []

    def show(event: Any, write: Any) -> None:
        if event.name == "step":
            steps[0] += 1
            write(f"[{steps[0]}] {event.step}")
        else:
            if event.name == "log" and event.level == "error" and not steps[0]:
                fit_errors.append(event.message)  # the fit check's problems come before step 1
            show_log(event, write)

    try:
        summary = drive(catalog.deploy(session, backend=args.backend, target=args.target,
                                       params=parse_params(args.param), out=args.out,
                                       limit=args.limit), args, out, show)
    except WorkbenchError as exc:
        if fit_errors and exc.message.startswith("does not fit "):
            # each problem was printed as it was found: the last line counts them, once
            verdict = exc.message.partition(":")[0]
            first = f" (the first at {exc.where})" if exc.where else ""
            raise WorkbenchError(f"{session.project.name} {verdict}: {len(fit_errors)} "
                                 f"problem{'s' if len(fit_errors) > 1 else ''}{first}, listed "
                                 "above") from None
        raise
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
        print(f"estimate ({estimate['table']}): {format_energy_pj(estimate['pj_per_sample'])}"
              f"/sample for the torch model, accuracy {pct(estimate['accuracy'])}", file=out)
    print(f"files in {summary['out']}", file=out)
    return 0
