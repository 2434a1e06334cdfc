"""Committing a project generation: ``project.json`` and its weights switch in one rename.

A project folder holds ``project.json`` and a weights file named by its content,
``weights-<first 16 hex digits of its sha256>.safetensors``, which the project file names in its
``weights`` field. Every save goes through :func:`commit_project` (or :func:`commit_weights`
for a weights-only save) in this order:

1. the weights go to their content-named file (atomic write, fsynced);
2. ``project.json`` naming that file replaces the old one in one rename (fsynced, and the
   folder fsynced after it): this rename is the commit;
3. the weights files the project no longer names are deleted.

A crash at any instant therefore leaves either the old ``project.json`` (whose weights file is
still there: step 3 never ran) or the new one (whose weights were durable before it was
written); never a new project file beside old weights. What a killed save leaves behind
(temporaries, a weights file no project names) is removed by :func:`clean_leftovers` on the
next open, once it is old enough that no other process can still be writing it.

Outputs never overwrite a project silently: a save into a folder other than the project's own
is refused with :class:`TargetOccupied` when the folder holds a project or other files, unless
the caller passes ``overwrite=True`` (``--force`` on the command line, a confirmation in the
app); the source of a derived project (``source``) is refused always.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from workbench.core.model.errors import ProjectError
from workbench.core.model.json_text import parse_json
from workbench.core.model.project import PROJECT_FILE, WEIGHTS_FILE, Project
from workbench.core.persistence.atomic import atomic_write_bytes, atomic_write_text

#: how many hex digits of the sha256 name a weights file (64 bits: no collision in practice)
HASH_DIGITS = 16
#: a file that only a save of ours can have made: the weights (either layout) and temporaries
_HASHED = rf"weights-[0-9a-f]{{{HASH_DIGITS}}}\.safetensors"
_WEIGHTS_NAME = re.compile(_HASHED)
_TEMPORARY = re.compile(rf"\.(project\.json|weights\.safetensors|{_HASHED})\..+\.tmp")
#: leftovers younger than this are left alone on open: another process may be saving into
#: the folder right now (its weights file exists a moment before its project file names it)
STALE_AFTER_S = 60.0


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


#: ``weights=KEEP``: the project's current weights (kept in place, copied to a new folder)
KEEP: Any = _Keep()


class TargetOccupied(ProjectError):
    """The output folder holds another project (``holds_project``) or other files; the save
    replaces it only when told ``overwrite=True``."""

    def __init__(self, what: str, *, where: str, holds_project: bool) -> None:
        super().__init__(f"{what}; choose another folder (nothing was written)", where=where)
        self.what, self.holds_project = what, holds_project


def weights_name(data: bytes) -> str:
    """The file name of weights whose bytes are ``data``."""
    return f"weights-{hashlib.sha256(data).hexdigest()[:HASH_DIGITS]}.safetensors"


def same_folder(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one folder (resolved: links, ``..`` and relative paths)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def check_target(folder: str | Path, *, overwrite: bool = False,
                 source: str | Path | None = None) -> None:
    """Refuse an output folder a new project may not be written to (see the module's rule)."""
    folder = Path(folder)
    where = str(folder)
    if source is not None and same_folder(source, folder):
        raise ProjectError("is the source project itself; a derived project goes to another "
                           "folder, so the source is never replaced (nothing was written)",
                           where=where)
    if folder.exists() and not folder.is_dir():
        raise ProjectError("exists and is not a folder; choose a folder for the project",
                           where=where)
    if overwrite or not folder.exists():
        return
    if (folder / PROJECT_FILE).exists():
        raise TargetOccupied("already holds a project", where=where, holds_project=True)
    try:
        occupied = any(folder.iterdir())
    except OSError as exc:
        raise ProjectError(f"cannot read the folder: {exc.strerror}", where=where) from None
    if occupied:
        raise TargetOccupied("is not empty and holds no project", where=where,
                             holds_project=False)


# -- committing ----------------------------------------------------------------------------------
def commit_project(project: Project, folder: str | Path | None = None, *,
                   weights: bytes | Path | None = KEEP, overwrite: bool = False,
                   source: str | Path | None = None) -> Path:
    """Save ``project`` into ``folder`` (default: its own) with ``weights`` as one generation.

    ``weights``: the bytes of a new weights file (:func:`~workbench.core.persistence.weights.
    weights_bytes`), an existing weights file to copy, ``None`` for an untrained project, or
    :data:`KEEP` (the project's weights: kept when saving in place, copied to a new folder).
    Another folder must be free (:func:`check_target`) unless ``overwrite``; the old project's
    weights files there are removed with the commit. On success the project's ``folder`` and
    ``weights_file`` follow the save; returns the ``project.json`` written.
    """
    target = Path(folder) if folder is not None else project.folder
    if target is None:
        raise ProjectError("the project has no folder yet; choose one with Save As")
    in_place = project.folder is not None and same_folder(project.folder, target)
    if source is not None or not in_place:
        check_target(target, overwrite=overwrite or in_place, source=source)
    try:
        target.mkdir(parents=True, exist_ok=True)
        previous = _named_on_disk(target)
        data, name = _weights_to_write(project, target, weights, in_place, previous)
        if data is not None:
            atomic_write_bytes(target / name, data)
        document = project.to_dict()
        document["weights"] = name
        # the commit: one rename switches the project and the weights it names
        atomic_write_text(target / PROJECT_FILE, _dumps(document))
    except OSError as exc:
        raise ProjectError(f"cannot save the project: {exc.strerror or exc}; the folder keeps "
                           "its last saved version", where=str(target)) from None
    project.folder, project.weights_file = target, name
    _clean(target, keep=name, replaced=(previous, WEIGHTS_FILE), stale_after=STALE_AFTER_S)
    return target / PROJECT_FILE


def commit_weights(project: Project, weights: bytes) -> Path:
    """A weights-only save (``train``): the new weights file, then the project file on disk
    with only its ``weights`` field changed (whatever else it holds stays as the user left
    it); a project file without the field keeps its old layout. Returns the weights file."""
    folder = project.folder
    if folder is None:
        raise ProjectError("the project has no folder yet; save the project first")
    file = folder / PROJECT_FILE
    if not file.exists():  # a project never saved to its folder: save it whole
        commit_project(project, weights=weights)
        return folder / str(project.weights_file)
    document = _read_document(file)
    if "weights" not in document:
        # A project file from before content names (the shipped examples): its weights have
        # the fixed name, so replacing that one file (one rename) is the whole save, and the
        # project file stays byte for byte; the next full save moves it to the new layout.
        try:
            atomic_write_bytes(folder / WEIGHTS_FILE, weights)
        except OSError as exc:
            raise ProjectError(f"cannot save the weights: {exc.strerror or exc}; the project "
                               "keeps its last saved weights", where=str(folder)) from None
        project.weights_file = WEIGHTS_FILE
        return folder / WEIGHTS_FILE
    previous = _reference(document)
    name = weights_name(weights)
    try:
        atomic_write_bytes(folder / name, weights)
        document["weights"] = name
        atomic_write_text(file, _dumps(document))
    except OSError as exc:
        raise ProjectError(f"cannot save the weights: {exc.strerror or exc}; the project keeps "
                           "its last saved weights", where=str(folder)) from None
    project.weights_file = name
    _clean(folder, keep=name, replaced=(previous, WEIGHTS_FILE), stale_after=STALE_AFTER_S)
    return folder / name


def _weights_to_write(project: Project, target: Path, weights: Any, in_place: bool,
                      previous: str | None) -> tuple[bytes | None, str | None]:
    """``(bytes to write or None, the name project.json will give)``."""
    if weights is None:
        return None, None
    if isinstance(weights, bytes):
        return weights, weights_name(weights)
    if isinstance(weights, Path):
        data = weights.read_bytes()
        return data, weights_name(data)
    if in_place:
        # keep what the folder holds: the file the project on disk names (another process may
        # have saved newer weights since this project was loaded), else the one loaded
        for name in (previous, project.weights_file):
            if name is not None and (target / name).is_file():
                return None, name
        return None, None
    source = project.weights_path
    if source is None or not source.is_file():
        return None, None
    data = source.read_bytes()
    return data, weights_name(data)


def _dumps(document: dict[str, Any]) -> str:
    # the format of Project.to_json: readable, and diffs of hand-kept projects stay small
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _read_document(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ProjectError("not a regular file; the weights were not saved", where=str(file))
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read the project file to update it: {exc.strerror}; the "
                           "weights were not saved", where=str(file)) from None
    document = parse_json(raw, where=str(file), error=ProjectError)
    if not isinstance(document, dict):
        raise ProjectError("not a project file (expected an object {...}); the weights were "
                           "not saved", where=str(file))
    return document


def _reference(document: dict[str, Any]) -> str | None:
    """The weights file a project document names (the old layout's when it has no field)."""
    if "weights" not in document:
        return WEIGHTS_FILE
    name = document["weights"]
    return name if isinstance(name, str) and _ours(name) else None


def _named_on_disk(folder: Path) -> str | None:
    """The weights file the ``project.json`` in ``folder`` names now (None: none, unreadable)."""
    file = folder / PROJECT_FILE
    if not file.is_file():  # none, or a FIFO or device in its place: never read (it may block)
        return None
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return _reference(document) if isinstance(document, dict) else None


# -- leftovers -----------------------------------------------------------------------------------
def _ours(name: str) -> bool:
    """A weights file only a save makes (a user's ``weights-final.safetensors`` is not)."""
    return name == WEIGHTS_FILE or _WEIGHTS_NAME.fullmatch(name) is not None


def clean_leftovers(folder: str | Path, referenced: str | None,
                    stale_after: float = STALE_AFTER_S) -> list[str]:
    """After an open: remove the temporaries of killed saves and the weights files the project
    file does not name, once older than ``stale_after`` seconds. A folder that cannot be
    written is left as it is. Returns the names removed."""
    return _clean(Path(folder), keep=referenced, replaced=(), stale_after=stale_after)


def _clean(folder: Path, *, keep: str | None, replaced: tuple[str | None, ...],
           stale_after: float) -> list[str]:
    """Remove ``replaced`` weights files (the generation just superseded) at once, and other
    unnamed weights files and temporaries once stale; never ``keep``. Best effort: the save
    has already committed, so a failure here only leaves a file for the next open."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if name == keep or not (_ours(name) or _TEMPORARY.fullmatch(name)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
                continue
            if name not in replaced and now - info.st_mtime < stale_after:
                continue  # maybe another process's save in progress
            os.unlink(entry.path)
        except OSError:
            continue  # read-only folder, or gone already
        removed.append(name)
    return removed
