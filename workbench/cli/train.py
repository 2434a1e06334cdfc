"""``snn-workbench train``: train a project's network and save its weights.

A driver over :func:`workbench.core.runs.catalog.train`; the run saves the weights as the
project's (unless ``--no-save``) and names the file in its summary.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from workbench.cli._common import drive, exit_status, finish, load_session, pct, show_log


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs import catalog

    session = load_session(args)
    total_epochs = session.project.training.epochs if args.epochs is None else args.epochs

    def show(event: Any, write: Any) -> None:
        if event.name == "metric" and event.epoch_end:
            v = event.values
            write(f"epoch {event.epoch:>3}/{total_epochs}  loss {v['train_loss']:.4f}  "
                  f"train {pct(v['train_accuracy'])}  test {pct(v['test_accuracy'])}")
        elif event.name == "run_started" and session.weights_loaded:
            write("continuing from the saved weights (--fresh starts over)")
        elif event.name == "log" and event.level != "info":
            show_log(event, write)

    summary = drive(catalog.train(session, epochs=args.epochs, fresh=args.fresh,
                                  save_weights=not args.no_save), args, out, show)
    if args.json:
        finish(summary, args, out)
        return exit_status(summary)
    line = (f"{summary['status']}: {summary.get('epochs', 0)} epoch(s) in "
            f"{summary.get('seconds', 0):.1f} s")
    if "test_accuracy" in summary:
        line += (f", test accuracy {pct(summary['test_accuracy'])} "
                 f"(best {pct(summary['best_test_accuracy'])})")
    print(line, file=out)
    if summary.get("weights"):
        print(f"weights saved to {summary['weights']}", file=out)
    return exit_status(summary)
