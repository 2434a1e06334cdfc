"""What a job sent to a cluster runs, in the project folder the runner sent
(``python -m workbench.cli.remote_job [--epochs N] [--fresh]``). Started by
:mod:`workbench.core.runs.remote`, not by people; its output is read back there.

1. The plugins the project needs must be installed where the job runs; else one JSON line
   ``{"event": "job_failed", "error": ...}`` names the missing ones, and the job fails.
2. ``snn-workbench train --json`` on a scratch copy of the folder: the runner's copy may be
   shared by every job sent with the same content, so it stays as it was sent.
3. On success, the trained weights as the last line, ``{"event": "job_weights", "data":
   base64, "sha256": ..., "size": ...}``; a failure of the training ends with a
   ``job_failed`` line holding the command's one-line error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from workbench.cli import main as cli_main
from workbench.cli._common import PROG, emit
from workbench.core.model.errors import WorkbenchError
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.remote import (
    FAILED_EVENT,
    MAX_WEIGHTS_BYTES,
    WEIGHTS_EVENT,
    missing_plugins,
)


class _Tee:
    """A text stream that passes everything on and keeps the last lines (the CLI's error)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: deque[str] = deque(maxlen=20)

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _fail(message: str, out: TextIO) -> int:
    emit({"event": FAILED_EVENT, "error": message}, out)
    return 2


def plugin_problem(folder: Path) -> str:
    """Why the plugins installed here cannot train the project in ``folder`` ("" when they
    can)."""
    from workbench.pluginhost.manager import load_plugins

    host = load_plugins()
    missing = missing_plugins(load_project(folder), host.registry)
    if not missing:
        return ""
    named = "; ".join(f"{plugin} (for {', '.join(uses)})" for plugin, uses in missing.items())
    failed = host.failure_summary()
    return (f"the cluster lacks the plugin(s) the project needs: {named}. Install them in the "
            "Python environment the cluster's jobs run in (the one with snn-workbench)"
            + (f"; there, {failed}" if failed else ""))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    here = Path.cwd()
    try:
        problem = plugin_problem(here)
    except WorkbenchError as exc:
        return _fail(str(exc), out)
    if problem:
        return _fail(problem, out)
    with tempfile.TemporaryDirectory(prefix="wb-job-") as scratch:
        work = Path(scratch) / here.name
        shutil.copytree(here, work)
        command = ["train", str(work), "--json", *(["--fresh"] if args.fresh else []),
                   *(["--epochs", str(args.epochs)] if args.epochs is not None else [])]
        errors = _Tee(sys.stderr)
        saved, sys.stderr = sys.stderr, errors  # the CLI prints its one-line error there
        try:
            status = cli_main(command, out=out)
        finally:
            sys.stderr = saved
        if status != 0:
            said = [line for line in errors.lines if line.startswith(f"{PROG}: ")]
            _fail(said[-1].removeprefix(f"{PROG}: ").removeprefix("error: ") if said
                  else f"the training ended with exit status {status}", out)
            return status
        return _send_weights(work, out)


def _send_weights(folder: Path, out: TextIO) -> int:
    weights = load_project(folder).weights_path
    if weights is None or not weights.is_file():
        return _fail("the training saved no weights", out)
    data = weights.read_bytes()
    if len(data) > MAX_WEIGHTS_BYTES:
        return _fail(f"the trained weights are {len(data) / 2**20:.0f} MiB, above the "
                     f"{MAX_WEIGHTS_BYTES >> 20} MiB a job's log carries back", out)
    emit({"event": WEIGHTS_EVENT, "file": weights.name, "size": len(data),
          "sha256": hashlib.sha256(data).hexdigest(),
          "data": base64.b64encode(data).decode("ascii")}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
