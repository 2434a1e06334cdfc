"""What ``--help`` says beyond the options: each command's examples, and for ``compress`` and
``deploy`` the methods and backends the installed plugins offer, with their parameters.

The listings are made when the help is shown, from the plugins loaded then (the registry is
the truth, never a copy in this file); loading plugins imports no torch, and a backend's
targets come from its spec's ``known_targets``, so no backend is built for a help text.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

WIDTH = 100

EXAMPLES = {
    "gui": ["snn-workbench gui                      # the digits_conv example",
            "snn-workbench gui my_project           # a project folder (or its project.json)"],
    "train": ["snn-workbench train my_project --epochs 3",
              "snn-workbench train my_project --fresh --device cpu --json"],
    "submit": ["snn-workbench submit my_project --ray http://HOST:8265 --epochs 3",
               "snn-workbench submit my_project --ray http://127.0.0.1:8265 --fresh --json"],
    "sweep": ["snn-workbench sweep my_project --list",
              "snn-workbench sweep my_project --over lr=0.001,0.003,0.01 --epochs 5",
              ("snn-workbench sweep my_project --over time_steps=4,8 --over lr=0.002,0.01 "
               "--ray http://HOST:8265 --parallel 4")],
    "evaluate": ["snn-workbench evaluate my_project --limit 500",
                 "snn-workbench evaluate my_project --table wb_core.int8_45nm"],
    "info": ["snn-workbench info my_project         # layers, sizes, and whether it is trained",
             "snn-workbench info my_project --json"],
    "inspect": ["snn-workbench inspect my_project --sample 3",
                "snn-workbench inspect my_project --layer NAME --out spikes.npz",
                "snn-workbench inspect my_signals --signal --sample 3 --csv signal.csv"],
    "compress": [("snn-workbench compress my_project --method wb_qp_snn.rescaw --param bits=4 "
                  "--out my_project-4bit"),
                 ("snn-workbench compress my_project --method wb_qp_snn.svs_prune "
                  "--param ratio=0.3 --out pruned --limit 500"),
                 ("snn-workbench compress other_project --replay my_project-4bit "
                  "--out other-4bit")],
    "deploy": ["snn-workbench deploy my_project --backend wb_sim.simulator --limit 200",
               ("snn-workbench deploy my_project --backend wb_fpga.fpga --target ice40-up5k "
                "--param parallelism=8"),
               "snn-workbench deploy my_project     # again, to the target it last went to"],
    "export-nir": ["snn-workbench export-nir my_project my_network.nir"],
    "import-nir": ["snn-workbench import-nir my_network.nir imported_project",
                   "snn-workbench import-nir my_network.nir imported_project --force",
                   "snn-workbench import-nir norse_network.nir imported_project --dt 0.001"],
    "plugins": ["snn-workbench plugins", "snn-workbench plugins --json"],
}

MAIN_EPILOG = ("examples:\n  snn-workbench                          # the desktop app\n"
               "  snn-workbench train my_project --epochs 3\n"
               "  snn-workbench deploy my_project --backend wb_sim.simulator\n\n"
               "Each command's --help has its options and examples.")


def describe(text: str) -> str:
    """A description wrapped as argparse would (the raw formatter keeps the examples' lines,
    so the prose is wrapped here)."""
    return textwrap.fill(text, 79)


def examples(command: str) -> str:
    """The ``examples:`` block of a command's help."""
    lines = EXAMPLES.get(command, [])
    return "examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else ""


class Parser(argparse.ArgumentParser):
    """An argument parser whose help may list what the plugins offer, made only when the
    help is shown (``listing``), so parsing a command line loads no plugin."""

    listing: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.listing is None:
            return super().format_help()
        saved = self.epilog
        self.epilog = self.listing() + ("\n\n" + saved if saved else "")
        try:
            return super().format_help()
        finally:
            self.epilog = saved


# -- the listings ------------------------------------------------------------------------------
def _specs(kind: str) -> list[Any]:
    from workbench.pluginhost.manager import load_plugins

    host = load_plugins()
    return sorted(host.registry.of_kind(kind), key=lambda s: s.id)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value == "" else str(value)


def param_line(p: Any) -> str:
    """``name=default (kind, range, unit): doc`` for one parameter, wrapped."""
    facts = [f"one of {'|'.join(_value(c) for c in p.choices)}" if p.choices else p.kind]
    if p.low is not None or p.high is not None:
        low = "" if p.low is None else f"{p.low:g}"
        high = "" if p.high is None else f"{p.high:g}"
        facts.append(f"{low}..{high}")
    if p.unit:
        facts.append(p.unit)
    text = f"{p.name}={_value(p.default)} ({', '.join(facts)})"
    if p.doc:
        text += f": {p.doc}"
    return textwrap.fill(text, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 10)


def _entry(spec: Any, extra: Iterable[str] = ()) -> list[str]:
    lines = [f"  {spec.id}  {spec.display_name} [{spec.kind}]"]
    lines += [textwrap.fill(line, WIDTH, initial_indent=" " * 4, subsequent_indent=" " * 6)
              for line in extra]
    if spec.params:
        lines.append("    parameters (--param NAME=VALUE; the value shown is the default):")
        lines += [param_line(p) for p in spec.params]
    else:
        lines.append("    no parameters")
    return lines


def _safely(make: Callable[[], str]) -> str:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break --help
        return f"(the plugins could not be listed: {type(exc).__name__}: {exc})"


def compression_listing() -> str:
    """The compression methods of the installed plugins, with their parameters."""
    def make() -> str:
        specs = _specs("compression")
        if not specs:
            return "compression methods: none installed (see `snn-workbench plugins`)"
        lines = ["compression methods (--method ID), from the installed plugins:"]
        for spec in specs:
            lines += _entry(spec)
        return "\n".join(lines)

    return _safely(make)


def backend_listing() -> str:
    """The deployment backends of the installed plugins: targets and parameters."""
    def make() -> str:
        specs = _specs("backend")
        if not specs:
            return "backends: none installed (see `snn-workbench plugins`)"
        lines = ["backends (--backend ID, --target NAME), from the installed plugins:"]
        for spec in specs:
            targets = ", ".join(spec.known_targets) or "named by the backend when it runs"
            if len(spec.known_targets) > 1:
                targets += " (the first is the default)"
            lines += _entry(spec, [f"targets: {targets}"])
        return "\n".join(lines)

    return _safely(make)
