"""Atomic file writes: a crash mid-save leaves the old file, never half a file.

The bytes go to a temporary file beside the target (``.<name>.<random>.tmp``), are fsynced,
and one ``os.replace`` puts them in place; the folder is then fsynced so the rename itself
survives a power cut. A new file gets the mode the user's umask gives (``0o666 & ~umask``,
as ``open()`` would); a replaced file keeps its mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

#: how the temporaries of :func:`atomic_path` are named: ``.<target name>.<random>.tmp``
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"

_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS tells (Linux), else by the
    set-and-restore dance under a lock (other threads that create files meanwhile are rare)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable; a no-op where the OS cannot open or sync folders
    (Windows, some network file systems: EINVAL, EBADF, EACCES)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:  # a new file
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX,
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(target))  # mkstemp made it 0600
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):  # the first error is the one to report
            tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
