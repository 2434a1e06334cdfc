"""Run records: each run's events as JSON lines in ``<project>/runs/<run_id>.jsonl``.

A project folder the user cannot write (a read-only share, a shipped example installed
system-wide) must not stop a run that only reads it: the record then goes to the user's data
folder (``$SNN_WORKBENCH_DATA``, else the platform's per-user data folder) under
``runs/<project name>-<hash of its folder>/``, and the run says so in a log event.

:func:`last_training` reads them back: the GUI shows a reopened project's last training curves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.json_text import dumps, parse_json
from workbench.core.model.project import RUNS_DIR
from workbench.core.runs.events import Log, MetricSample, Progress, RunEvent

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


# -- reading records back ---------------------------------------------------------------------
#: the time stamp in a run id (``train-20261202-144310-120e3d``), see engine.new_run_id
_RUN_ID_TIME = "%Y%m%d-%H%M%S"


@dataclass(frozen=True)
class TrainingHistory:
    """What a training run's record says: its metric samples in order, when it started, and how
    it ended (``status`` is "" when the record stops early: the app was killed mid-run)."""

    run_id: str
    started: datetime
    samples: list[MetricSample] = field(default_factory=list)
    status: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        """Epochs the run finished (its epoch-end samples)."""
        return sum(1 for sample in self.samples if sample.epoch_end)


def _started(path: Path) -> datetime:
    """When the run of record ``path`` started: the time in its run id, else the file's time."""
    stamp = "-".join(path.stem.split("-")[1:3])
    try:
        return datetime.strptime(stamp, _RUN_ID_TIME)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime)


def read_training(path: Path) -> TrainingHistory | None:
    """The training run recorded in ``path``; None when it is not a training run's record or
    holds no metric. A damaged line (a crash mid-write, a hand edit) is skipped, not fatal."""
    samples: list[MetricSample] = []
    status, summary, kind = "", {}, ""
    run_id = path.stem
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            event = parse_json(line, where=str(path))
        except WorkbenchError:
            continue
        if not isinstance(event, dict):
            continue
        name = event.get("event")
        if name == "run_started":
            kind, run_id = str(event.get("kind", "")), str(event.get("run_id", run_id))
        elif name == "metric" and isinstance(event.get("values"), dict):
            values = {key: float(value) for key, value in event["values"].items()
                      if isinstance(value, int | float) and not isinstance(value, bool)}
            try:
                samples.append(MetricSample(run_id, int(event.get("epoch", 0)),
                                            int(event.get("step", 0)), values,
                                            bool(event.get("epoch_end", False))))
            except (TypeError, ValueError):
                continue
        elif name == "run_finished":
            status = str(event.get("status", ""))
            summary = event.get("summary") if isinstance(event.get("summary"), dict) else {}
    if kind != "train" or not samples:
        return None
    return TrainingHistory(run_id, _started(path), samples, status, summary)


def last_training(project_folder: Path) -> TrainingHistory | None:
    """The newest recorded training run of the project in ``project_folder`` that reported any
    metric, looked for in its ``runs/`` and in the fallback folder of a read-only project."""
    folder = Path(project_folder)
    found = [path for where in (folder / RUNS_DIR, fallback_runs_dir(folder))
             if where.is_dir() for path in where.glob("train-*.jsonl")
             if path.is_file()]  # a FIFO or a folder of that name would hang or fail the read
    for path in sorted(found, key=_started, reverse=True):
        history = read_training(path)
        if history is not None:
            return history
    return None
