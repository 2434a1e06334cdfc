"""Example projects shipped in the repository's ``projects/`` folder."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.model.project import PROJECT_FILE

EXAMPLES_ENV = "SNN_WORKBENCH_EXAMPLES"
DEFAULT_EXAMPLE = "digits_conv"


def examples_dir() -> Path:
    """``$SNN_WORKBENCH_EXAMPLES``, else ``projects/`` beside the ``workbench`` package."""
    override = os.environ.get(EXAMPLES_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[3] / "projects"


def list_examples() -> list[Path]:
    folder = examples_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / PROJECT_FILE).is_file())


def default_project() -> Path:
    return examples_dir() / DEFAULT_EXAMPLE
