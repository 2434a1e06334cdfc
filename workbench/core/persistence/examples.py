"""The example projects shipped inside the package, and the user's own copies of them.

The examples are package data (``workbench/resources/projects``), found through
:mod:`importlib.resources`, so a wheel install has them as well as a source checkout.
``$SNN_WORKBENCH_EXAMPLES`` points at another folder of examples instead.

An example is never opened in place: a training run, a deploy or a save would change the files
every later user starts from (and a wheel's files may be read-only). :func:`project_to_open`
turns an example (its bare name, or its shipped folder) into the user's copy of it in
:func:`user_projects_dir`, made on first use and reused after that.
"""

from __future__ import annotations

import atexit
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from workbench.core.model.errors import ProjectError
from workbench.core.model.project import PROJECT_FILE, RUNS_DIR

EXAMPLES_ENV = "SNN_WORKBENCH_EXAMPLES"
PROJECTS_ENV = "SNN_WORKBENCH_PROJECTS"
DEFAULT_EXAMPLE = "digits_conv"
#: what a copy leaves behind: outputs of the example's past runs in a source checkout
_NOT_COPIED = (RUNS_DIR, "variants", "deploy", "*.recovery.json")

_extracted = ExitStack()  # resources unpacked from a zipped install live until the exit
atexit.register(_extracted.close)


@cache
def resource_dir(name: str) -> Path:
    """A folder of the package's resources (``projects``, ``icons``) as a real path. An
    installed wheel is a plain folder; only a zipped package needs unpacking (``as_file``
    takes folders from Python 3.12 on)."""
    resource = files("workbench") / "resources" / name
    if isinstance(resource, Path):
        return resource
    return _extracted.enter_context(as_file(resource))


def examples_dir() -> Path:
    """``$SNN_WORKBENCH_EXAMPLES``, else the examples shipped in the package."""
    override = os.environ.get(EXAMPLES_ENV)
    return Path(override) if override else resource_dir("projects")


def list_examples() -> list[Path]:
    """The shipped example folders, by name."""
    folder = examples_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / PROJECT_FILE).is_file())


def user_projects_dir() -> Path:
    """Where the user's projects go, copies of the examples included:
    ``$SNN_WORKBENCH_PROJECTS``, else "SNN Workbench" in the user's documents folder."""
    override = os.environ.get(PROJECTS_ENV)
    if override:
        return Path(override)
    import platformdirs  # only when needed: the CLI's light commands never import it

    return platformdirs.user_documents_path() / "SNN Workbench"


@dataclass(frozen=True)
class ExampleCopy:
    """The user's copy of example ``name`` at ``folder``; ``made`` when it was made just now."""

    name: str
    folder: Path
    made: bool

    @property
    def note(self) -> str:
        """The line that says which folder is open and why it is not the example itself."""
        if self.made:
            return (f"copied the example {self.name} to {self.folder} (the shipped example "
                    "stays unchanged)")
        return f"opened your copy of {self.name} at {self.folder}"


def example_copy(name: str) -> ExampleCopy:
    """The user's copy of example ``name``: the one made before, else a new one."""
    source = examples_dir() / name
    if not (source / PROJECT_FILE).is_file():
        raise ProjectError("no such example project", where=name)
    target, n = user_projects_dir() / name, 2
    while target.exists() and not (target / PROJECT_FILE).is_file():
        # a folder of that name that holds no project is the user's: leave it alone
        target, n = user_projects_dir() / f"{name}-{n}", n + 1
    if target.exists():
        return ExampleCopy(name, target, made=False)
    # Copied under a temporary name and renamed in one step: a copy cut short is never taken
    # for the user's copy on the next launch.
    partial = target.with_name(f".{target.name}.copying-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=shutil.ignore_patterns(*_NOT_COPIED))
        os.replace(partial, target)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if (target / PROJECT_FILE).is_file():  # another process made it meanwhile
            return ExampleCopy(name, target, made=False)
        raise ProjectError(f"cannot copy the example {name} here: {exc.strerror or exc} (set "
                           f"{PROJECTS_ENV} to a folder you can write)",
                           where=str(target)) from None
    return ExampleCopy(name, target, made=True)


def shipped_example(path: str | Path) -> str | None:
    """The example's name when ``path`` is a shipped example's folder or project file."""
    path = Path(path)
    folder = path.parent if path.name == PROJECT_FILE else path
    try:
        inside = folder.resolve().parent == examples_dir().resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        return None
    return folder.name if inside and (folder / PROJECT_FILE).is_file() else None


def project_to_open(path: str | Path | None) -> tuple[Path, str]:
    """The folder to open for a project argument, and a note to show ("" for none).

    None is the default example; an example's bare name (``digits_mlp``) or its shipped folder
    is the user's copy of it. Any other path is itself, even a bare name that is a folder in
    the working directory."""
    if path is None:
        copy = example_copy(DEFAULT_EXAMPLE)
        return copy.folder, copy.note
    text = str(path)
    name = shipped_example(path)
    if name is None and text and os.sep not in text and "/" not in text \
            and not Path(text).exists() and (examples_dir() / text / PROJECT_FILE).is_file():
        name = text
    if name is None:
        return Path(path), ""
    copy = example_copy(name)
    return copy.folder, copy.note
