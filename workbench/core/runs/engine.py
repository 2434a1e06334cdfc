"""The one way a run starts: ids, error capture, records, and compute settings."""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Iterator

from workbench.core.model.errors import WorkbenchError
from workbench.core.runs.events import RunEvent, RunFinished


def new_run_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def guarded(run_id: str, events: Iterator[RunEvent]) -> Iterator[RunEvent]:
    """Turn an exception inside ``events`` into a final ``RunFinished(status="failed")``."""
    try:
        yield from events
    except WorkbenchError as exc:
        yield RunFinished(run_id, "failed", error=str(exc), error_kind="input")
    except Exception as exc:
        yield RunFinished(run_id, "failed", error=f"{type(exc).__name__}: {exc}",
                          error_kind="internal", traceback=traceback.format_exc())
