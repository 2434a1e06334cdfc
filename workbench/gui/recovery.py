"""Autosave to recovery files, and restore after a crash.

While a project has unsaved work, its state is written every few seconds to
``<config>/recovery/<key>.json`` (the project dict plus the folder it belongs to); when the network
holds trained weights that the project's own weights file lacks, they go to
``<key>.safetensors`` beside it. A clean save, a close or a discard removes both files.

Recovery files found at start-up mean the app did not close cleanly: every readable one is
listed and offered back, and only the ones the user restores or discards are removed, so the
autosaves of other projects survive for the next start. A file that cannot be read, or whose
project is invalid, is moved into ``recovery/broken/`` with a warning: never deleted, never a
crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import Project
from workbench.core.persistence.atomic import TEMP_PREFIX, TEMP_SUFFIX, atomic_write_text
from workbench.gui.config_files import (
    ConfigFileProblem,
    is_regular_file,
    read_config_text,
    set_aside,
)
from workbench.gui.settings import config_dir

log = logging.getLogger(__name__)

BROKEN_DIR = "broken"
WEIGHTS_SUFFIX = ".safetensors"
#: a recovery file is a project dict: kilobytes; far more than this is not one of ours
MAX_RECOVERY_BYTES = 64 << 20
#: an autosave's temporary older than this was left by a crash (a live write takes milliseconds)
STALE_TEMP_SECONDS = 600


def recovery_dir() -> Path:
    return config_dir() / "recovery"


def _key(project: Project) -> str:
    # An untitled project has no folder to name it by; the process id keeps the key of this
    # run's untitled project apart from one a crashed run left behind.
    where = (str(project.folder.resolve()) if project.folder
             else f"untitled-{os.getpid()}-{id(project)}")
    return hashlib.sha1(where.encode()).hexdigest()[:16]


def recovery_file(project: Project) -> Path:
    return recovery_dir() / f"{_key(project)}.json"


def weights_file(recovery: Path) -> Path:
    """Where the weights that belong to recovery file ``recovery`` are kept."""
    return recovery.with_suffix(WEIGHTS_SUFFIX)


def write_recovery(project: Project, model: Any = None, *, keep_weights: bool = False) -> Path:
    """Autosave ``project``; with ``model``, also the network's weights (the project's own
    weights file lacks them). ``keep_weights`` keeps the weights an earlier autosave wrote (a
    run is changing the network right now); otherwise a stale weights file is removed.

    Weights holding NaN are refused by ``save_weights``: the earlier recovery weights stay."""
    path = recovery_file(project)
    weights = weights_file(path)
    with_weights = model is not None or keep_weights
    payload = {"saved_at": time.time(),
               "folder": str(project.folder) if project.folder else None,
               "weights": weights.name if with_weights else None,
               "project": project.to_dict()}
    # The project first, then its weights: a crash between leaves the project with the
    # previous weights (or none), never weights without a project.
    atomic_write_text(path, json.dumps(payload))
    if model is not None:
        # here, not at the top: the window shows before torch is imported
        from workbench.core.persistence.weights import save_weights

        try:
            save_weights(model, weights)
        except WorkbenchError as exc:
            log.warning("autosave kept the previous recovery weights: %s", exc)
    elif not keep_weights:
        weights.unlink(missing_ok=True)
    return path


def discard_file(file: Path) -> None:
    """Remove one recovery file and the weights that belong to it (the weights first: a
    project without its weights is still worth restoring, weights alone are not). A config
    folder that cannot be written is logged, never an error: the work itself is safe."""
    for target in (weights_file(file), file):
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the autosave %s: %s", target, exc.strerror)


def discard_recovery(project: Project) -> None:
    discard_file(recovery_file(project))


@dataclass
class Recovered:
    file: Path
    project: Project
    saved_at: float
    #: trained weights autosaved with the project (None: the project's own file has them)
    weights: Path | None = None


def find_recoveries() -> list[Recovered]:
    """Readable recovery files, newest first (damaged ones are moved aside, see
    :func:`scan_recoveries`)."""
    return scan_recoveries()[0]


def scan_recoveries() -> tuple[list[Recovered], list[str]]:
    """Readable recovery files, newest first, and a warning for each one that was not (for
    the window to log and show).

    A damaged file (and its weights) is moved into ``recovery/broken/``; a FIFO or other
    special file is never opened for reading (it could block the start-up)."""
    found: list[Recovered] = []
    warnings: list[str] = []
    folder = recovery_dir()
    try:
        if not folder.is_dir():
            return found, warnings
        entries = sorted(folder.iterdir())
    except OSError as exc:
        warnings.append(f"The recovery folder {folder} cannot be read ({exc.strerror}); no "
                        "unsaved work is offered back.")
        return found, warnings
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
            _remove_stale_temporary(entry)
        elif entry.suffix == WEIGHTS_SUFFIX and entry.with_suffix(".json").name not in names:
            # weights whose project is gone (removed by an older version's clean save): they
            # cannot be restored without it
            if is_regular_file(entry):
                entry.unlink(missing_ok=True)
        elif entry.suffix == ".json":
            try:
                found.append(_read(entry))
            except ConfigFileProblem as exc:
                warnings.append(_move_broken(entry, str(exc)))
            except WorkbenchError as exc:  # Project.from_dict: says which field
                warnings.append(_move_broken(entry, f"holds an invalid project ({exc})"))
            except Exception as exc:  # noqa: BLE001 - whatever the file holds, the app starts
                warnings.append(_move_broken(entry, f"cannot be read ({exc!r})"))
    return sorted(found, key=lambda r: r.saved_at, reverse=True), warnings


def _read(file: Path) -> Recovered:
    try:
        payload = json.loads(read_config_text(file, limit=MAX_RECOVERY_BYTES))
    except RecursionError:
        raise ConfigFileProblem("is nested too deeply to read") from None
    except ValueError as exc:
        raise ConfigFileProblem(f"is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ConfigFileProblem("does not hold a recovery record (a JSON object)")
    folder, saved_at = payload.get("folder"), payload.get("saved_at", 0)
    if folder is not None and not isinstance(folder, str):
        raise ConfigFileProblem(f"has folder = {folder!r}, expected a folder name")
    if (not isinstance(saved_at, (int, float)) or isinstance(saved_at, bool)
            or not math.isfinite(saved_at)):
        raise ConfigFileProblem(f"has saved_at = {saved_at!r}, expected a time in seconds")
    project = Project.from_dict(payload.get("project"), where="project")
    project.folder = Path(folder) if folder else None
    weights = weights_file(file)
    has_weights = payload.get("weights") == weights.name and is_regular_file(weights)
    return Recovered(file, project, float(saved_at), weights if has_weights else None)


def _move_broken(file: Path, problem: str) -> str:
    """Move a damaged recovery file (and its weights) into ``broken/``; the warning to show."""
    broken = file.parent / BROKEN_DIR
    try:
        kept = set_aside(file, broken)
    except OSError as exc:
        return (f"The recovery file {file} {problem}; it could not be moved aside "
                f"({exc.strerror}) and is skipped.")
    weights = weights_file(file)
    if is_regular_file(weights):
        try:
            set_aside(weights, broken)
        except OSError:
            pass  # the next start removes it as an orphan
    return f"The recovery file {file} {problem}; it was moved to {kept}."


def _remove_stale_temporary(file: Path) -> None:
    try:
        if time.time() - file.lstat().st_mtime > STALE_TEMP_SECONDS and is_regular_file(file):
            file.unlink()
    except OSError:
        pass
