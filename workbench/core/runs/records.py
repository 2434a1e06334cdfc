"""Run records: each run's events as JSON lines in ``<project>/runs/<run_id>.jsonl``.

A project folder the user cannot write (a read-only share, a shipped example installed
system-wide) must not stop a run that only reads it: the record then goes to the user's data
folder (``$SNN_WORKBENCH_DATA``, else the platform's per-user data folder) under
``runs/<project name>-<hash of its folder>/``, and the run says so in a log event.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from workbench.core.model.json_text import dumps
from workbench.core.model.project import RUNS_DIR
from workbench.core.runs.events import Log, Progress, RunEvent

#: where a run is recorded: a project folder, None (nowhere), or a callable asked at each event,
#: for runs whose project exists only once they have made it (an import)
RecordTo = Path | Callable[[], Path | None] | None

DATA_ENV = "SNN_WORKBENCH_DATA"


def user_data_dir() -> Path:
    """``$SNN_WORKBENCH_DATA``, else the platform's per-user data folder for the app."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("snn-workbench", appauthor=False))


def fallback_runs_dir(project_folder: Path) -> Path:
    """Where the records of a read-only project's runs go."""
    folder = Path(project_folder).resolve()
    key = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    return user_data_dir() / RUNS_DIR / f"{folder.name}-{key}"


def _open_record(project_folder: Path, run_id: str) -> tuple[IO[str] | None, str]:
    """The record's file opened for appending, and a note when it is not in the project."""
    name = f"{run_id}.jsonl"
    try:
        (project_folder / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        return open(project_folder / RUNS_DIR / name, "a", encoding="utf-8"), ""
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    fallback = fallback_runs_dir(project_folder)
    try:
        fallback.mkdir(parents=True, exist_ok=True)
        handle = open(fallback / name, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
    except OSError as exc:
        return None, (f"this run is not recorded: {project_folder / RUNS_DIR} ({reason}) and "
                      f"{fallback} ({exc.strerror}) cannot be written")
    return handle, (f"the run record is in {fallback / name}: the project's runs folder "
                    f"cannot be written ({reason})")


def recorded(events: Iterator[RunEvent], folder: RecordTo) -> Iterator[RunEvent]:
    """Pass ``events`` through, appending each (but per-batch progress) to the run's record.

    Lines are flushed as they come, so a crash keeps everything up to the last event. With a
    callable ``folder``, events wait in memory until it names a folder; a run that never makes
    its folder (a failed import) leaves no file behind.
    """
    if folder is None:
        yield from events
        return
    where = folder if callable(folder) else (lambda: folder)
    handle: IO[str] | None = None
    opened = False
    pending: list[str] = []
    try:
        for event in events:
            note: Log | None = None
            if not isinstance(event, Progress):
                pending.append(dumps(event.to_dict()) + "\n")
                if not opened and (target := where()) is not None:
                    opened = True
                    handle, where_note = _open_record(target, event.run_id)
                    if where_note:
                        note = Log(event.run_id, "warning", where_note)
                        pending.append(dumps(note.to_dict()) + "\n")
                if handle is not None:
                    _write(handle, pending)
                if opened:
                    pending.clear()
            yield event
            if note is not None:
                yield note
    finally:
        if handle is not None:
            handle.close()


def _write(handle: IO[str], lines: list[str]) -> None:
    """Append ``lines``; a record that stops being writable (a full disk) costs the record,
    never the run."""
    try:
        handle.writelines(lines)
        handle.flush()
    except OSError:
        pass
