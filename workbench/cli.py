"""``snn-workbench``: the desktop app by default, headless sub-commands over the same core.

Exit status: 0 on success, 2 for bad input or usage (one line on stderr naming the file or
field), 1 for an internal failure (``--debug`` prints the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from workbench import __version__
from workbench.core.model.errors import WorkbenchError

PROG = "snn-workbench"
EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


class _UsageError(WorkbenchError):
    pass


# -- helpers ------------------------------------------------------------------------------------
def _emit(obj: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def _host(args: argparse.Namespace):
    from workbench.pluginhost.manager import load_plugins

    return load_plugins(modules=args.plugin or ())


def _session(args: argparse.Namespace):
    from workbench.core.persistence.examples import default_project
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.session import Session

    host = _host(args)
    session = Session(load_project(args.project or default_project()), host.registry)
    for note in session.notes:
        logging.getLogger(PROG).warning(note)
    return session


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


class _Progress:
    """A tqdm bar on an interactive terminal; silent otherwise."""

    def __init__(self, enabled: bool, desc: str) -> None:
        self.bar = None
        self.enabled = enabled
        self.desc = desc

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="batch", file=sys.stderr,
                            leave=False, dynamic_ncols=True)
        self.bar.n = done
        self.bar.refresh() if done == total else self.bar.update(0)

    def write(self, line: str, out: TextIO) -> None:
        if self.bar is not None:
            self.bar.write(line, file=out)
        else:
            print(line, file=out)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _drive(events: Iterator[Any], args: argparse.Namespace, out: TextIO,
           on_event: Callable[[Any, _Progress], None], desc: str) -> dict[str, Any]:
    """Consume a run's events: JSON lines with ``--json``, else a bar and readable lines.

    Returns the final summary (with ``status``); raises on failure so ``main`` maps the exit
    status.
    """
    progress = _Progress(not args.json and sys.stderr.isatty(), desc)
    finished = None
    try:
        for event in events:
            if event.name == "run_finished":
                finished = event
                continue
            if args.json:
                if event.name != "progress":
                    _emit(event.to_dict(), out)
            elif event.name == "progress":
                progress.update(event.done, event.total)
            else:
                on_event(event, progress)
    finally:
        progress.close()
    if finished is None:  # a generator ends with RunFinished by contract
        raise RuntimeError("the run ended without a result")
    if finished.status == "failed":
        if finished.error_kind == "input":
            raise WorkbenchError(finished.error)
        raise RuntimeError(finished.error + ("\n" + finished.traceback if args.debug else ""))
    return {"status": finished.status, **finished.summary}


# -- commands -----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs.records import recorded

    session = _session(args)
    if args.epochs is not None and args.epochs < 0:
        raise _UsageError("--epochs must be 0 or more")
    total_epochs = session.project.training.epochs if args.epochs is None else args.epochs

    def show(event: Any, progress: _Progress) -> None:
        if event.name == "metric" and event.epoch_end:
            v = event.values
            progress.write(f"epoch {event.epoch:>3}/{total_epochs}  loss {v['train_loss']:.4f}  "
                           f"train {_pct(v['train_accuracy'])}  test {_pct(v['test_accuracy'])}",
                           out)
        elif event.name == "run_started" and session.weights_loaded:
            progress.write("continuing from the saved weights (--fresh starts over)", out)

    events = session.train(epochs=args.epochs, fresh=args.fresh)
    summary = _drive(recorded(events, session.project.folder), args, out, show, "training")
    saved = None
    if summary["status"] == "ok" and not args.no_save and session.project.folder is not None:
        saved = session.save_weights()
        summary["weights"] = str(saved)
    if args.json:
        _emit({"event": "summary", **summary}, out)
    else:
        status = summary["status"]
        line = f"{status}: {summary.get('epochs', 0)} epoch(s) in {summary.get('seconds', 0):.1f} s"
        if "test_accuracy" in summary:
            line += (f", test accuracy {_pct(summary['test_accuracy'])} "
                     f"(best {_pct(summary['best_test_accuracy'])})")
        print(line, file=out)
        if saved:
            print(f"weights saved to {saved}", file=out)
    return EXIT_OK if summary["status"] == "ok" else EXIT_INTERNAL


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.runs.records import recorded

    session = _session(args)
    if args.table:
        session.project.energy.table = args.table
    session.build()
    if not session.weights_loaded:
        logging.getLogger(PROG).warning(
            "%s has no trained weights; evaluating the untrained network",
            session.project.folder or "the project")
    events = session.evaluate(limit=args.limit)
    summary = _drive(recorded(events, session.project.folder), args, out, lambda e, p: None,
                     "evaluating")
    summary["weights_loaded"] = session.weights_loaded
    if args.json:
        _emit({"event": "summary", **summary}, out)
        return EXIT_OK
    energy = summary["energy"]
    print(f"accuracy {_pct(summary['accuracy'])} on {summary['samples']} test samples", file=out)
    print(f"energy (estimate, {energy['table_name']}): {energy['total_pj_per_sample'] / 1e6:.4f} "
          f"µJ/sample  = {energy['macs_per_sample']:.0f} MACs × {energy['e_mac_pj']} pJ + "
          f"{energy['sops_per_sample']:.0f} SOPs × {energy['e_ac_pj']} pJ", file=out)
    print(f"source: {energy['source']}", file=out)
    print(f"{'layer':<18}{'input':>8}{'rate':>8}{'MACs':>12}{'SOPs':>12}{'pJ':>14}", file=out)
    for layer in energy["layers"]:
        print(f"{layer['name']:<18}{layer['input']:>8}{layer['firing_rate']:>8.3f}"
              f"{layer['macs']:>12.0f}{layer['sops']:>12.0f}{layer['pj']:>14.1f}", file=out)
    for neuron in energy["neurons"]:
        print(f"  neurons {neuron['name']}: firing rate {neuron['firing_rate']:.3f}", file=out)
    return EXIT_OK


def cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.build.info import describe
    from workbench.core.model.errors import WeightsError

    session = _session(args)
    try:  # the saved weights say which layers are quantised, so the sizes are the real ones
        model = session.build()
    except WeightsError as exc:
        logging.getLogger(PROG).warning("%s; sizes are those of the graph at full precision", exc)
        model = session.build(load_saved_weights=False)
    data = session.data()
    project = session.project
    summary = {
        "name": project.name,
        "folder": str(project.folder) if project.folder else None,
        "dataset": project.dataset.id,
        "input_shape": list(data.input_shape),
        "classes": data.n_classes,
        "encoder": project.encoder.id,
        "time_steps": project.time_steps,
        "has_weights": bool(project.weights_path and project.weights_path.exists()),
        **describe(model),
    }
    if args.json:
        _emit(summary, out)
        return EXIT_OK
    print(f"{project.name}: {project.description}".rstrip(": "), file=out)
    print(f"dataset {summary['dataset']} {summary['input_shape']} -> {summary['classes']} classes; "
          f"encoder {summary['encoder']}, T = {summary['time_steps']}", file=out)
    print(f"{'layer':<14}{'spec':<26}{'output':<16}{'params':>9}{'bits':>7}", file=out)
    for layer in summary["layers"]:
        bits = ",".join(str(b) for b in layer["bits"]) or "-"
        print(f"{layer['name']:<14}{layer['spec']:<26}{str(layer['out_shape']):<16}"
              f"{layer['params']:>9}{bits:>7}", file=out)
    print(f"{summary['params']} parameters, {summary['size_mb']:.4f} MB "
          f"({summary['bytes']:.0f} bytes)", file=out)
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.pluginhost.registry import KIND_TITLES

    host = _host(args)
    report = host.report.to_dict()
    if args.json:
        _emit(report, out)
        return EXIT_OK
    for plugin in host.report.plugins:
        print(f"{plugin.name} {plugin.version}  ({plugin.module})", file=out)
        for kind, ids in plugin.contributions.items():
            print(f"  {KIND_TITLES.get(kind, kind)}: {', '.join(ids)}", file=out)
    for failure in host.report.failures:
        print(f"FAILED {failure.plugin} at {failure.stage}: {failure.message}", file=out)
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    import numpy as np
    import torch

    from workbench.core.build.probes import SpikeProbe

    session = _session(args)
    model = session.build()
    split = session.data().test
    if not 0 <= args.sample < len(split):
        raise _UsageError(f"--sample must be between 0 and {len(split) - 1}")
    x, y = split.batch(np.array([args.sample]))
    model.eval()
    with torch.no_grad(), SpikeProbe(model, layers=args.layer or None, membranes=True) as probe:
        scores = model(session.encoder()(x))
    from workbench.core.model.readout import class_scores

    predicted = int(class_scores(scores).argmax(-1)[0])
    layers = {name: {"shape": list(r.spikes.shape[2:]), "spikes": int(r.spikes.sum()),
                     "firing_rate": float(r.spikes.float().mean())}
              for name, r in probe.records.items()}
    result = {"sample": args.sample, "label": int(y[0]), "predicted": predicted,
              "weights_loaded": session.weights_loaded, "layers": layers}
    if args.out:
        arrays = {}
        for name, r in probe.records.items():
            arrays[f"{name}/spikes"] = r.spikes[:, 0].numpy().astype(np.uint8)
            if r.membrane is not None:
                arrays[f"{name}/membrane"] = r.membrane[:, 0].numpy()
        np.savez_compressed(args.out, **arrays)
        result["out"] = str(args.out)
    if args.json:
        _emit(result, out)
        return EXIT_OK
    print(f"sample {args.sample}: label {result['label']}, predicted {predicted}", file=out)
    for name, layer in layers.items():
        print(f"  {name:<16} {str(layer['shape']):<14} {layer['spikes']:>7} spikes  "
              f"rate {layer['firing_rate']:.3f}", file=out)
    if args.out:
        print(f"spikes and membranes written to {args.out}", file=out)
    return EXIT_OK


def _parse_params(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (``4``, ``0.5``, ``true``),
    as text otherwise."""
    params: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise _UsageError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params[key.strip()] = value
    return params


def _contribution(registry: Any, spec_id: str, cls: type, what: str) -> Any:
    spec = registry.get(spec_id)
    if not isinstance(spec, cls):
        offered = ", ".join(s.id for s in registry.of_kind(cls.KIND)) or "none installed"
        raise _UsageError(f"{spec_id!r} is not an installed {what} (available: {offered})")
    return spec


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e3:.1f} kB" if n_bytes < 1e6 else f"{n_bytes / 1e6:.2f} MB"


def _print_comparison(summary: dict[str, Any], out: TextIO) -> None:
    before, after = summary["before"], summary["after"]
    rows = [("accuracy", _pct(before["accuracy"]), _pct(after["accuracy"])),
            ("model size", _size(before["model_size_bytes"]), _size(after["model_size_bytes"])),
            ("parameters", f"{before['params']}", f"{after['params']}"),
            ("energy/sample", f"{before['total_pj_per_sample'] / 1e6:.4f} µJ",
             f"{after['total_pj_per_sample'] / 1e6:.4f} µJ")]
    print(f"{'':<16}{'before':>14}{'after':>14}", file=out)
    for name, b, a in rows:
        print(f"{name:<16}{b:>14}{a:>14}", file=out)
    print("bits per layer:", file=out)
    for layer, bits in after["bits"].items():
        print(f"  {layer:<14}{before['bits'].get(layer, '-')!s:>4} -> {bits}", file=out)
    removed = [layer for layer in before["bits"] if layer not in after["bits"]]
    if removed:
        print(f"  removed: {', '.join(removed)}", file=out)


def cmd_compress(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.model.specs import CompressionSpec
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.compress import compress, replay

    session = _session(args)
    registry = session.lookup
    if args.replay:
        if args.method:
            raise _UsageError("give either --method or --replay, not both")
        recorded = load_project(args.replay).compression
        passes = recorded[len(session.project.compression):]
        if not passes:
            raise _UsageError(f"{args.replay} records no compression pass beyond this project's")
        events = replay(session, passes, registry, out=args.out)
    else:
        if not args.method:
            raise _UsageError("--method is required (see `snn-workbench plugins` for the "
                              "compression methods)")
        spec = _contribution(registry, args.method, CompressionSpec, "compression method")
        events = compress(session, spec, _parse_params(args.param), out=args.out,
                          name=args.name, limit=args.limit)

    def show(event: Any, progress: _Progress) -> None:
        if event.name == "metric" and event.epoch_end:
            v = event.values
            progress.write(f"  fine-tune epoch {event.epoch}: loss {v['train_loss']:.4f}, "
                           f"test {_pct(v['test_accuracy'])}", out)
        elif event.name == "log":
            progress.write(event.message, out)

    summary = _drive(events, args, out, show, "compressing")
    if args.json:
        _emit({"event": "summary", **summary}, out)
        return EXIT_OK if summary["status"] == "ok" else EXIT_INTERNAL
    if summary["status"] != "ok":
        print(f"{summary['status']}", file=out)
        return EXIT_INTERNAL
    _print_comparison(summary, out)
    if summary.get("project"):
        print(f"compressed project saved to {summary['project']}", file=out)
    return EXIT_OK


def _print_report(report: dict[str, Any], out: TextIO, indent: str = "  ") -> None:
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:", file=out)
            _print_report(value, out, indent + "  ")
        elif isinstance(value, list) and len(value) > 8:
            print(f"{indent}{key}: [{len(value)} entries]", file=out)
        else:
            print(f"{indent}{key}: {value}", file=out)


def cmd_deploy(args: argparse.Namespace, out: TextIO) -> int:
    from workbench.core.model.specs import BackendSpec
    from workbench.core.runs.deploy import deploy

    session = _session(args)
    recorded = session.project.deploy or {}
    backend = args.backend or recorded.get("backend")
    if not backend:
        raise _UsageError("--backend is required: the project records no deploy target yet "
                          "(see `snn-workbench plugins` for the backends)")
    spec = _contribution(session.lookup, backend, BackendSpec, "backend")
    same = backend == recorded.get("backend")
    target = args.target or (recorded.get("target") if same else None)
    params = {**(recorded.get("params") or {} if same else {}), **_parse_params(args.param)}
    events = deploy(session, spec, target=target, out_dir=args.out, params=params,
                    limit=args.limit)
    last_step = [""]

    def show(event: Any, progress: _Progress) -> None:
        if event.name == "log":
            progress.write(f"{event.level}: {event.message}" if event.level != "info"
                           else event.message, out)

    def on_progress(event: Any) -> None:
        if event.message and event.message != last_step[0]:
            last_step[0] = event.message
            if not args.json:
                print(f"[{event.done}/{event.total}] {event.message}", file=out)

    def events_with_steps():
        for event in events:
            if event.name == "progress":
                on_progress(event)
            yield event

    summary = _drive(events_with_steps(), args, out, show, "deploying")
    if args.json:
        _emit({"event": "summary", **summary}, out)
        return EXIT_OK if summary["status"] == "ok" else EXIT_INTERNAL
    if summary["status"] != "ok":
        print(summary["status"], file=out)
        return EXIT_INTERNAL
    print(f"deployed {session.project.name} with {summary['backend']} to {summary['target']}",
          file=out)
    print("report:", file=out)
    _print_report(summary.get("report") or {}, out)
    live, estimate = summary.get("live") or {}, summary.get("estimate") or {}
    if live:
        print("run on the test set:", file=out)
        _print_report(live, out)
    if estimate:
        print(f"estimate ({estimate['table']}): {estimate['pj_per_sample'] / 1e6:.4f} µJ/sample "
              f"for the torch model, accuracy {_pct(estimate['accuracy'])}", file=out)
    print(f"files in {summary['out']}", file=out)
    return EXIT_OK


def _exchange_backend(registry: Any, fmt: str) -> Any:
    spec = registry.backend_for_format(fmt)
    if spec is None:
        raise _UsageError(f"no installed plugin reads or writes {fmt.upper()} files "
                          "(see `snn-workbench plugins`)")
    return spec.create()


def cmd_export_nir(args: argparse.Namespace, out: TextIO) -> int:
    session = _session(args)
    backend = _exchange_backend(session.lookup, "nir")
    session.build()
    if not session.weights_loaded:
        logging.getLogger(PROG).warning("%s has no trained weights; exporting untrained ones",
                                        session.project.folder or "the project")
    result = backend.export_file(session, args.out)
    result = {"file": str(args.out), **(result or {})}
    if args.json:
        _emit(result, out)
    else:
        print(f"wrote {args.out}", file=out)
        for key, value in result.items():
            if key != "file":
                print(f"  {key}: {value}", file=out)
    return EXIT_OK


def cmd_import_nir(args: argparse.Namespace, out: TextIO) -> int:
    host = _host(args)
    backend = _exchange_backend(host.registry, "nir")
    if not Path(args.input).is_file():
        raise _UsageError(f"{args.input}: no such file")
    folder = backend.import_file(args.input, args.out, host.registry)
    if args.json:
        _emit({"project": str(folder)}, out)
    else:
        print(f"imported {args.input} as the project {folder}", file=out)
    return EXIT_OK


def cmd_gui(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from workbench.gui.app import run_app
    except ImportError as exc:
        raise WorkbenchError(
            f"the desktop app cannot start ({exc}); install it with `pip install -e .[gui]`, "
            f"or use the headless commands (`{PROG} --help`)") from None
    return run_app(args.project, plugins=args.plugin or ())


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", metavar="MODULE",
                        help="also load this module as a plugin (repeatable)")
    common.add_argument("--debug", action="store_true", help="print tracebacks of failures")

    parser = argparse.ArgumentParser(
        prog=PROG, parents=[common],
        description="Build, train, inspect and deploy spiking neural networks. Without a "
                    "command, opens the desktop app on the default example project.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def project_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("project", nargs="?", metavar="PROJECT",
                       help="project folder or project.json (default: the digits_conv example)")

    def json_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true",
                       help="one JSON object per line; the last is the summary")

    p = sub.add_parser("gui", parents=[common], help="open the desktop app (the default)")
    project_arg(p)
    p.set_defaults(func=cmd_gui, json=False)

    p = sub.add_parser("train", parents=[common], help="train a project's network")
    project_arg(p)
    json_arg(p)
    p.add_argument("--epochs", type=int, help="override the project's number of epochs")
    p.add_argument("--fresh", action="store_true",
                   help="start from new random weights instead of the saved ones")
    p.add_argument("--no-save", action="store_true",
                   help="do not write weights.safetensors into the project")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", parents=[common],
                       help="test accuracy and the energy ledger of the trained network")
    project_arg(p)
    json_arg(p)
    p.add_argument("--limit", type=int, help="evaluate only the first N test samples")
    p.add_argument("--table", help="cost table id (see `plugins`), or 'custom'")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", parents=[common],
                       help="layers, shapes, parameters, bit widths and model size")
    project_arg(p)
    json_arg(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("inspect", parents=[common],
                       help="spikes and membranes of every neuron layer for one test sample")
    project_arg(p)
    json_arg(p)
    p.add_argument("--sample", type=int, default=0, help="index of the test sample")
    p.add_argument("--layer", action="append", help="only this neuron layer (repeatable)")
    p.add_argument("--out", type=Path, help="write spikes and membranes to this .npz file")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("compress", parents=[common],
                       help="compress a trained project into a new, smaller project")
    project_arg(p)
    json_arg(p)
    p.add_argument("--method", help="compression method id (see `plugins`)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a parameter of the method (repeatable), e.g. --param bits=4")
    p.add_argument("--out", type=Path, required=True, help="folder of the new project")
    p.add_argument("--name", help="name of the new project (default: PROJECT-method)")
    p.add_argument("--replay", type=Path, metavar="VARIANT",
                   help="instead of --method: re-run the passes recorded in this compressed "
                        "project on PROJECT")
    p.add_argument("--limit", type=int, help="measure before/after on the first N test samples")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("deploy", parents=[common],
                       help="fit check, build and run a trained project on a backend")
    project_arg(p)
    json_arg(p)
    p.add_argument("--backend", help="backend id (see `plugins`); default: the project's "
                                     "recorded deploy target")
    p.add_argument("--target", help="target of the backend (default: its first)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a parameter of the backend (repeatable)")
    p.add_argument("--out", type=Path, help="output folder (default: PROJECT/deploy/...)")
    p.add_argument("--limit", type=int, default=100,
                   help="test samples for the checks and the energy run (default 100)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("export-nir", parents=[common],
                       help="write a project's network as a NIR graph file")
    p.add_argument("project", metavar="PROJECT", help="project folder or project.json")
    p.add_argument("out", type=Path, metavar="OUT.nir", help="the file to write")
    json_arg(p)
    p.set_defaults(func=cmd_export_nir)

    p = sub.add_parser("import-nir", parents=[common],
                       help="turn a NIR graph file into a project")
    p.add_argument("input", type=Path, metavar="IN.nir", help="the NIR file")
    p.add_argument("out", type=Path, metavar="OUT_PROJECT", help="folder of the new project")
    json_arg(p)
    p.set_defaults(func=cmd_import_nir)

    p = sub.add_parser("plugins", parents=[common],
                       help="installed plugins, their contributions, and failures")
    json_arg(p)
    p.set_defaults(func=cmd_plugins)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit with status 2 here
    if args.command is None:
        args.func, args.project, args.json = cmd_gui, None, False
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    try:
        return args.func(args, out)
    except WorkbenchError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{PROG}: internal error: {type(exc).__name__}: {message} "
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
