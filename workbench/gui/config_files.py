"""Reading, and setting aside, the app's own files in the config folder (settings, recovery).

The app writes these files itself, but a crash, a full disk, a hand edit or another program can
leave anything there: a list where an object belongs, bytes that are not UTF-8, a FIFO that
would block a plain ``open()`` forever. Such a file must never keep the app from starting, and
must never be deleted either (it may be the user's only copy of something): it is renamed out
of the way, and the app goes on with defaults.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path


class ConfigFileProblem(Exception):
    """A config-folder file that cannot be used; the message says why, for the user."""


def read_config_text(path: Path, *, limit: int) -> str:
    """The UTF-8 text of ``path``, a regular file of at most ``limit`` bytes.

    The file is opened non-blocking and checked with ``fstat`` before a byte is read, so a FIFO
    or a device in its place is refused instead of hanging the start-up.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ConfigFileProblem(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigFileProblem("is not a regular file (a FIFO, a device or a folder)")
        if info.st_size > limit:
            raise ConfigFileProblem(f"is {info.st_size} bytes, more than the {limit} bytes such "
                                    "a file can hold")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise ConfigFileProblem(f"is more than the {limit} bytes such a file can hold")
            chunks.append(chunk)
    except OSError as exc:
        raise ConfigFileProblem(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileProblem(f"is not UTF-8 text (bad byte at offset {exc.start})") from None


def is_regular_file(path: Path) -> bool:
    """True for a regular file (symlinks followed); False for anything else or a failed stat."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def set_aside(path: Path, folder: Path | None = None, *, suffix: str = "") -> Path:
    """Rename ``path`` to ``<folder>/<name><suffix>`` (``folder`` defaults to its own), never
    over an earlier one: a taken name gets a timestamp, then a counter. Returns the new path;
    raises OSError when the rename is impossible (a read-only folder)."""
    folder = folder if folder is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.name}{suffix}"
    if os.path.lexists(target):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = folder / f"{path.name}{suffix}-{stamp}"
        counter = 2
        while os.path.lexists(target):
            target = folder / f"{path.name}{suffix}-{stamp}-{counter}"
            counter += 1
    os.rename(path, target)
    return target
