"""Cooperative cancellation of runs."""

from __future__ import annotations

import threading


class CancelToken:
    """Set from any thread (usually the GUI's); runs check it between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()
