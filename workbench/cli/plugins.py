"""``snn-workbench plugins``: installed plugins, their contributions, and the failures.

Needs no project and loads no data: it only discovers the plugins.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli._common import emit, load_host


def run(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.pluginhost.registry import KIND_TITLES

    host = load_host(args)
    if args.json:
        emit(host.report.to_dict(), out)
        return 0
    for plugin in host.report.plugins:
        print(f"{plugin.name} {plugin.version}  ({plugin.module})", file=out)
        for kind, ids in plugin.contributions.items():
            print(f"  {KIND_TITLES.get(kind, kind)}: {', '.join(ids)}", file=out)
    for failure in host.report.failures:
        print(f"FAILED {failure.plugin} at {failure.stage}: {failure.message}", file=out)
    return 0
