"""What every command shares: the session, ``key=value`` parameters, JSON lines, the progress
bar, and :func:`drive`, which prints a catalog run's events. Light on purpose (``main`` imports
it before any command): heavy modules are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.json_text import dumps

PROG = "snn-workbench"
log = logging.getLogger(PROG)

#: the core's names of fields (``WorkbenchError.where``) that are options of this command line
OPTIONS = {"epochs": "--epochs", "limit": "--limit", "sample": "--sample", "method": "--method",
           "backend": "--backend", "target": "--target", "table": "--table", "dt": "--dt"}
#: what the progress bar says while a run of each kind goes on
_BAR_TITLES = {"train": "training", "evaluate": "evaluating", "compress": "compressing",
               "replay": "compressing", "deploy": "deploying", "probe": "probing",
               "export": "exporting", "import": "importing", "sweep": "sweeping"}
#: what a run's progress counts, and the scale to show it at (a sweep's: hundredths of a trial)
_BAR_UNITS = {"sweep": ("trial", 0.01)}

Write = Callable[[str], None]
Show = Callable[[Any, Write], None]


class UsageError(WorkbenchError):
    """A wrong combination of options (exit status 2)."""


class RunFailed(Exception):
    """A run ended ``failed`` on an internal error; carries the run's own traceback."""

    def __init__(self, error: str, traceback: str = "") -> None:
        super().__init__(error)
        self.error, self.traceback = error, traceback


def emit(obj: dict[str, Any], out: TextIO) -> None:
    """One JSON object on one line."""
    out.write(dumps(obj) + "\n")  # RFC 8259: a NaN metric is null, never a NaN token
    out.flush()


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# -- the session -------------------------------------------------------------------------------
def load_host(args: argparse.Namespace) -> Any:
    """The installed plugins, plus the ``--plugin`` modules. Broken plugins cost every command
    one warning line in total; ``snn-workbench plugins`` lists each failure itself."""
    from workbench.pluginhost.manager import load_plugins

    host = load_plugins(modules=args.plugin or ())
    summary = host.failure_summary()
    if summary and getattr(args, "command", None) != "plugins":
        log.warning("warning: %s", summary)
    return host


def resolve_project(args: argparse.Namespace) -> None:
    """``args.project`` becomes the folder to open: no project is the default example, an
    example's name (``digits_mlp``) the user's copy of it, made on first use, so a command
    never changes the shipped example. Says which copy on stderr."""
    from workbench.core.persistence.examples import project_to_open

    folder, note = project_to_open(args.project)
    if note:
        print(f"{PROG}: {note}", file=sys.stderr)
    args.project = str(folder)


def load_session(args: argparse.Namespace) -> Any:
    """A session on ``args.project`` (default: the user's copy of the default example), with
    ``--device`` and ``--precision`` applied when the command has them."""
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session

    if args.project is None:
        resolve_project(args)
    host = load_host(args)
    session = Session(load_project(args.project), host.registry)
    for note in session.notes:
        log.warning(note)
    _override_compute(session, args)
    return session


def _override_compute(session: Any, args: argparse.Namespace) -> None:
    """``--device``/``--precision`` replace the project's compute settings for this command
    only (the project file is not written). Checked here, so an unavailable device is a usage
    error before any run starts."""
    given = {name: value for name in ("device", "precision")
             if (value := getattr(args, name, None))}
    if not given:
        return
    session.compute_override = dataclasses.replace(session.project.compute, **given)
    try:
        session.compute()
    except WorkbenchError as exc:
        field = exc.where.rpartition(": ")[2]  # "compute.device" after the project file
        option = field.rpartition(".")[2]
        if option not in given:
            raise
        raise UsageError(exc.message, where=f"--{option} {given[option]} ({field})") from None


def parse_params(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (``4``, ``0.5``, ``true``),
    as text otherwise."""
    params: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params[key.strip()] = value
    return params


# -- driving a run -----------------------------------------------------------------------------
class Progress:
    """A tqdm bar on an interactive terminal, silent otherwise; lines written go above it."""

    def __init__(self, enabled: bool, title: str, out: TextIO,
                 unit: tuple[str, float] = ("batch", 1.0)) -> None:
        self.bar: Any = None
        self.enabled, self.title, self.out, self.unit = enabled, title, out, unit

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.title, unit=self.unit[0],
                            unit_scale=self.unit[1], file=sys.stderr, leave=False,
                            dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = min(done, total)
        # update(0) redraws at most every tqdm interval: a per-batch redraw costs real time
        self.bar.refresh() if done >= total else self.bar.update(0)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def drive(run: Any, args: argparse.Namespace, out: TextIO, show: Show | None = None
          ) -> dict[str, Any]:
    """Consume a catalog run: with ``--json`` one line per event (progress excepted), else a
    progress bar and the lines ``show(event, write)`` prints.

    Returns the summary with its ``status``; a failure raises (:class:`WorkbenchError` on bad
    input, :class:`RunFailed` otherwise) so ``main`` maps the exit status.
    """
    progress = Progress(not args.json and sys.stderr.isatty(),
                        _BAR_TITLES.get(run.kind, run.kind), out,
                        _BAR_UNITS.get(run.kind, ("batch", 1.0)))
    try:
        for event in run:
            if event.name == "run_finished":
                continue
            if args.json:
                if event.name != "progress":
                    emit(event.to_dict(), out)
            elif event.name == "progress":
                progress.update(event.done, event.total)
            elif show is not None:
                show(event, progress.write)
    finally:
        progress.close()
    finished = run.finished
    if finished.status == "failed":
        if finished.error_kind == "input":
            where = finished.error_where
            message = finished.error.removeprefix(f"{where}: ") if where else finished.error
            raise WorkbenchError(message, where=where)
        raise RunFailed(finished.error, finished.traceback)
    return {"status": finished.status, **finished.summary}


def finish(summary: dict[str, Any], args: argparse.Namespace, out: TextIO) -> bool:
    """With ``--json``, the summary line; True when there is a result to print as text."""
    if args.json:
        emit({"event": "summary", **summary}, out)
        return False
    if summary["status"] != "ok":
        print(summary["status"], file=out)
        return False
    return True


def exit_status(summary: dict[str, Any]) -> int:
    return 0 if summary["status"] == "ok" else 1  # cancelled: not a success


def show_log(event: Any, write: Write) -> None:
    """A run's log line: its level in front unless it is plain information."""
    if event.name == "log":
        write(event.message if event.level == "info" else f"{event.level}: {event.message}")
