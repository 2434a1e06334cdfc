"""Training on another machine: a run sent to a cluster through a runner plugin
(``wb_runners``), driven like a local training run.

The runner sends the saved project folder (less the outputs of past runs) as the job's working
directory and starts :data:`JOB_MODULE` there. The job checks that the cluster has the plugins
the project needs, runs ``snn-workbench train --json`` on a scratch copy of the folder and
prints, as its last line, the trained weights (base64). This module polls the job's output and
turns its JSON lines back into this run's own events, so the CLI prints them and the GUI's
training panel shows them as for a local run; cancelling the run stops the job.

Nothing comes back into the project unless the job succeeded. The weights are then checked as
any weights file is (a safetensors file holding exactly the tensors of the project's network,
with finite values) and saved with the project's usual weights commit, and the run's record is
written in one go. A job that fails or is stopped leaves the project folder as it was, with no
record either.

The weights travel in the job's log, so they are capped at :data:`MAX_WEIGHTS_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from workbench.core.model.errors import ProjectError, WeightsError, WorkbenchError
from workbench.core.model.project import PROJECT_FILE
from workbench.core.model.specs import Spec
from workbench.core.persistence.examples import _NOT_COPIED
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import Run, launch
from workbench.core.runs.events import (
    Artifact,
    EnergySample,
    Log,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)

log = logging.getLogger(__name__)

#: what the job runs, with the cluster's own Python (``python -m``)
JOB_MODULE = "workbench.cli.remote_job"
#: the job's last line on success, and its line for a failure it can explain
WEIGHTS_EVENT, FAILED_EVENT = "job_weights", "job_failed"
#: the most weights a job's log carries back (base64 makes them a third larger on the way)
MAX_WEIGHTS_BYTES = 64 << 20
#: what stays home: the outputs of past runs, as an example's copy leaves them
EXCLUDES = list(_NOT_COPIED)
#: states a job ends in (:attr:`JobUpdate.state`); before that "pending" or "running"
ENDED = ("succeeded", "failed", "stopped")
#: seconds between polls of the job, and the longest waits for its last lines and for a stop
POLL_S, TAIL_WAIT_S, STOP_WAIT_S = 0.5, 10.0, 30.0
#: how many of the job's last lines of plain output a failure quotes
FAILURE_LINES = 6

#: the job's JSON lines that become this run's events (the CLI's ``--json`` names)
_EVENTS: dict[str, type[RunEvent]] = {
    "run_started": RunStarted, "metric": MetricSample, "energy": EnergySample,
    "step": StepStarted, "log": Log}


@dataclass(frozen=True)
class JobUpdate:
    """What a job's ``poll()`` returns: its output since the last poll, its state
    ("pending", "running", "succeeded", "failed" or "stopped") and, once it ended, the
    cluster's reason when it gives one ("Job entrypoint command failed with exit code 2")."""

    output: str
    state: str
    reason: str = ""


def job_command(epochs: int | None = None, fresh: bool = False) -> list[str]:
    """The job's command line (run in the project folder the runner sent)."""
    command = ["python", "-m", JOB_MODULE]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    return command + (["--fresh"] if fresh else [])


def missing_plugins(project: Any, lookup: Any) -> dict[str, list[str]]:
    """``{plugin: ["spec id (what uses it)", ...]}`` for each plugin the project's training
    needs that ``lookup`` lacks (empty when nothing is missing): the dataset, encoder, learning
    rule and every node, a neuron chosen in a node's parameters included."""
    needs = [(project.dataset.id, "dataset"), (project.encoder.id, "encoder"),
             (project.training.rule.id, "training.rule")]
    for node in project.graph.nodes:
        needs.append((node.spec, f"node {node.id!r}"))
        needs += [(value["id"], f"node {node.id!r}") for value in node.params.values()
                  if isinstance(value, dict) and isinstance(value.get("id"), str)]
    missing: dict[str, list[str]] = {}
    for spec_id, what in needs:
        if lookup.get(spec_id) is None:
            uses = missing.setdefault(spec_id.split(".", 1)[0], [])
            if f"{spec_id} ({what})" not in uses:
                uses.append(f"{spec_id} ({what})")
    return missing


def submit(session: Any, spec: Spec, params: dict[str, Any], *, epochs: int | None = None,
           fresh: bool = False, run_id: str | None = None,
           cancel: CancelToken | None = None) -> Run:
    """Train ``session``'s saved project where the runner ``spec`` (made with ``params``)
    sends it; on success its weights replace the project's (``summary["weights"]``)."""
    folder = session.project.folder
    if folder is None or not (Path(folder) / PROJECT_FILE).is_file():
        raise ProjectError("the project is not saved in a folder yet; save it first: the "
                           "cluster trains the saved project")
    if epochs is not None and epochs < 1:
        raise WorkbenchError("must be 1 or more", where="epochs")
    try:
        values = spec.check_params(params)
    except WorkbenchError as exc:  # "params.address" -> "address": the name the caller gave
        raise WorkbenchError(exc.message, where=exc.where.rpartition(".")[2]) from None
    succeeded: list[bool] = []

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        runner = spec.create(**values)
        job = runner.submit(Path(folder), job_command(epochs, fresh), excludes=EXCLUDES,
                            env={"PYTHONUNBUFFERED": "1"})
        output = JobOutput(run_id, {"runner": spec.id, "job": job.id, "cluster": job.where})
        update = yield from _follow(job, output, token)
        if update.state != "succeeded" or token.requested:
            if update.state == "failed" and not token.requested:
                raise WorkbenchError(output.failure(update.reason), where=job.where)
            yield RunFinished(run_id, "cancelled", summary={"job": job.id})
            return
        summary = output.summary
        if summary is None or summary.get("status") != "ok" or output.weights is None:
            raise WorkbenchError("the job ended without its trained weights; "
                                 + output.failure(update.reason), where=job.where)
        path = adopt_weights(session, decode_weights(output.weights, where=job.where),
                             where=job.where)
        yield Artifact(run_id, str(path), "weights")
        kept = {k: v for k, v in summary.items() if k not in ("event", "status", "weights")}
        succeeded.append(True)  # the record is written from the next event on, all of it
        yield RunFinished(run_id, "ok", summary={**kept, "weights": str(path), "job": job.id})

    return launch("train", body, record_to=lambda: Path(folder) if succeeded else None,
                  run_id=run_id, cancel=cancel)


def _follow(job: Any, output: JobOutput, token: CancelToken) -> Iterator[RunEvent]:
    """Yield the job's events until it ends (stopping it once ``token`` is set); return its
    last :class:`JobUpdate`. A driver that goes away mid-run (Ctrl+C) stops the job too."""
    stop_asked = 0.0
    ended = False
    try:
        while True:
            update = job.poll()
            yield from output.feed(update.output)
            if update.state in ENDED:
                ended = True
                break
            if token.requested and not stop_asked:
                job.stop()
                stop_asked = time.monotonic()
            elif stop_asked and time.monotonic() - stop_asked > STOP_WAIT_S:
                yield Log(output.run_id, "warning",
                          f"{job.where} did not confirm the stop within {STOP_WAIT_S:g} s; "
                          "it may still be running there")
                ended = True
                return update
            time.sleep(POLL_S)
    finally:
        if not ended:
            _stop_quietly(job)
    # the job's last lines may reach its log a moment after it ended
    deadline = time.monotonic() + TAIL_WAIT_S
    while (update.state == "succeeded" and output.weights is None and output.failed is None
           and time.monotonic() < deadline):
        time.sleep(POLL_S)
        yield from output.feed(job.poll().output)
    yield from output.feed("\n")  # a last line without its newline
    return update


def _stop_quietly(job: Any) -> None:
    """Stop a job whose driver is going away: a failure to stop must not hide why."""
    try:
        job.stop()
    except Exception as exc:  # noqa: BLE001 - the error on its way out is the one to report
        log.debug("could not stop %s: %s", job.where, exc)


class JobOutput:
    """The job's output, line by line: its JSON events re-issued as this run's (with
    ``config`` added to its start), the rest kept for a failure's message."""

    def __init__(self, run_id: str, config: dict[str, Any]) -> None:
        self.run_id = run_id
        self.config = config
        self.summary: dict[str, Any] | None = None
        self.weights: dict[str, Any] | None = None
        self.failed: dict[str, Any] | None = None
        self._total = 0
        self._partial = ""
        self._tail: deque[str] = deque(maxlen=FAILURE_LINES)

    def feed(self, text: str) -> Iterator[RunEvent]:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            yield from self._line(line.rstrip("\r"))

    def failure(self, reason: str = "") -> str:
        """One message for a job that failed: its own explanation, else its last lines of
        output and the cluster's reason."""
        if self.failed is not None:
            return str(self.failed.get("error") or "the job failed")
        lines = list(self._tail)
        if reason and reason.splitlines()[0] not in lines:
            lines.append(reason.splitlines()[0])
        shown = " | ".join(lines) if lines else "no output"
        return f"the job failed on the cluster; its last lines: {shown}"

    def _line(self, line: str) -> Iterator[RunEvent]:
        item = _json_object(line)
        if item is None:
            if line.strip():
                self._tail.append(line.strip())
            return
        name = item["event"]
        if name == "summary":
            self.summary = item
        elif name == WEIGHTS_EVENT:
            self.weights = item
        elif name == FAILED_EVENT:
            self.failed = item
        elif name in _EVENTS:
            event = _event(_EVENTS[name], self.run_id, item)
            if event is None:
                self._tail.append(line.strip())
                return
            if isinstance(event, RunStarted):
                self._total = event.total
                remote = {"remote_run_id": item.get("run_id", "")}
                event = RunStarted(self.run_id, event.kind, event.total,
                                   {**event.config, **self.config, **remote})
            yield event
            if isinstance(event, MetricSample) and self._total:
                # the CLI's JSON has no per-batch progress: the metrics' step stands for it
                yield Progress(self.run_id, min(event.step, self._total), self._total,
                               event.epoch)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        item = json.loads(line)
    except ValueError:
        return None
    return item if isinstance(item, dict) and isinstance(item.get("event"), str) else None


def _event(cls: type[RunEvent], run_id: str, item: dict[str, Any]) -> RunEvent | None:
    """``item`` (a JSON line) as an event of ``cls`` of this run; None when it does not fit."""
    known = {f.name for f in fields(cls)} - {"run_id"}
    values = {k: v for k, v in item.items() if k in known}
    if isinstance(values.get("values"), dict):  # a NaN metric travels as JSON null
        values["values"] = {k: float("nan") if v is None else v
                            for k, v in values["values"].items()}
    try:
        return cls(run_id, **values)
    except TypeError:
        return None


# -- the result ---------------------------------------------------------------------------------
def decode_weights(item: dict[str, Any], *, where: str) -> bytes:
    """The weights bytes of the job's last line, checked against the size and hash it
    declares (a damaged or cut line is refused)."""
    try:
        data = base64.b64decode(str(item.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise WeightsError("the weights the job sent back are damaged (not base64); nothing "
                           "was saved", where=where) from None
    if len(data) > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"the weights the job sent back are {len(data) / 2**20:.0f} MiB, "
                           f"above the {MAX_WEIGHTS_BYTES >> 20} MiB a job's log carries; "
                           "nothing was saved", where=where)
    if hashlib.sha256(data).hexdigest() != item.get("sha256"):
        raise WeightsError("the weights the job sent back do not match their checksum (cut "
                           "or damaged on the way); nothing was saved", where=where)
    return data


def adopt_weights(session: Any, data: bytes, *, where: str) -> Path:
    """Check ``data`` as any weights file (a network of the session's project must take them)
    and save them as the project's weights; the session's network then holds them. Refused
    weights change neither the project nor the session. Returns the file written."""
    import tempfile

    from workbench.core.persistence.project_store import commit_weights
    from workbench.core.persistence.weights import load_weights

    kept = session.model, session.weights_loaded, session.trained_in_session
    try:
        model = session.build(load_saved_weights=False)
        with tempfile.TemporaryDirectory(prefix="wb-job-weights-") as scratch:
            path = Path(scratch) / "weights.safetensors"
            path.write_bytes(data)
            load_weights(model, path)
    except WeightsError as exc:
        raise WeightsError(f"the trained weights do not fit the project's network: "
                           f"{exc.message}; nothing was saved", where=where) from None
    finally:
        session.model, session.weights_loaded, session.trained_in_session = kept
    path = commit_weights(session.project, data)
    session.model, session.weights_loaded, session.trained_in_session = model, True, False
    return path
