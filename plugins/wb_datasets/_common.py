"""Helpers shared by the file-based dataset loaders.

Every loader reports problems the same way: a :class:`DatasetError` whose ``where`` is the
offending file (or the folder when no single file is to blame) and whose message says what was
expected, so a user can fix their folder without reading this code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.pluginhost import DatasetError


def require_path(path: str, *, what: str, layout: str) -> Path:
    """Turn the ``path`` parameter into an existing :class:`Path`.

    Parameters
    ----------
    path
        The raw ``params.path`` value.
    what
        What the path should point to, for the "no path set" message ("the folder holding the
        four MNIST idx files").
    layout
        The expected on-disk layout, quoted when the path does not exist.

    Returns
    -------
    Path
        The path with ``~`` expanded; it exists.

    Raises
    ------
    DatasetError
        When ``path`` is empty or does not exist.
    """
    if not str(path).strip():
        # No ``where``: there is no path to point at; the message names the field instead.
        raise DatasetError(f"no path set; set params.path to {what}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DatasetError(f"{path} does not exist; expected {layout}", where=str(path))
    return resolved


def require_folder(path: str, *, what: str, layout: str) -> Path:
    """Like :func:`require_path`, and the path must be a folder."""
    folder = require_path(path, what=what, layout=layout)
    if not folder.is_dir():
        raise DatasetError(f"{path} is a file, not a folder; expected {layout}", where=str(path))
    return folder


def read_names(path: Path) -> list[str]:
    """Read one class name per line, skipping blank lines (the CIFAR meta files end with some).

    Raises
    ------
    DatasetError
        When the file cannot be read or is not text.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read class names ({exc})", where=str(path)) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError("file lists no class names (expected one per line)", where=str(path))
    return names


def check_labels(y: np.ndarray, class_names: Sequence[str], *, where: str) -> None:
    """Fail when a label has no class name, instead of letting a run index past the classifier.

    Parameters
    ----------
    y
        Integer labels.
    class_names
        The names the labels index into.
    where
        The file the labels came from.
    """
    if len(y) == 0:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= len(class_names):
        bad = low if low < 0 else high
        raise DatasetError(
            f"label {bad} is outside 0..{len(class_names) - 1} ({len(class_names)} classes)",
            where=where,
        )
