"""The data plane: thread-safe hand-over of high-rate data (spikes, membranes) to views.

A run's thread ``put``s snapshots; a view polls ``take`` on a ~30 Hz timer and redraws only
when something new arrived. Only the latest snapshot is kept: a view that falls behind skips
frames instead of queueing them, so memory stays bounded however fast the run goes.
"""

from __future__ import annotations

import threading
from typing import Any


class LatestBuffer:
    """Holds the most recent item with a sequence number (0 = nothing yet)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Any = None
        self._seq = 0
        self._run_id = ""

    def put(self, item: Any, run_id: str = "") -> None:
        with self._lock:
            self._item = item
            self._seq += 1
            self._run_id = run_id

    def take(self, since: int = 0) -> tuple[int, Any, str]:
        """``(seq, item, run_id)``; ``item`` is None when nothing newer than ``since`` came."""
        with self._lock:
            if self._seq <= since:
                return since, None, self._run_id
            return self._seq, self._item, self._run_id

    def clear(self) -> None:
        with self._lock:
            self._item = None
            self._seq += 1
            self._run_id = ""
