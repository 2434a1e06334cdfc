"""``snn-workbench train``: train a project's network and save its weights.

A driver over :func:`workbench.core.runs.catalog.train`; the run saves the weights as the
project's (unless ``--no-save``) and names the file in its summary. ``--nproc N`` starts the
command again on N processes through torchrun; under torchrun, ranks other than 0 print nothing
but their errors (:mod:`workbench.core.runs.distributed`).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TextIO

from workbench.cli._common import UsageError, drive, exit_status, finish, load_session
from workbench.cli.training_lines import print_training, training_show


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.nproc is not None and args.nproc != 1:
        return _launch(args)
    from workbench.core.runs.distributed import is_main

    if is_main():
        return _train(args, out)
    # another rank: the same run, quiet (its JSON lines, without a progress bar, go nowhere)
    logging.getLogger().setLevel(logging.ERROR)
    args.json = True
    with open(os.devnull, "w", encoding="utf-8") as nowhere:
        return _train(args, nowhere)


def _train(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    total_epochs = session.project.training.epochs if args.epochs is None else args.epochs
    show = training_show(total_epochs, lambda: session.weights_loaded)
    summary = drive(catalog.train(session, epochs=args.epochs, fresh=args.fresh,
                                  save_weights=not args.no_save), args, out, show)
    if args.json:
        finish(summary, args, out)
    else:
        print_training(summary, out)
    return exit_status(summary)


def _launch(args: argparse.Namespace) -> int:
    """``--nproc N``: this command without it, on N ranks (torchrun); the first failed rank's
    exit status."""
    from workbench.core.runs import distributed

    option = f"--nproc {args.nproc}"
    if args.nproc < 1:
        raise UsageError("must be 1 or more", where=option)
    if distributed.launched():
        raise UsageError("this command already runs under torchrun; leave out --nproc",
                         where=option)
    if args.device == "mps":
        raise UsageError("processes share the work on the CPU or on CUDA GPUs, not on Apple's "
                         "MPS; use --device cpu", where=option)
    return distributed.launch(args.nproc, child_argv(args))


def child_argv(args: argparse.Namespace) -> list[str]:
    """``workbench train …``: the command each rank runs (the project already resolved)."""
    argv = ["workbench", "train", str(args.project)]
    for module in args.plugin or ():
        argv += ["--plugin", module]
    if args.epochs is not None:
        argv += ["--epochs", str(args.epochs)]
    for flag in ("fresh", "no_save", "json", "debug"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    for option in ("device", "precision"):
        if getattr(args, option):
            argv += [f"--{option}", getattr(args, option)]
    return argv
