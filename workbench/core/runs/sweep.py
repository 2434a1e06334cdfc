"""Hyper-parameter sweeps: the project trained once per combination of some settings' values,
each trial a variant project of its own.

A sweep has one or more axes, each a setting (a dotted path of
:mod:`workbench.core.model.setting_paths`: ``training.rule.params.lr``, ``time_steps``,
``nodes.fc1.bits``…) and the values it takes; the trials are every combination. Each trial is
written as a project under ``<project>/variants/<sweep>-tNN/`` (the project as it is, with the
trial's values, a ``sweep`` record in its ``extras``) and trained from fresh weights: here, one
after another, or as jobs of a runner plugin (a Ray cluster, :mod:`~workbench.core.runs.remote`),
several at once. A trained trial is then measured like a compressed variant (test accuracy,
size, energy per sample) and the figures go into its record, which the Variants view reads.

A trial that fails or is stopped leaves no folder behind; the sweep goes on with the next one
and its summary says which failed and why. The project itself is never changed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.model.errors import ProjectError, WorkbenchError
from workbench.core.model.project import Project
from workbench.core.model.setting_paths import apply_setting, find_setting
from workbench.core.persistence.project_store import check_target, commit_project
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import Run, launch
from workbench.core.runs.events import (
    Artifact,
    Log,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)

#: the folder of a project's variants (compressed ones and sweep trials)
VARIANTS_DIR = "variants"
#: the most trials one sweep may have (a typo in a grid should not start thousands of jobs)
MAX_TRIALS = 256
#: the key of a trial's record in its project's ``extras``
RECORD_KEY = "sweep"
#: the figures a trial's record keeps (those of a compressed variant's record)
FIGURES = ("accuracy", "model_size_bytes", "params", "total_pj_per_sample")
#: a sweep's progress counts hundredths of a trial (``done / total`` is the whole sweep's)
PROGRESS_PER_TRIAL = 100


@dataclass(frozen=True)
class SweepAxis:
    """A setting and the values it takes."""

    path: str
    values: tuple[Any, ...]


def spaced(low: float, high: float, count: int, *, log: bool = False,
           integer: bool = False) -> list[Any]:
    """``count`` values from ``low`` to ``high``, evenly or (``log``) geometrically spaced;
    rounded to whole numbers, without repeats, for an integer setting."""
    if count < 1:
        raise WorkbenchError("must be 1 or more", where="count")
    if log and (low <= 0 or high <= 0):
        raise WorkbenchError("a log spacing needs values above 0", where="from")
    if count == 1:
        values = [low]
    elif log:
        ratio = (high / low) ** (1 / (count - 1))
        values = [low * ratio**i for i in range(count)]
    else:
        values = [low + (high - low) * i / (count - 1) for i in range(count)]
    if integer:
        return list(dict.fromkeys(round(v) for v in values))
    return [float(f"{v:.6g}") for v in values]


def parse_values(text: str, *, where: str = "values") -> tuple[Any, ...]:
    """``"0.001, 0.01"`` as values: each item read as JSON when it parses (``4``, ``0.5``,
    ``true``), as text otherwise (a choice such as ``adam``)."""
    import json

    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise WorkbenchError("expected values between commas, e.g. 0.001, 0.01",
                                 where=where)
        try:
            values.append(json.loads(item))
        except ValueError:
            values.append(item)
    return tuple(values)


def check_axes(project: Project, lookup: Any, axes: list[SweepAxis]) -> list[SweepAxis]:
    """The axes with each value checked and converted by its setting's parameter spec; a bad
    path or value raises :class:`ProjectError` naming it."""
    if not axes:
        raise WorkbenchError("give at least one setting and its values", where="sweep")
    checked: list[SweepAxis] = []
    for axis in axes:
        setting = find_setting(project, lookup, axis.path)
        if any(setting.path == done.path for done in checked):
            raise ProjectError("is swept twice; give all its values at once", where=axis.path)
        if not axis.values:
            raise ProjectError("no values given", where=axis.path)
        values = []
        for value in axis.values:
            try:
                values.append(setting.param.coerce(value))
            except ValueError as exc:
                raise ProjectError(str(exc), where=axis.path) from None
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise ProjectError(f"the value {repeated[0]!r} is given twice", where=axis.path)
        checked.append(SweepAxis(setting.path, tuple(values)))  # the whole path, from here on
    count = math.prod(len(axis.values) for axis in checked)
    if count > MAX_TRIALS:
        raise WorkbenchError(f"{count} trials is more than the {MAX_TRIALS} one sweep may "
                             "have; give fewer values", where="sweep")
    return checked


def trial_values(axes: list[SweepAxis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    return [dict(zip([a.path for a in axes], combo, strict=True))
            for combo in itertools.product(*(a.values for a in axes))]


def values_text(values: dict[str, Any]) -> str:
    """"lr=0.01, time_steps=8": each setting by its last name."""
    return ", ".join(f"{path.rpartition('.')[2]}={value}" for path, value in values.items())


def sweep_name(folder: Path, axes: list[SweepAxis]) -> str:
    """``sweep-lr``, or ``sweep-lr-2``… when a sweep of that name is already there."""
    base = "sweep-" + "-".join(a.path.rpartition(".")[2] for a in axes)
    variants = folder / VARIANTS_DIR
    for n in itertools.count(1):
        name = base if n == 1 else f"{base}-{n}"
        trial = re.compile(re.escape(name) + r"-t\d+")  # not sweep-lr-time_steps-t01
        if not variants.is_dir() or not any(trial.fullmatch(p.name) for p in variants.iterdir()):
            return name
    raise AssertionError("unreachable")


@dataclass
class Trial:
    """One combination: its folder, and what became of it."""

    index: int
    values: dict[str, Any]
    folder: Path
    status: str = "not run"  # then "ok", "failed" or "cancelled"
    error: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The trial in the sweep's summary."""
        return {"trial": self.folder.name, "folder": str(self.folder), "values": self.values,
                "status": self.status, "error": self.error, "seconds": round(self.seconds, 2),
                **self.figures}


def trial_project(parent: Project, trial: Trial, name: str, total: int,
                  runner: str) -> Project:
    """The trial's project: ``parent`` with the trial's values, untrained and without
    compression passes, its record kept."""
    child = parent.copy()
    child.folder, child.weights_file = None, None
    for path, value in trial.values.items():
        apply_setting(child, path, value)
    child.name = f"{parent.name} {values_text(trial.values)}"
    child.extras = {**child.extras, RECORD_KEY: {
        "sweep": name, "trial": trial.index + 1, "of": total, "values": trial.values,
        "parent": parent.name, "parent_folder": str(parent.folder), "runner": runner}}
    # A compressed variant's quantisation lives in its weights, which a trial does not keep:
    # trained from fresh weights, the trial is its graph at full precision (a pruned graph
    # stays pruned), so the passes no longer describe it
    child.compression = []
    return child


def sweep(session: Any, axes: list[SweepAxis], *, name: str | None = None,
          epochs: int | None = None, runner: Any = None,
          runner_params: dict[str, Any] | None = None, parallel: int = 1,
          limit: int | None = None, overwrite: bool = False, run_id: str | None = None,
          cancel: CancelToken | None = None) -> Run:
    """Train one variant of ``session``'s project per combination of the ``axes``' values.

    ``runner``: a runner spec (``wb_runners``) to send each trial to as a job, made with
    ``runner_params``, ``parallel`` jobs at a time; None trains here, one trial at a time.
    ``limit`` caps the test samples each trial is measured on. The summary lists the trials
    and names the most accurate (``best``)."""
    project = session.project
    if project.folder is None:
        raise ProjectError("the project is not saved in a folder yet; save it first: the "
                           "trials are written into its variants/ folder")
    if epochs is not None and epochs < 1:
        raise WorkbenchError("must be 1 or more", where="epochs")
    if parallel < 1:
        raise WorkbenchError("must be 1 or more", where="parallel")
    if runner is None and parallel != 1:
        raise WorkbenchError("trials run here one at a time; several at once need a runner "
                             "(a cluster)", where="parallel")
    checked = check_axes(project, session.lookup, axes)
    if runner is not None:
        runner_params = runner.check_params(runner_params or {}, where="runner")
    folder = Path(project.folder)
    name = name or sweep_name(folder, checked)
    combos = trial_values(checked)
    trials = [Trial(i, values, folder / VARIANTS_DIR / f"{name}-t{i + 1:02d}")
              for i, values in enumerate(combos)]
    for trial in trials:
        check_target(trial.folder, overwrite=overwrite, source=folder)
    parent = project.copy()  # the project as it is now, whatever the user edits meanwhile
    where = runner.id if runner is not None else "local"

    def body(token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        yield RunStarted(run_id, "sweep", len(trials), {
            "project": parent.name, "sweep": name, "runner": where, "epochs": epochs,
            "axes": {a.path: list(a.values) for a in checked}, "parallel": parallel})
        if runner is not None:  # an unreachable cluster fails the sweep once, not each trial
            runner.create(**runner_params)
        jobs = _TrialJobs(session.lookup, parent, name, len(trials), runner, runner_params,
                          epochs, limit, where)
        yield from _run_trials(trials, jobs, parallel, token, run_id)
        yield _finish(trials, name, where, token, run_id)

    return launch("sweep", body, record_to=folder, run_id=run_id, cancel=cancel)


class _TrialJobs:
    """How one trial is made, trained and measured (the same for every trial of a sweep)."""

    def __init__(self, lookup: Any, parent: Project, name: str, total: int, runner: Any,
                 runner_params: dict[str, Any] | None, epochs: int | None, limit: int | None,
                 where: str) -> None:
        self.lookup, self.parent, self.name, self.total = lookup, parent, name, total
        self.runner, self.runner_params = runner, runner_params
        self.epochs, self.limit, self.where = epochs, limit, where

    def events(self, trial: Trial, token: CancelToken, run_id: str) -> Iterator[RunEvent]:
        """Train and measure ``trial``; its events carry ``run_id``; sets its status."""
        from workbench.core.runs.compress import measure
        from workbench.core.runs.session import Session

        started = time.perf_counter()
        project = trial_project(self.parent, trial, self.name, self.total, self.where)
        commit_project(project, trial.folder, weights=None, overwrite=True)
        trial_session = Session(project, self.lookup)
        try:
            finished = yield from self._train(trial_session, token, run_id)
            if finished.status == "ok" and not token.requested:
                figures = measure(trial_session.model, trial_session, limit=self.limit)
                trial.figures = {k: figures[k] for k in FIGURES}
                project.extras[RECORD_KEY]["after"] = dict(trial.figures)
                commit_project(project)  # the record, beside the weights the training saved
                trial.status = "ok"
            else:
                trial.status = "cancelled" if token.requested else finished.status
                trial.error = finished.error
        except WorkbenchError as exc:
            trial.status, trial.error = "failed", str(exc)
        finally:
            trial.seconds = time.perf_counter() - started
            if trial.status != "ok":  # no half-made variant: a failed trial leaves nothing
                shutil.rmtree(trial.folder, ignore_errors=True)

    def _train(self, trial_session: Any, token: CancelToken,
               run_id: str) -> Iterator[RunEvent]:
        if self.runner is None:
            from workbench.core.runs.session_runs import train

            run = train(trial_session, epochs=self.epochs, fresh=True, save_weights=True,
                        cancel=token)
        else:
            from workbench.core.runs.remote import submit

            run = submit(trial_session, self.runner, self.runner_params or {},
                         epochs=self.epochs, fresh=True, cancel=token)
        for event in run:
            if isinstance(event, RunFinished):
                return event
            yield event
        assert run.finished is not None
        return run.finished


def _run_trials(trials: list[Trial], jobs: _TrialJobs, parallel: int, token: CancelToken,
                run_id: str) -> Iterator[RunEvent]:
    """One trial at a time with its training's events (curves, progress) passed on, or
    ``parallel`` at a time on threads with only each trial's start and end reported."""
    total = len(trials)
    if parallel > 1:
        yield from _run_in_parallel(trials, jobs, parallel, token, run_id)
        return
    for done, trial in enumerate(trials):
        if token.requested:
            break
        step = f"trial {done + 1} of {total}: {values_text(trial.values)}"
        yield StepStarted(run_id, step)
        batches = 0
        for event in jobs.events(trial, token, run_id):
            # the trial's own start and progress become the sweep's: one bar, one estimate
            if isinstance(event, RunStarted):
                batches = event.total
            elif isinstance(event, Progress):
                part = event.done * PROGRESS_PER_TRIAL // max(batches or event.total, 1)
                yield Progress(run_id, done * PROGRESS_PER_TRIAL + min(part, PROGRESS_PER_TRIAL),
                               total * PROGRESS_PER_TRIAL, event.epoch, step)
            else:
                yield dataclasses.replace(event, run_id=run_id)
        yield from _trial_ended(trial, run_id)
        yield Progress(run_id, (done + 1) * PROGRESS_PER_TRIAL, total * PROGRESS_PER_TRIAL,
                       message=step)


def _run_in_parallel(trials: list[Trial], jobs: _TrialJobs, parallel: int,
                     token: CancelToken, run_id: str) -> Iterator[RunEvent]:
    ended: queue.Queue[Trial] = queue.Queue()
    waiting = list(trials)
    running = 0
    done = 0

    def work(trial: Trial) -> None:
        try:
            for _ in jobs.events(trial, token, run_id):
                pass  # several trials' curves would mix: each reports its end only
        except Exception as exc:  # noqa: BLE001 - a trial's failure is its own, not the sweep's
            trial.status, trial.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            ended.put(trial)

    try:
        while waiting or running:
            while waiting and running < parallel and not token.requested:
                trial = waiting.pop(0)
                yield Log(run_id, "info", f"trial {trial.index + 1} of {len(trials)} sent: "
                                          f"{values_text(trial.values)}")
                threading.Thread(target=work, args=(trial,), daemon=True,
                                 name=f"sweep-{trial.folder.name}").start()
                running += 1
            if not running:
                break  # stopped before the rest were sent
            trial = ended.get()
            running -= 1
            done += 1
            yield from _trial_ended(trial, run_id)
            yield Progress(run_id, done * PROGRESS_PER_TRIAL, len(trials) * PROGRESS_PER_TRIAL,
                           message=f"{done} of {len(trials)} trials done")
    finally:
        if running:  # the driver went away: stop the jobs still out there
            token.set()


def _trial_ended(trial: Trial, run_id: str) -> Iterator[RunEvent]:
    """The line saying how ``trial`` ended, and its folder when it is kept."""
    if trial.status == "ok":
        yield Artifact(run_id, str(trial.folder), "variant")
    yield _trial_line(trial, run_id)


def _trial_line(trial: Trial, run_id: str) -> RunEvent:
    if trial.status == "ok":
        figures = trial.figures
        return Log(run_id, "info", f"trial {trial.folder.name} ({values_text(trial.values)}): "
                                   f"test accuracy {100 * figures['accuracy']:.2f} %, "
                                   f"{figures['total_pj_per_sample'] / 1000:.4g} nJ per sample")
    if trial.status == "cancelled":
        return Log(run_id, "warning", f"trial {trial.folder.name} stopped; nothing kept")
    return Log(run_id, "warning", f"trial {trial.folder.name} ({values_text(trial.values)}) "
                                  f"failed: {trial.error}")


def _finish(trials: list[Trial], name: str, where: str, token: CancelToken,
            run_id: str) -> RunEvent:
    rows = [trial.row() for trial in trials]
    good = [trial for trial in trials if trial.status == "ok"]
    best = max(good, key=lambda t: t.figures["accuracy"], default=None)
    summary = {"sweep": name, "runner": where, "trials": rows,
               "best": str(best.folder) if best else None,
               "best_values": best.values if best else None}
    if token.requested:
        return RunFinished(run_id, "cancelled", summary=summary)
    if not good:
        failed = next((t for t in trials if t.status == "failed"), None)
        error = failed.error if failed else "no trial finished"
        return RunFinished(run_id, "failed", summary=summary, error_kind="input",
                           error=f"every trial failed; the first said: {error}")
    return RunFinished(run_id, "ok", summary=summary)

