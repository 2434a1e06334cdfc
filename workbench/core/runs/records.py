"""Run records: each run's events as JSON lines in ``<project>/runs/<run_id>.jsonl``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from workbench.core.model.project import RUNS_DIR
from workbench.core.runs.events import Progress, RunEvent


def recorded(events: Iterator[RunEvent], folder: Path | None) -> Iterator[RunEvent]:
    """Pass ``events`` through, appending each (but per-batch progress) to the run's record.

    Lines are flushed as they come, so a crash keeps everything up to the last event.
    """
    if folder is None:
        yield from events
        return
    handle = None
    try:
        for event in events:
            if not isinstance(event, Progress):
                if handle is None:
                    (folder / RUNS_DIR).mkdir(parents=True, exist_ok=True)
                    handle = open(folder / RUNS_DIR / f"{event.run_id}.jsonl", "a",
                                  encoding="utf-8")
                handle.write(json.dumps(event.to_dict()) + "\n")
                handle.flush()
            yield event
    finally:
        if handle is not None:
            handle.close()
