"""Errors a user can act on.

A :class:`WorkbenchError` means *bad input*: a file, a field or a node the user can fix. The CLI
prints its message on one line and exits with status 2; the GUI shows it in a message box. Any
other exception is an internal failure (exit status 1, a traceback in the log).
"""

from __future__ import annotations

import errno


class WorkbenchError(Exception):
    """Bad input, reported to the user as one clear line.

    Parameters
    ----------
    message
        What is wrong and, where possible, what to do about it.
    where
        The file, field or node the problem is in (shown before the message).
    """

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ProjectError(WorkbenchError):
    """A project file or folder cannot be read, or holds invalid values."""


class CompileError(WorkbenchError):
    """The network graph cannot be turned into a model; ``node`` names the culprit."""

    def __init__(self, message: str, *, node: str = "") -> None:
        super().__init__(message, where=f"node {node!r}" if node else "")
        self.node = node


class DatasetError(WorkbenchError):
    """A dataset file is missing or not in the expected layout."""


class WeightsError(WorkbenchError):
    """A weights file does not fit the network (missing tensors, wrong shapes, NaN)."""


class PluginError(WorkbenchError):
    """A plugin contribution is missing or broken."""


class CompressionError(WorkbenchError):
    """A compression method cannot be applied: a bad parameter, an untrained project, or a
    network the method does not fit. ``where`` names the parameter or node."""


class DeployError(WorkbenchError):
    """A deployment backend cannot take the network or its tools failed; ``where`` names the
    layer, the target or the tool."""


#: errno values that mean "the file, the folder or the disk the user named", not a bug
_USER_ERRNOS = frozenset(
    getattr(errno, name) for name in (
        "ENOENT", "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENAMETOOLONG", "EISDIR",
        "ENOTDIR", "EEXIST", "ELOOP", "EFBIG", "EMFILE", "ENFILE", "EXDEV", "ENOTEMPTY", "EBUSY",
        "ETXTBSY", "EIO")
    if hasattr(errno, name))

_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and try again (nothing was replaced)",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
}


def input_error_from(exc: BaseException) -> WorkbenchError | None:
    """The user-facing error an exception stands for, or None for a real internal failure.

    An ``OSError`` about a path the user named (a full disk, a read-only or missing folder, a
    name too long) is bad input, not a bug: it becomes one line naming the file, exit status 2.
    """
    if isinstance(exc, WorkbenchError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS:
        message = _ERRNO_HINTS.get(exc.errno) or (exc.strerror or str(exc)).lower()
        where = exc.filename if exc.filename is not None else ""
        if exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        return WorkbenchError(message, where=str(where))
    return None
