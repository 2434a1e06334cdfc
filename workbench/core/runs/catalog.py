"""Every run a user can start, through one door: :func:`start`.

Each function here returns a :class:`~workbench.core.runs.engine.Run` — recorded in the
project's ``runs/`` folder, guarded (an exception becomes ``RunFinished(status="failed")``),
computing on the project's device and precision with its thread count. The CLI prints a run's
events, the GUI's worker forwards them: both start runs only through this module.

=============  ===============================================================================
kind           what it does
=============  ===============================================================================
train          trains the network (saving the weights when asked)
evaluate       accuracy and the energy ledger on the test split
probe          one test sample's spikes, membranes, attention maps and reconstruction
compress       a compression method → a new variant project, before/after figures
replay         the compression passes recorded in a variant, re-run on its parent
check_fit      asks a backend what does not fit a target, naming the node
deploy         fit check, build, and a live run of the test set on a backend
export         writes the network in an exchange format (NIR)
import         reads an exchange file into a new project
submit         trains on a cluster through a runner plugin; the weights come back on success
sweep          one variant per combination of some settings' values, trained here or as jobs
=============  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import PROJECT_FILE
from workbench.core.model.specs import BackendSpec, CompressionSpec, RunnerSpec, Spec
from workbench.core.persistence.project_store import check_target
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import Run, launch
from workbench.core.runs.events import Artifact, Log, RunEvent, RunFinished, RunStarted
from workbench.core.runs.session_runs import evaluate, train  # session.train() too


def contribution(lookup: Any, spec_id: str, cls: type[Spec], what: str, *,
                 where: str = "") -> Any:
    """The installed spec ``spec_id`` of kind ``cls``; else an input error listing the ones
    that are installed."""
    spec = lookup.get(spec_id)
    if not isinstance(spec, cls):
        offered = ", ".join(s.id for s in lookup.of_kind(cls.KIND)) or "none installed"
        raise WorkbenchError(f"{spec_id!r} is not an installed {what} (available: {offered})",
                             where=where)
    return spec


# -- probe -----------------------------------------------------------------------------------
def probe(session: Any, *, sample: int = 0, layers: list[str] | None = None,
          membranes: bool = True, out: str | Path | None = None, run_id: str | None = None,
          cancel: CancelToken | None = None) -> Run:
    """One test sample through the network. The summary is JSON (per-layer spike counts and
    rates, label, prediction); ``RunFinished.result`` holds the
    :class:`~workbench.core.runs.probe.ProbeResult` for views; ``out`` writes an ``.npz``."""
    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        import numpy as np

        from workbench.core.build.compute import on_device
        from workbench.core.runs.probe import probe_arrays, probe_sample, probe_summary

        compute = session.compute()
        compute.enter()
        yield RunStarted(run_id, "probe", 1, {"sample": sample, "project": session.project.name,
                                              **compute.describe()})
        if session.model is None:
            session.build()
        with on_device(session.model, compute):  # the records come back on the CPU
            result = probe_sample(session, sample, membranes=membranes, layers=layers)
        summary = probe_summary(result, weights_loaded=session.weights_loaded)
        if out is not None:
            path = Path(out)
            try:
                np.savez_compressed(path, **probe_arrays(result))
            except OSError as exc:
                raise WorkbenchError(f"cannot write the file: {exc.strerror}",
                                     where=str(path)) from None
            summary["out"] = str(path)
            yield Artifact(run_id, str(path), "probe")
        yield RunFinished(run_id, "ok", summary=summary, result=result)

    return launch("probe", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


# -- compression -----------------------------------------------------------------------------
def compress(session: Any, *, method: str, params: dict[str, Any] | None = None,
             out: str | Path | None = None, name: str | None = None, limit: int | None = None,
             overwrite: bool = False, run_id: str | None = None,
             cancel: CancelToken | None = None) -> Run:
    """Compress the trained network with ``method`` into a variant saved at ``out``; the
    record goes into the parent project's ``runs/`` (the variant's history starts there).

    ``out`` is checked before the run starts: another project (or other files) there is
    replaced only with ``overwrite``, the project itself never (``TargetOccupied``,
    ``ProjectError``)."""
    from workbench.core.runs.compress import compress_events

    spec = contribution(session.lookup, method, CompressionSpec, "compression method",
                        where="method")
    if out is not None:
        check_target(out, overwrite=overwrite, source=session.project.folder)

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        events = compress_events(session, spec, params or {}, out, name, token, run_id, limit,
                                 overwrite=overwrite)
        yield from _on_the_cpu(session, run_id, "compression", events)

    return launch("compress", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


def replay(session: Any, *, variant: str | Path, out: str | Path | None = None,
           overwrite: bool = False, run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Re-run on ``session``'s project the compression passes recorded in ``variant`` beyond
    the ones the project already has; the last variant is saved to ``out`` (checked as
    :func:`compress` checks it)."""
    from workbench.core.persistence.project_files import load_project
    from workbench.core.runs.compress import replay_events

    passes = load_project(variant).compression[len(session.project.compression):]
    if not passes:
        raise WorkbenchError("records no compression pass beyond this project's",
                             where=str(variant))
    specs = [contribution(session.lookup, str(record.get("method")), CompressionSpec,
                          "compression method", where=f"{variant}: compression[{i}].method")
             for i, record in enumerate(passes)]

    if out is not None:
        check_target(out, overwrite=overwrite, source=session.project.folder)

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        yield from _on_the_cpu(session, run_id, "compression",
                               replay_events(session, passes, specs, out, token, run_id,
                                             overwrite=overwrite))

    return launch("replay", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


def _on_the_cpu(session: Any, run_id: str, what: str,
                events: Iterator[RunEvent]) -> Iterator[RunEvent]:
    """Compression and deployment compute on the CPU (the backends are CPU tools; compression
    methods handle their weights there): apply the project's threads, and say so when the
    project asks for another device instead of ignoring it silently."""
    from workbench.core.build.compute import on_the_cpu

    compute, elsewhere = on_the_cpu(session.compute_settings())
    compute.enter()
    first = True
    for event in events:
        yield event
        if first and elsewhere:
            yield Log(run_id, "info", f"{what} runs on the CPU; the project's device "
                                      f"({elsewhere}) is used by training, evaluation "
                                      "and probes")
        first = False


# -- deployment ------------------------------------------------------------------------------
def deploy_choice(project: Any, backend: str | None, target: str | None,
                  params: dict[str, Any] | None) -> tuple[str, str | None, dict[str, Any]]:
    """The backend, target and parameters to use: those given, completed from the project's
    last successful deployment when it used the same backend."""
    recorded = project.deploy or {}
    backend = backend or recorded.get("backend")
    if not backend:
        raise WorkbenchError("no backend given, and the project records no deploy target yet "
                             "(see `snn-workbench plugins` for the backends)", where="backend")
    same = backend == recorded.get("backend")
    target = target or (recorded.get("target") if same else None)
    merged = {**((recorded.get("params") or {}) if same else {}), **(params or {})}
    return backend, target, merged


def check_fit(session: Any, *, backend: str, target: str | None = None,
              params: dict[str, Any] | None = None, limit: int | None = 100,
              run_id: str | None = None, cancel: CancelToken | None = None) -> Run:
    """Ask ``backend`` what does not fit ``target``; the summary's ``fit`` lists the issues."""
    from workbench.core.runs.deploy import check_fit_events

    spec = contribution(session.lookup, backend, BackendSpec, "backend", where="backend")

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        yield from _on_the_cpu(session, run_id, "the fit check",
                               check_fit_events(session, spec, target, params or {}, limit,
                                                token, run_id))

    return launch("check", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


def deploy(session: Any, *, backend: str | None = None, target: str | None = None,
           params: dict[str, Any] | None = None, out: str | Path | None = None,
           limit: int | None = 100, run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Fit check, build and a live run on ``backend`` (default: the project's last target).
    A :class:`~workbench.core.runs.events.StepStarted` marks each tool step."""
    from workbench.core.runs.deploy import deploy_events, with_steps

    backend, target, params = deploy_choice(session.project, backend, target, params)
    spec = contribution(session.lookup, backend, BackendSpec, "backend", where="backend")
    if limit is not None and limit < 1:
        raise WorkbenchError("must be 1 or more", where="limit")

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        events = deploy_events(session, spec, target, out, params, limit, token, run_id)
        yield from _on_the_cpu(session, run_id, "deployment", with_steps(events))

    return launch("deploy", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


# -- exchange formats ------------------------------------------------------------------------
def exchange_backend(lookup: Any, fmt: str, params: dict[str, Any] | None = None) -> Any:
    """A backend object that reads and writes ``fmt`` files (``"nir"``), made with ``params``
    (checked; a bad one is named by its name, e.g. ``dt``)."""
    spec = lookup.backend_for_format(fmt)
    if spec is None:
        raise WorkbenchError(f"no installed plugin reads or writes {fmt.upper()} files "
                             "(see `snn-workbench plugins`)", where=fmt)
    try:
        values = spec.check_params(params or {})
    except WorkbenchError as exc:  # "params.dt" -> "dt": the name the caller passed
        raise WorkbenchError(exc.message, where=exc.where.rpartition(".")[2]) from None
    return spec.create(**values)


def export(session: Any, *, path: str | Path, fmt: str = "nir", run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Write the network (its trained weights when it has them) as a ``fmt`` file."""
    backend = exchange_backend(session.lookup, fmt)

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        target = Path(path)
        yield RunStarted(run_id, "export", 1, {"format": fmt, "file": str(target)})
        if session.model is None:
            session.build()
        if not session.has_trained_model:
            yield Log(run_id, "warning", f"{session.project.folder or session.project.name} has "
                                         "no trained weights; exporting untrained ones")
        details = backend.export_file(session, target) or {}
        yield Artifact(run_id, str(target), fmt)
        yield RunFinished(run_id, "ok", summary={"file": str(target), **details})

    return launch("export", body, record_to=session.project.folder, run_id=run_id,
                  cancel=cancel)


def import_file(lookup: Any, *, path: str | Path, out: str | Path, fmt: str = "nir",
                overwrite: bool = False, params: dict[str, Any] | None = None,
                run_id: str | None = None, cancel: CancelToken | None = None) -> Run:
    """Read a ``fmt`` file into a new project folder ``out``; the record goes into ``out`` once
    the project is there (a failed import leaves no folder behind, not even a record).
    ``RunFinished.result`` is the new :class:`~workbench.core.runs.session.Session`.
    Another project (or other files) at ``out`` is replaced only with ``overwrite``.
    ``params`` are the reading backend's parameters (NIR: ``{"dt": seconds}``)."""
    from workbench.core.persistence.files import regular_file
    from workbench.core.runs.exchange import import_events

    backend = exchange_backend(lookup, fmt, params)
    source, folder = Path(path), Path(out)
    regular_file(source, WorkbenchError, what=f"{fmt.upper()} file")  # missing, a FIFO...
    holder = next((p for p in folder.absolute().parents if (p / PROJECT_FILE).is_file()), None)
    if holder is not None:  # e.g. a NIR file exported into its project, imported beside it
        raise WorkbenchError(f"is inside the project folder {holder}: the new project would be "
                             "saved, copied and deleted as part of that one; choose a folder "
                             "outside it", where=str(folder))
    check_target(folder, overwrite=overwrite)

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        yield from import_events(backend, lookup, source, folder, fmt, run_id,
                                 overwrite=overwrite)

    def made() -> Path | None:
        return folder if (folder / PROJECT_FILE).exists() else None

    return launch("import", body, record_to=made, run_id=run_id, cancel=cancel)


# -- elsewhere ---------------------------------------------------------------------------------
def submit(session: Any, *, runner: str, params: dict[str, Any] | None = None,
           epochs: int | None = None, fresh: bool = False, run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Train the saved project on a cluster through the runner plugin ``runner`` (made with
    ``params``, e.g. the cluster's address); events arrive as a local training run's do, and
    the weights come back into the project only when the job succeeded
    (:mod:`workbench.core.runs.remote`)."""
    from workbench.core.runs.remote import submit as submit_job

    spec = contribution(session.lookup, runner, RunnerSpec, "runner", where="runner")
    return submit_job(session, spec, params or {}, epochs=epochs, fresh=fresh, run_id=run_id,
                      cancel=cancel)


def sweep(session: Any, *, axes: list[Any], runner: str | None = None,
          params: dict[str, Any] | None = None, **options: Any) -> Run:
    """Train one variant of the project per combination of the ``axes``' values
    (:class:`~workbench.core.runs.sweep.SweepAxis`): here, or as jobs of the runner plugin
    ``runner`` made with ``params`` (:mod:`workbench.core.runs.sweep`)."""
    from workbench.core.runs.sweep import sweep as sweep_run

    spec = (contribution(session.lookup, runner, RunnerSpec, "runner", where="runner")
            if runner is not None else None)
    return sweep_run(session, axes, runner=spec, runner_params=params, **options)


# -- the door ---------------------------------------------------------------------------------
RUNS: dict[str, Callable[..., Run]] = {
    "train": train, "evaluate": evaluate, "probe": probe, "compress": compress,
    "replay": replay, "check_fit": check_fit, "deploy": deploy, "export": export,
    "import": import_file, "submit": submit, "sweep": sweep,
}


def start(kind: str, subject: Any, /, **options: Any) -> Run:
    """Start a run of ``kind`` on ``subject`` (a Session; the plugin registry for ``import``).

    Raises :class:`WorkbenchError` for options that are wrong before anything runs; everything
    after that is reported by the run's own ``RunFinished``."""
    try:
        make = RUNS[kind]
    except KeyError:
        raise WorkbenchError(f"unknown run kind {kind!r} (kinds: {', '.join(RUNS)})") from None
    return make(subject, **options)
