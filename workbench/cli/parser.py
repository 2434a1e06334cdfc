"""The command line's grammar: every sub-command, its options, and its handler.

Imports nothing heavy (no torch, numpy, core runs or Qt): ``--help`` and usage errors must be
instant. Each handler is a ``"module:function"`` string that ``main`` imports only when that
command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench import __version__
from workbench.cli._common import PROG
from workbench.cli.help_text import (
    MAIN_EPILOG,
    Parser,
    backend_listing,
    compression_listing,
    describe,
    examples,
)
from workbench.core.model.project import DEVICES, PRECISIONS

GUI_HANDLER = "workbench.cli.gui:run"


def _project_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", nargs="?", metavar="PROJECT",
                   help="project folder, project.json or an example's name, opened as your copy "
                        "(default: your copy of the digits_conv example)")


def _json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line; the last is the summary")


def _compute_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES,
                   help="compute on this device for this command (default: the project's "
                        "compute.device; the project file is not changed)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="arithmetic of the forward passes for this command (default: the "
                        "project's compute.precision)")


def _force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="replace a project (or save into a non-empty folder) already at the "
                        "output folder; the source project is never replaced")


def _param_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help=f"a parameter of the {what} (repeatable), e.g. --param bits=4")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", metavar="MODULE",
                        help="also load this module as a plugin (repeatable)")
    common.add_argument("--debug", action="store_true", help="print tracebacks of failures")

    parser = Parser(
        prog=PROG, parents=[common], epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=describe("Build, train, inspect and deploy spiking neural networks. "
                             "Without a command, opens the desktop app on the default example "
                             "project."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, module: str, help: str, more: str = "") -> Parser:
        # the description says what the command does; the epilog shows it used
        p = sub.add_parser(name, parents=[common], help=help,
                           description=describe(f"{help[:1].upper()}{help[1:]}. {more}"),
                           epilog=examples(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=f"workbench.cli.{module}:run")
        return p

    p = command("gui", "gui", "open the desktop app (the default)",
                "The same as running the program without a command.")
    _project_arg(p)
    p.set_defaults(json=False)

    p = command("train", "train", "train a project's network",
                "Trains with the project's learning rule, epochs and dataset, continuing from "
                "the saved weights unless --fresh; saves the weights into the project unless "
                "--no-save, and records the run in PROJECT/runs.")
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--epochs", type=int, help="override the project's number of epochs")
    p.add_argument("--fresh", action="store_true",
                   help="start from new random weights instead of the saved ones")
    p.add_argument("--no-save", action="store_true",
                   help="do not save the trained weights into the project")
    _compute_args(p)
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes of this machine (torchrun; gloo on the CPU, one "
                        "GPU each with CUDA): each takes its share of every batch, rank 0 "
                        "records the run and saves the weights")

    p = command("submit", "submit", "train a project on a cluster and bring the weights back",
                "Sends the saved project folder to a cluster through a runner plugin (--ray: a "
                "Ray cluster's Jobs API), trains it there with `train --json` and shows its "
                "progress here. When the job succeeds, its weights come back into the project "
                "(checked like any weights file) and the run is recorded in PROJECT/runs; a "
                "failed or stopped job (Ctrl+C) leaves the project as it was.")
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--ray", metavar="URL",
                   help="the Ray cluster's dashboard address, http://HOST:8265 (`ray start "
                        "--head` prints it); needs the cluster extra")
    p.add_argument("--runner", metavar="ID",
                   help="another runner plugin (see `plugins`), with its --param values")
    _param_arg(p, "runner")
    p.add_argument("--epochs", type=int, help="override the project's number of epochs")
    p.add_argument("--fresh", action="store_true",
                   help="start from new random weights instead of the saved ones")

    p = command("sweep", "sweep", "train one variant per combination of some settings' values",
                "Each --over names a setting (a dotted path, or its last part when that is "
                "unique: lr for training.rule.params.lr; --list shows them all) and its values; "
                "the trials are every combination. Each trial is written under "
                "PROJECT/variants/SWEEP-tNN, trained from fresh weights (here, one at a time, or "
                "as jobs on a cluster with --ray/--runner, --parallel at a time), then measured: "
                "test accuracy, size and energy per sample, compared in the app's Variants view. "
                "A failed or stopped trial leaves nothing behind; the project is not changed.")
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--over", action="append", metavar="SETTING=V1,V2,...",
                   help="a setting and its values (repeatable: the trials are every "
                        "combination), e.g. --over lr=0.001,0.003,0.01")
    p.add_argument("--list", action="store_true",
                   help="list the settings of the project a sweep can vary, and stop")
    p.add_argument("--epochs", type=int, help="override the project's number of epochs")
    p.add_argument("--name", help="the sweep's name (default: sweep-SETTING, numbered when taken)")
    p.add_argument("--limit", type=int,
                   help="measure each trial on the first N test samples only")
    p.add_argument("--ray", metavar="URL",
                   help="run the trials as jobs on this Ray cluster (http://HOST:8265)")
    p.add_argument("--runner", metavar="ID",
                   help="another runner plugin (see `plugins`), with its --param values")
    _param_arg(p, "runner")
    p.add_argument("--parallel", type=int, default=1, metavar="K",
                   help="jobs on the cluster at once (default 1; trials here run one at a time)")
    _force_arg(p)

    p = command("evaluate", "evaluate",
                "test accuracy and the energy ledger of the trained network",
                "The ledger is an estimate: each layer's counted operations times a cost "
                "table's energy per operation (--table; the tables are listed by `plugins`).")
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    p.add_argument("--table", help="cost table id (see `plugins`), or 'custom'")
    _compute_args(p)

    p = command("info", "info", "layers, shapes, parameters, bit widths and model size",
                "Also says whether the project is trained. Reads no data.")
    _project_arg(p)
    _json_arg(p)

    p = command("inspect", "inspect",
                "spikes and membranes of every neuron layer for one test sample",
                "Prints each layer's spike count and firing rate, and the predicted class; "
                "--out writes the full spike and membrane tensors. With --signal (sequence "
                "datasets), compares the signal encoders on the sample instead: spikes, spikes "
                "per channel per 1000 samples, reconstruction MSE and SNR of each.")
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--sample", type=int, default=0, help="index of the test sample")
    p.add_argument("--layer", action="append", help="only this neuron layer (repeatable)")
    p.add_argument("--out", type=Path, help="write spikes and membranes to this .npz file")
    p.add_argument("--signal", action="store_true",
                   help="compare the signal encoders on the sample (no network is run)")
    p.add_argument("--encoders", metavar="ID,ID",
                   help="with --signal: these encoder ids (default: the project's encoder, "
                        "then every installed signal encoder)")
    p.add_argument("--csv", type=Path, metavar="FILE",
                   help="with --signal: write step, channel, encoder, raw, spike, "
                        "reconstruction and threshold to this CSV file")
    _compute_args(p)

    p = command("compress", "compress", "compress a trained project into a new, smaller project",
                "Quantises, prunes or binarises the trained network, fine-tunes it and saves "
                "it as a new project (--out); prints accuracy, size, parameters and energy "
                "before and after. The methods and their parameters are listed below.")
    p.listing = compression_listing
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--method", help="compression method id (see `plugins`)")
    _param_arg(p, "method")
    p.add_argument("--out", type=Path, required=True, help="folder of the new project")
    _force_arg(p)
    p.add_argument("--name", help="name of the new project (default: PROJECT-method)")
    p.add_argument("--replay", type=Path, metavar="VARIANT",
                   help="instead of --method: re-run the passes recorded in this compressed "
                        "project on PROJECT")
    p.add_argument("--limit", type=int, help="measure before/after on the first N test samples")
    _compute_args(p)

    p = command("deploy", "deploy", "fit check, build and run a trained project on a backend",
                "Checks that the network fits the target, builds it (for an FPGA: integer "
                "conversion, core simulation, synthesis, place and route), runs the test set "
                "on it with a live energy figure and writes the report to --out. The backends, "
                "their targets and parameters are listed below.")
    p.listing = backend_listing
    _project_arg(p)
    _json_arg(p)
    p.add_argument("--backend", help="backend id (see `plugins`); default: the project's "
                                     "recorded deploy target")
    p.add_argument("--target", help="target of the backend (default: its first)")
    _param_arg(p, "backend")
    p.add_argument("--out", type=Path, help="output folder (default: PROJECT/deploy/...)")
    p.add_argument("--limit", type=int, default=100,
                   help="test samples for the checks and the energy run (default 100)")
    _compute_args(p)

    p = command("export-nir", "export_nir", "write a project's network as a NIR graph file",
                "NIR (Neuromorphic Intermediate Representation) is read by snnTorch, Norse, "
                "Sinabs, Rockpool, Lava and SpiNNaker2. The project must be trained.")
    p.add_argument("project", metavar="PROJECT", help="project folder or project.json")
    p.add_argument("out", type=Path, metavar="OUT.nir", help="the file to write")
    _json_arg(p)

    p = command("import-nir", "import_nir", "turn a NIR graph file into a project",
                "The new project holds the file's network and weights.")
    p.add_argument("input", type=Path, metavar="IN.nir", help="the NIR file")
    p.add_argument("out", type=Path, metavar="OUT_PROJECT", help="folder of the new project")
    p.add_argument("--dt", type=float, metavar="SECONDS",
                   help="the Euler step the file's LIF time constants assume (default: the one "
                        "the file records, else 1e-4 with a warning; Norse writes 0.001 "
                        "unless told otherwise)")
    _force_arg(p)
    _json_arg(p)

    p = command("plugins", "plugins", "installed plugins, their contributions, and failures",
                "A plugin that failed to load is listed with the reason.")
    _json_arg(p)
    return parser
