"""Run records: each run's events as JSON lines in ``<project>/runs/<run_id>.jsonl``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from workbench.core.model.project import RUNS_DIR
from workbench.core.runs.events import Progress, RunEvent

#: where a run is recorded: a project folder, None (nowhere), or a callable asked at each event,
#: for runs whose project exists only once they have made it (an import)
RecordTo = Path | Callable[[], Path | None] | None


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
    pending: list[str] = []
    try:
        for event in events:
            if not isinstance(event, Progress):
                pending.append(json.dumps(event.to_dict()) + "\n")
                if handle is None and (target := where()) is not None:
                    (target / RUNS_DIR).mkdir(parents=True, exist_ok=True)
                    handle = open(target / RUNS_DIR / f"{event.run_id}.jsonl", "a",
                                  encoding="utf-8")
                if handle is not None:
                    handle.writelines(pending)
                    handle.flush()
                    pending.clear()
            yield event
    finally:
        if handle is not None:
            handle.close()
