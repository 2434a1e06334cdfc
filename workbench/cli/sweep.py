"""``snn-workbench sweep``: train one variant of a project per combination of some settings'
values, here or as jobs on a cluster, and compare them.

A driver over :func:`workbench.core.runs.catalog.sweep`; ``--over SETTING=V1,V2`` gives an
axis (values read as JSON when they parse, as text otherwise), ``--ray``/``--runner`` send the
trials to a cluster as :mod:`workbench.cli.submit` sends a training. Prints a line per trial and
a table of the trials, best first.
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
    pct,
    show_log,
)
from workbench.cli.force import occupied_needs_force
from workbench.cli.submit import runner_choice


def parse_axis(text: str) -> Any:
    """``SETTING=V1,V2,...`` as a :class:`~workbench.core.runs.sweep.SweepAxis`."""
    from workbench.core.runs.sweep import SweepAxis, parse_values

    path, sep, raw = text.partition("=")
    if not sep or not path.strip() or not raw.strip():
        raise UsageError(f"--over {text!r}: expected SETTING=V1,V2,... (e.g. lr=0.001,0.01)")
    return SweepAxis(path.strip(), parse_values(raw, where=f"--over {text}"))


def list_settings(session: Any, out: TextIO) -> int:
    from workbench.core.model.setting_paths import settings

    found = settings(session.project, session.lookup)
    width = max(len(s.path) for s in found)
    print(f"{'setting':<{width}}  {'now':>10}  what", file=out)
    for s in found:
        print(f"{s.path:<{width}}  {_value_text(s.value if s.value is not None else s.param.default):>10}"
              f"  {s.title}", file=out)
    return 0


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(event: Any, write: Any) -> None:
    if event.name == "step":
        write(event.step)
    elif event.name == "metric" and event.epoch_end:
        v = event.values
        write(f"  epoch {event.epoch:>3}  loss {v['train_loss']:.4f}  "
              f"test {pct(v['test_accuracy'])}")
    elif event.name == "log":
        show_log(event, write) if event.level != "info" else write(f"  {event.message}")


def print_trials(summary: dict[str, Any], out: TextIO) -> None:
    """The trials, most accurate first; failed ones last with their reason."""
    from workbench.core.model.quantity import format_energy_pj
    from workbench.core.runs.sweep import values_text

    rows = sorted(summary["trials"], key=lambda r: (r["status"] != "ok", -r.get("accuracy", 0)))
    print(f"{'trial':<22}{'accuracy':>10}{'energy/sample':>16}{'time':>9}  values", file=out)
    for row in rows:
        values = values_text(row["values"])
        if row["status"] == "ok":
            print(f"{row['trial']:<22}{pct(row['accuracy']):>10}"
                  f"{format_energy_pj(row['total_pj_per_sample']):>16}{row['seconds']:>8.1f}s"
                  f"  {values}", file=out)
        else:
            print(f"{row['trial']:<22}{row['status']:>10}{'':>16}{'':>9}  {values}"
                  + (f"  ({row['error']})" if row["error"] else ""), file=out)
    if summary.get("best"):
        print(f"best: {summary['best']}", file=out)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    if args.list:
        return list_settings(session, out)
    if not args.over:
        raise UsageError("give at least one --over SETTING=V1,V2 (--list shows the settings)")
    runner, params = (runner_choice(args) if args.ray is not None or args.runner is not None
                      else (None, {}))
    with occupied_needs_force():
        summary = drive(catalog.sweep(session, axes=[parse_axis(a) for a in args.over],
                                      runner=runner, params=params, epochs=args.epochs,
                                      name=args.name, limit=args.limit,
                                      parallel=args.parallel, overwrite=args.force),
                        args, out, _show)
    if args.json:
        finish(summary, args, out)
    else:
        print(summary["status"], file=out)
        print_trials(summary, out)
    return exit_status(summary)
