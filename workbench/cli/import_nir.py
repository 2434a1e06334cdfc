"""``snn-workbench import-nir``: turn a NIR graph file into a new project folder, through
:func:`workbench.core.runs.catalog.import_file`. Needs no project of its own."""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import drive, exit_status, finish, load_host, show_log
from workbench.cli.force import occupied_needs_force


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    host = load_host(args)
    with occupied_needs_force():
        params = {"dt": args.dt} if args.dt is not None else None
        run_ = catalog.import_file(host.registry, path=args.input, out=args.out, fmt="nir",
                                   overwrite=args.force, params=params)
        summary = drive(run_, args, out, show_log)
    if not finish(summary, args, out):
        return exit_status(summary)
    print(f"imported {args.input} as the project {summary['project']}", file=out)
    return 0
