"""Refuse special files by name before reading a file the user named.

Opening a FIFO for reading blocks until a writer comes, so a FIFO named as a project, weights or
record file would hang the command; a device may stream without end; a directory or a socket
cannot be read at all. :func:`regular_file` stats the path first and turns each of them into a
:class:`~workbench.core.model.errors.WorkbenchError` (of the subclass the caller names) that says
what the path is: ``weights.safetensors: is a FIFO, not a regular file``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from workbench.core.model.errors import WorkbenchError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file(path: str | os.PathLike[str], error: type[WorkbenchError] = WorkbenchError,
                 *, what: str = "file") -> Path:
    """``path`` as a :class:`Path` when it is a regular file (or a link to one); else raise
    ``error`` naming the path: missing, unreadable, or what kind of special file it is."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows links: a link to a FIFO is a FIFO
    except FileNotFoundError:
        raise error(f"no such {what}", where=str(path)) from None
    except (OSError, ValueError) as exc:  # too long a name, a loop of links, no permission
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"cannot read the {what}: {reason}", where=str(path)) from None
    if stat.S_ISDIR(mode):
        raise error(f"is a directory, not a {what}; name the {what} inside it", where=str(path))
    for test, kind in _KINDS:
        if test(mode):
            # a pipe from a shell's <(...) lands here too: such a stream is read only once
            raise error(f"is {kind}, not a regular file; save the {what} to disk and name "
                        "that file", where=str(path))
    return path
