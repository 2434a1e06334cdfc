"""``snn-workbench compress``: compress a trained project into a new, smaller project.

A driver over :func:`workbench.core.runs.catalog.compress` (``--method``) or
:func:`~workbench.core.runs.catalog.replay` (``--replay VARIANT``: the passes recorded in a
variant, re-run on PROJECT); prints the before/after table of
:func:`workbench.core.runs.reports.comparison_rows`.
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
from workbench.cli.force import occupied_needs_force


def _start(session: Any, args: argparse.Namespace) -> Any:
    from workbench.core.runs import catalog

    if args.replay:
        if args.method:
            raise UsageError("give either --method or --replay, not both")
        return catalog.replay(session, variant=args.replay, out=args.out, overwrite=args.force)
    if not args.method:
        raise UsageError("--method is required (see `snn-workbench plugins` for the "
                         "compression methods)")
    return catalog.compress(session, method=args.method, params=parse_params(args.param),
                            out=args.out, name=args.name, limit=args.limit,
                            overwrite=args.force)


def _show(event: Any, write: Any) -> None:
    if event.name == "metric" and event.epoch_end:
        v = event.values
        write(f"  fine-tune epoch {event.epoch}: loss {v['train_loss']:.4f}, "
              f"test {pct(v['test_accuracy'])}")
    else:
        show_log(event, write)


def print_comparison(before: dict[str, Any], after: dict[str, Any], out: TextIO) -> None:
    """The before/after table, one figure a line."""
    from workbench.core.runs.reports import comparison_rows

    print(f"{'':<30}{'before':>24}{'after':>24}  change", file=out)
    for figure, b, a, change in comparison_rows(before, after):
        # lower-case figure names, as every other line of this command line reads
        print(f"{figure[:1].lower() + figure[1:]:<30}{b:>24}{a:>24}  {change}".rstrip(),
              file=out)


def run(args: argparse.Namespace, out: TextIO) -> int:
    session = load_session(args)
    with occupied_needs_force():
        summary = drive(_start(session, args), args, out, _show)
    if not finish(summary, args, out):
        return exit_status(summary)
    print_comparison(summary["before"], summary["after"], out)
    from workbench.core.runs.reports import precision_text

    precision = precision_text(summary.get("precision"))
    if precision:
        print(precision, file=out)
    if summary.get("project"):
        print(f"compressed project saved to {summary['project']}", file=out)
    return 0
