"""Checks before Qt starts: a display to show the window on, and the system libraries of Qt's
X11 platform plugin.

Without them Qt prints "could not load the Qt platform plugin" and aborts with a core dump,
naming at most the first missing library (the others only show with ``QT_DEBUG_PLUGINS=1``).
These checks run before the QApplication exists and say the fix in one line: the exact
``apt-get`` command for every missing library, or the command line when there is no display.

Nothing here imports Qt: a Qt that cannot load must not stop the check itself.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from workbench.core.model.errors import WorkbenchError

PROG = "snn-workbench"
#: Debian/Ubuntu packages of the libraries Qt's xcb plugin and QtGui link to, where the name
#: does not follow from the library's (``libfoo.so.1`` -> ``libfoo1``)
PACKAGES = {
    "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0", "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3", "libpng16.so.16": "libpng16-16", "libz.so.1": "zlib1g",
}
#: without ldd: the libraries a bare Debian/Ubuntu desktop lacks, and their packages
USUAL_SUSPECTS = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4",
                  "xcb-keysyms": "libxcb-keysyms1"}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)

Ldd = Callable[[Path], "str | None"]


class LaunchProblem(WorkbenchError):
    """The desktop app cannot start on this machine as it is (exit status 2, one line)."""


def _platform(env: Mapping[str, str]) -> str:
    """The Qt platform asked for: the first of ``QT_QPA_PLATFORM``'s list, without options."""
    first = env.get("QT_QPA_PLATFORM", "").split(";")[0]
    return first.split(":")[0].strip().lower()


def uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will load its X11 (xcb) plugin: asked for, or the default on an X display
    (on a Wayland session Qt takes its Wayland plugin, which needs no xcb library)."""
    platform = _platform(env)
    return platform == "xcb" or (platform == "" and bool(env.get("DISPLAY"))
                                 and not env.get("WAYLAND_DISPLAY"))


def no_display(env: Mapping[str, str]) -> bool:
    """A windowing platform (xcb or Qt's default) with neither an X nor a Wayland display."""
    return _platform(env) in ("", "xcb") and not env.get("DISPLAY") \
        and not env.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, found without importing Qt; None when there is none."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    plugin = package / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def run_ldd(library: Path) -> str | None:
    """``ldd``'s output for ``library``; None when there is no ldd or it fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 or "not found" in done.stdout else None


def not_found(ldd_output: str) -> list[str]:
    """The libraries ldd could not find, each once, in ldd's order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def package_of(library: str) -> str:
    """The Debian/Ubuntu package that ships ``library`` (``libxcb-icccm.so.4`` ->
    ``libxcb-icccm4``), by the distributions' naming rule where the table has no entry."""
    if library in PACKAGES:
        return PACKAGES[library]
    stem, _, version = library.partition(".so")
    version = version.strip(".").split(".")[0]
    stem = stem.lower()
    return f"{stem}-{version}" if stem[-1:].isdigit() and version else f"{stem}{version}"


def missing_libraries(plugin: Path, ldd: Ldd = run_ldd,
                      find_library: Callable[[str], str | None] = ctypes.util.find_library,
                      ) -> dict[str, str]:
    """Each library Qt's xcb plugin needs and cannot load, with its package: from ldd on the
    plugin where it runs, else the three a bare desktop usually lacks."""
    output = ldd(plugin)
    if output is not None:
        return {library: package_of(library) for library in not_found(output)}
    return {f"lib{name}": package for name, package in USUAL_SUSPECTS.items()
            if find_library(name) is None}


def check(env: Mapping[str, str] | None = None, platform: str | None = None,
          ldd: Ldd = run_ldd, plugin: Path | None = None) -> None:
    """Raise :class:`LaunchProblem` with the fix when the app cannot show its window."""
    env = os.environ if env is None else env
    if not (platform or sys.platform).startswith("linux"):
        return
    if no_display(env):
        raise LaunchProblem(
            "no display to open the app on (neither DISPLAY nor WAYLAND_DISPLAY is set): run "
            f"it in a desktop session, use the command line instead (`{PROG} train PROJECT`, "
            f"`{PROG} --help`), or set QT_QPA_PLATFORM=offscreen to run the app unseen")
    if not uses_xcb(env):
        return
    plugin = plugin or xcb_plugin()
    if plugin is None:  # no PySide6: importing the app says how to install it
        return
    missing = missing_libraries(plugin, ldd)
    if missing:
        raise LaunchProblem(
            f"Qt's X11 platform plugin cannot load: {', '.join(missing)} not found; install "
            f"with `sudo apt-get install -y {' '.join(dict.fromkeys(missing.values()))}` "
            f"(or use the command line: `{PROG} --help`)")
