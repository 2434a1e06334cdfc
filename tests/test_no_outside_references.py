"""The project's texts cite the papers and its own docs, never a file that ships elsewhere.

Plugin descriptions, parameter docs, docstrings and docs once cited specification and style
notes that were never part of the repository, so a user who followed the reference found
nothing. This test reads every tracked text file a user or contributor sees and fails on such a
reference, naming the file and line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("workbench", "plugins", "docs", "tests", "benchmarks")
FILES = ("README.md", "CHANGELOG.md", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".json", ".cfg", ".ini", ".yaml", ".yml", ".rst",
                 ".qss", ".svg", ".sh", ".pyi"}

# Built from pieces so that this file does not match itself.
FORBIDDEN = (
    "methods" + ".md",
    "design" + ".md",
    "style" + ".md",
    "core-v2-first-moves" + ".md",
    ".." + "/shared",
)


def _tracked_files() -> list[Path]:
    """The files git tracks or would track (new ones too, ignored ones not) under the folders
    above plus the top-level files; without git (a source archive) the same folders walked by
    hand."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                              "--", *FOLDERS, *FILES], cwd=ROOT,
                             capture_output=True, check=True, timeout=30).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
    if names:
        return [ROOT / n for n in names]
    skip = {".venv", "build", "dist", "__pycache__", ".git"}
    found = [ROOT / f for f in FILES]
    for folder in FOLDERS:
        found += [p for p in (ROOT / folder).rglob("*")
                  if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)]
    return found


def _text_files() -> list[Path]:
    return [p for p in _tracked_files()
            if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name in FILES)]


def test_the_scan_sees_the_code_and_the_docs():
    names = {p.relative_to(ROOT).as_posix() for p in _text_files()}
    assert "README.md" in names
    assert "plugins/wb_core/__init__.py" in names
    assert "docs/energy.md" in names


@pytest.mark.parametrize("needle", FORBIDDEN)
def test_no_reference_to_a_file_outside_the_repository(needle):
    hits = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        if needle not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if needle in line:
                hits.append(f"{path.relative_to(ROOT).as_posix()}:{number}: {line.strip()}")
    assert not hits, (f"{len(hits)} reference(s) to {needle!r}, a file this repository does not "
                      "have; cite the paper or our docs instead:\n" + "\n".join(hits))
