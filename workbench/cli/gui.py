"""``snn-workbench gui`` (and ``snn-workbench`` alone): open the desktop app on a project."""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import PROG
from workbench.core.model.errors import WorkbenchError


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.gui.preflight import check

    check()  # no display, or Qt's X11 libraries missing: one line with the fix, not a Qt abort
    try:
        from workbench.gui.app import run_app
    except ImportError as exc:
        raise WorkbenchError(
            f"the desktop app cannot start ({exc}); install it with `pip install -e .[gui]`, "
            f"or use the headless commands (`{PROG} --help`)") from None
    return run_app(args.project, plugins=args.plugin or ())
