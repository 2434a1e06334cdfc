"""``snn-workbench export-nir``: write a project's network (its trained weights when it has
them) as a NIR graph file, through :func:`workbench.core.runs.catalog.export`."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from workbench.cli._common import drive, exit_status, finish, load_session, log


def _show(event: Any, write: Any) -> None:
    if event.name == "log" and event.level != "info":
        log.warning(event.message)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    summary = drive(catalog.export(session, path=args.out, fmt="nir"), args, out, _show)
    if not finish(summary, args, out):
        return exit_status(summary)
    print(f"wrote {summary['file']}", file=out)
    for key, value in summary.items():
        if key not in ("file", "status"):
            print(f"  {key}: {value}", file=out)
    return 0
