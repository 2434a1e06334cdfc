"""``snn-workbench inspect``: spikes and membranes of every neuron layer for one test sample.

A driver over :func:`workbench.core.runs.catalog.probe`; ``--out`` makes the run write the
spikes and membranes to an ``.npz`` file. For a time-to-first-spike network the probe also
carries each spike-time layer's firing times and the output race (which class fired first),
printed here as the summary has them and written by ``--out`` as ``<layer>/spike_times``.

``--signal`` compares the signal encoders on the sample instead, with
:func:`workbench.core.runs.signal.compare_encoders` (the app's Signal view does the same). Not a
run, like ``info``: no network is built, only the encoders encode and decode one sample.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any, TextIO

from workbench.cli._common import UsageError, drive, emit, exit_status, finish, load_session
from workbench.core.model.errors import WorkbenchError


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.signal:
        return run_signal(args, out)
    for option, given in (("--encoders", args.encoders), ("--csv", args.csv)):
        if given:
            raise UsageError(f"{option} goes with --signal (the encoders' comparison)")
    from workbench.core.runs import catalog

    session = load_session(args)
    summary = drive(catalog.probe(session, sample=args.sample, layers=args.layer or None,
                                  out=args.out), args, out)
    if not finish(summary, args, out):
        return exit_status(summary)
    print(f"sample {summary['sample']}: label {summary['label']}, "
          f"predicted {summary['predicted']}", file=out)
    for name, layer in summary["layers"].items():
        print(f"  {name:<16} {layer['shape']!s:<14} {layer['spikes']:>7} spikes  "
              f"rate {layer['firing_rate']:.3f}", file=out)
    if summary.get("spike_times"):
        _print_spike_times(summary["spike_times"], out)
    if summary.get("race"):
        _print_race(summary["race"], summary["label"], out)
    if summary.get("out"):
        what = "spikes, membranes and spike times" if summary.get("spike_times") else \
            "spikes and membranes"
        print(f"{what} written to {summary['out']}", file=out)
    return 0


def _time(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _print_spike_times(layers: dict[str, Any], out: TextIO) -> None:
    """Per spike-time layer: how many neurons fired, and the first, median and last firing
    time of those that did (in the encoder's time units)."""
    print(f"  {'spike times':<16} {'fired':>13} {'first t':>9} {'median t':>9} {'last t':>9}",
          file=out)
    for name, layer in layers.items():
        fired = f"{layer['fired']}/{layer['neurons']}"
        print(f"  {name:<16} {fired:>13} {_time(layer['first']):>9} "
              f"{_time(layer['median']):>9} {_time(layer['last']):>9}", file=out)


def _print_race(race: dict[str, Any], label: int, out: TextIO) -> None:
    """The output race: each class's firing time (or silent), the earliest marked."""
    winner = race["winner"]
    if winner is None:
        print(f"output race: every output neuron stayed silent (label {label})", file=out)
    else:
        print(f"output race: class {winner} fired first at t = {race['times'][winner]:.4g} "
              f"(label {label})", file=out)
    for k, t in enumerate(race["times"]):
        marks = [mark for mark, yes in (("winner", k == winner), ("label", k == label)) if yes]
        when = "silent" if t is None else f"t = {t:.4g}"
        print(f"  class {k:<3} {when:<14} {', '.join(marks)}".rstrip(), file=out)


def run_signal(args: argparse.Namespace, out: TextIO) -> int:
    """``--signal``: one line per encoder (spikes, spikes/ch/1000, MSE, SNR)."""
    for option, given in (("--layer", args.layer), ("--out", args.out)):
        if given:
            raise UsageError(f"{option} belongs to the network's probe; --signal compares the "
                             "encoders only (use --csv for its data)")
    from workbench.core.runs.signal import compare_encoders

    session = load_session(args)
    chosen = ([name.strip() for name in args.encoders.split(",") if name.strip()]
              if args.encoders else None)
    try:
        encodings = compare_encoders(session, args.sample, encoders=chosen)
    except WorkbenchError as exc:
        if exc.where == "encoders" and args.encoders:
            raise UsageError(exc.message, where=f"--encoders {args.encoders}") from None
        raise
    channels, length = encodings[0].signal.shape
    summary: dict[str, Any] = {"sample": args.sample, "channels": channels, "length": length,
                               "encoders": [encoded.summary() for encoded in encodings]}
    if args.csv:
        summary["csv"] = str(_write_csv(args.csv, encodings))
    if args.json:
        emit({"event": "summary", "status": "ok", **summary}, out)
        return 0
    print(f"sample {args.sample}: {channels} channel(s), {length} samples", file=out)
    print(f"  {'encoder':<32} {'spikes':>7} {'spikes/ch/1000':>15} {'MSE':>10} {'SNR dB':>8}",
          file=out)
    for row in summary["encoders"]:
        name = row["encoder"] + (" (project)" if row["project"] else "")
        mse = "-" if row["mse"] is None else f"{row['mse']:.4g}"
        print(f"  {name:<32} {row['spikes']:>7} {row['spikes_per_channel_per_1000']:>15.1f} "
              f"{mse:>10} {_decibels(row['snr_db']):>8}", file=out)
    if args.csv:
        print(f"signal, spikes, reconstructions and thresholds written to {summary['csv']}",
              file=out)
    return 0


def _decibels(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.1f}"


def _write_csv(path: Path, encodings: list[Any]) -> Path:
    from workbench.core.runs.signal import CSV_HEADER, signal_rows

    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            writer.writerows(signal_rows(encodings))
    except OSError as exc:
        raise WorkbenchError(f"cannot write the file: {exc.strerror}", where=str(path)) from None
    return path
