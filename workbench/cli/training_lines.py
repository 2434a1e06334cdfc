"""What a training run prints on the terminal, for ``train`` and ``submit`` alike: a line per
epoch, a note when it continues from saved weights, its warnings, and the closing lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from workbench.cli._common import Show, Write, pct, show_log


def training_show(total_epochs: int, continuing: Callable[[], bool]) -> Show:
    """What a training run's events print: a line per epoch, a note when it continues from
    saved weights (``continuing()``, asked when the run starts), and its warnings."""

    def show(event: Any, write: Write) -> None:
        if event.name == "metric" and event.epoch_end:
            v = event.values
            write(f"epoch {event.epoch:>3}/{total_epochs}  loss {v['train_loss']:.4f}  "
                  f"train {pct(v['train_accuracy'])}  test {pct(v['test_accuracy'])}")
        elif event.name == "run_started" and continuing():
            write("continuing from the saved weights (--fresh starts over)")
        elif event.name == "log" and event.level != "info":
            show_log(event, write)

    return show


def print_training(summary: dict[str, Any], out: TextIO) -> None:
    """A training run's last lines: its status, epochs, time and accuracy, and the weights."""
    line = (f"{summary['status']}: {summary.get('epochs', 0)} epoch(s) in "
            f"{summary.get('seconds', 0):.1f} s")
    if "test_accuracy" in summary:
        line += (f", test accuracy {pct(summary['test_accuracy'])} "
                 f"(best {pct(summary['best_test_accuracy'])})")
    print(line, file=out)
    if summary.get("weights"):
        print(f"weights saved to {summary['weights']}", file=out)
