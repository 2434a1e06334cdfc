"""``snn-workbench``: the desktop app by default, headless sub-commands over the same core.

Each sub-command is a thin driver in its own module: it loads the session, starts a run through
:mod:`workbench.core.runs.catalog` and prints the run's events. The parser names each handler
as a ``"module:function"`` string imported only when that command runs, so ``--help`` and usage
errors stay light (no torch, no Qt).

Exit status: 0 on success, 2 for bad input or usage (one line on stderr naming the file, field
or option), 1 for an internal failure (``--debug`` prints the traceback), 130 when interrupted.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from workbench.cli._common import OPTIONS, PROG, RunFailed, resolve_project
from workbench.cli.parser import GUI_HANDLER, build_parser
from workbench.core.model.errors import WorkbenchError, input_error_from

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

__all__ = ["EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK", "PROG", "build_parser", "main"]


def _handler(ref: str) -> Callable[..., int]:
    """Import a command's ``"module:function"`` handler (only the command that runs)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _input_error(exc: WorkbenchError) -> str:
    """The error's line; a core field that is one of our options is named as the option."""
    if exc.where in OPTIONS:
        return f"{OPTIONS[exc.where]}: {exc.message}"
    return str(exc)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``), printing to ``out``."""
    out = out or sys.stdout
    args = build_parser().parse_args(argv)  # usage errors exit with status 2 here
    if args.command is None:
        args.handler, args.project, args.json = GUI_HANDLER, None, False
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    try:
        if "project" in args and args.handler != GUI_HANDLER:  # the app says it in its window
            resolve_project(args)
        return _handler(args.handler)(args, out)
    except WorkbenchError as exc:
        print(f"{PROG}: error: {_input_error(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line and a status
        problem = input_error_from(exc)
        if problem is not None:  # a full disk, a read-only folder, a path too long
            print(f"{PROG}: error: {_input_error(problem)}", file=sys.stderr)
            return EXIT_INPUT
        if isinstance(exc, RunFailed):  # failed inside a run: the run's own traceback
            message, trace = exc.error, exc.traceback
        else:
            message, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        if args.debug:
            print(trace, file=sys.stderr, end="" if trace.endswith("\n") else "\n")
        first = message.splitlines()[0] if message else ""
        print(f"{PROG}: internal error: {first} "
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
