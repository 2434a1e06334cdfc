"""``snn-workbench submit``: train a project on a cluster and bring its weights back.

A driver over :func:`workbench.core.runs.catalog.submit`: ``--ray URL`` is the runner
``wb_ray.ray`` with that address; ``--runner ID --param KEY=VALUE`` picks another runner
plugin. The job's events are shown as ``train`` shows its own; Ctrl+C stops the job.
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
)
from workbench.cli.training_lines import print_training, training_show

#: the runner ``--ray`` stands for
RAY_RUNNER = "wb_ray.ray"


def runner_choice(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The runner id and its parameters from ``--ray`` or ``--runner``/``--param``."""
    params = parse_params(args.param)
    if args.ray is not None:
        if args.runner not in (None, RAY_RUNNER):
            raise UsageError(f"--ray is the runner {RAY_RUNNER}; leave out --runner "
                             f"{args.runner} or --ray")
        return RAY_RUNNER, {**params, "address": args.ray}
    if args.runner is None:
        raise UsageError("where to? give --ray http://HOST:8265 (a Ray cluster's dashboard) "
                         "or --runner ID (see `snn-workbench plugins`)")
    return args.runner, params


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    runner, params = runner_choice(args)
    session = load_session(args)
    project = session.project
    total = project.training.epochs if args.epochs is None else args.epochs
    weights = project.weights_path
    continuing = not args.fresh and weights is not None and weights.is_file()
    summary = drive(catalog.submit(session, runner=runner, params=params, epochs=args.epochs,
                                   fresh=args.fresh),
                    args, out, training_show(total, lambda: continuing))
    if args.json:
        finish(summary, args, out)
    else:
        print_training(summary, out)
    return exit_status(summary)
