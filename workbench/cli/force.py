"""``--force``: what the commands that write a new project folder say when it is occupied.

The core refuses an output folder that holds another project (or other files) unless told to
overwrite (:class:`~workbench.core.persistence.project_store.TargetOccupied`); here that refusal
becomes one line naming the folder and the option that allows it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from workbench.cli._common import UsageError
from workbench.core.persistence.project_store import TargetOccupied


@contextlib.contextmanager
def occupied_needs_force() -> Iterator[None]:
    try:
        yield
    except TargetOccupied as exc:
        allow = "replace it" if exc.holds_project else "save into it anyway"
        raise UsageError(f"{exc.what}; choose another folder, or pass --force to {allow} "
                         "(nothing was written)", where=exc.where) from None
