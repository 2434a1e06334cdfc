"""Deployment as a run: fit check, backend steps, report, live energy readout (``docs/sim.md``,
``docs/fpga.md``, ``docs/nir.md``).

A backend (a ``BackendSpec`` from a plugin) has a factory ``factory(**params) -> backend`` whose
object offers:

``targets() -> dict[str, str]``
    target name -> one-line description (the first is the default).
``check(ctx) -> list[FitIssue]``
    what does not fit ``ctx.target`` and why, naming the node; runs before any tool.
``deploy(ctx) -> Generator[RunEvent, None, dict]``
    converts, builds and (for hardware) synthesises; yields ``ctx.progress(..., message=step)``
    and ``ctx.log`` lines; returns the report (JSON-able): resources, clock, latency, energy
    per inference with its ``power_model`` and ``source``.
``run(ctx) -> Generator[RunEvent, None, dict]``
    runs the deployed model on up to ``ctx.limit`` test samples and yields
    ``ctx.live_energy(...)`` as samples finish; returns ``{"accuracy", "samples", ...}``.

:func:`deploy` drives the four in order; the ``RunFinished`` summary holds ``backend``,
``target``, ``fit``, ``report``, ``live`` and ``estimate`` (the cost-table estimate of the torch
model, so a view can show both figures side by side, each labelled). The estimate is also sent
right after the fit check as ``EnergySample(report={"estimate": True, ...})``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.core.build.network import CompiledNetwork
from workbench.core.model.errors import DeployError
from workbench.core.model.specs import BackendSpec
from workbench.core.persistence.atomic import atomic_write_text
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import (
    Artifact,
    EnergySample,
    Log,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)
from workbench.core.runs.plugin_steps import Cancelled, PluginRunContext, drive
from workbench.core.runs.reports import step_name


@dataclass(frozen=True)
class FitIssue:
    node: str
    message: str
    severity: str = "error"  # "error" stops the deployment; "warning" is shown

    def __str__(self) -> str:
        return f"node {self.node!r}: {self.message}" if self.node else self.message


class DeployContext(PluginRunContext):
    """What a backend may use: the trained network, the data, the target, an output folder."""

    def __init__(self, *, session: Any, model: CompiledNetwork, target: str, out_dir: Path,
                 cancel: CancelToken, run_id: str, limit: int | None,
                 params: dict[str, Any]) -> None:
        super().__init__(cancel, run_id)
        self.session = session
        self.project = session.project
        self.model = model
        self.data = session.data()
        self.encode: Callable[[torch.Tensor], torch.Tensor] = session.encoder()
        self.time_steps = session.time_steps()  # the encoder's T when it sets T
        self.target = target
        self.out_dir = out_dir
        self.limit = limit
        self.params = params
        self._live_energy: list[float] = []
        self._live_correct = 0

    def fail(self, message: str, *, node: str = "", tool: str = "") -> DeployError:
        where = f"node {node!r}" if node else (tool or self.target)
        return DeployError(message, where=where)

    def test_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``limit`` test samples as the model sees them (scaled) and their labels."""
        split = self.data.test
        xs, ys = [], []
        for x, y in split.batches(256, limit=self.limit):
            xs.append(x.numpy())
            ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys)

    def live_energy(self, energies_pj: list[float], correct: list[bool], *, kind: str,
                    source: str) -> EnergySample:
        """Record finished samples; the event carries the readout so far.

        ``kind`` is ``"measurement"`` (counted by the backend) or ``"estimate"``; ``source``
        names the power model."""
        self._live_energy.extend(float(e) for e in energies_pj)
        self._live_correct += sum(bool(c) for c in correct)
        n = len(self._live_energy)
        total = float(sum(self._live_energy))
        return EnergySample(self.run_id, n, {
            "live": True, "kind": kind, "source": source,
            "new_pj": [float(e) for e in energies_pj],
            "total_pj": total, "mean_pj": total / max(n, 1),
            "accuracy": self._live_correct / max(n, 1), "samples": n,
        })


def backend_targets(spec: BackendSpec, params: dict[str, Any] | None = None) -> dict[str, str]:
    return dict(spec.create(**(params or {})).targets())


def check_fit_events(session: Any, spec: BackendSpec, target: str | None,
                     params: dict[str, Any], limit: int | None, cancel: CancelToken,
                     run_id: str) -> Iterator[RunEvent]:
    """The body of a fit-check run: only the backend's ``check``; the summary's ``fit`` lists
    the issues (``node``, ``message``, ``severity``)."""
    checked = spec.check_params(params, where=spec.id)
    backend = spec.create(**checked)
    target = _target(spec, backend, target)
    yield RunStarted(run_id, "check", 0, {"backend": spec.id, "target": target})
    model = session.model if session.has_trained_model else session.build()
    model.eval()
    ctx = DeployContext(session=session, model=model, target=target,
                        out_dir=_default_out(session.project, spec, target), cancel=cancel,
                        run_id=run_id, limit=limit, params=checked)
    issues = list(backend.check(ctx))
    for issue in issues:
        yield Log(run_id, "warning" if issue.severity != "error" else "error", str(issue))
    yield RunFinished(run_id, "ok", summary={"backend": spec.id, "target": target,
                                             "fit": [asdict(i) for i in issues]})


def with_steps(events: Iterable[RunEvent]) -> Iterator[RunEvent]:
    """Insert a :class:`StepStarted` before the first ``Progress`` of each new step, so every
    driver lists the same steps (a counter or timer in the message is not a new step)."""
    last = None
    for event in events:
        if isinstance(event, Progress) and event.message and step_name(event.message) != last:
            last = step_name(event.message)
            yield StepStarted(event.run_id, last)
        yield event


def _target(spec: BackendSpec, backend: Any, target: str | None) -> str:
    targets = dict(backend.targets())
    target = target or next(iter(targets))
    if target not in targets:
        raise DeployError(f"unknown target {target!r}; {spec.id} offers: "
                          + ", ".join(targets), where="target")
    return target


def deploy_events(session: Any, spec: BackendSpec, target: str | None,
                  out_dir: str | Path | None, params: dict[str, Any], limit: int | None,
                  cancel: CancelToken, run_id: str) -> Iterator[RunEvent]:
    """The body of a deployment run (``catalog.deploy`` wraps it)."""
    project = session.project
    checked = spec.check_params(params, where=spec.id)
    backend = spec.create(**checked)
    target = _target(spec, backend, target)
    in_memory = session.has_trained_model
    weights = project.weights_path
    if not in_memory and (weights is None or not weights.exists()):
        raise DeployError("the project is not trained yet (it has no saved weights): train it "
                          "first, then deploy", where=str(project.folder or project.name))
    folder = Path(out_dir) if out_dir else _default_out(project, spec, target)
    folder.mkdir(parents=True, exist_ok=True)
    yield RunStarted(run_id, "deploy", 0, {"backend": spec.id, "target": target,
                                           "out": str(folder), "project": project.name})
    started = time.perf_counter()
    model = session.model if in_memory else session.build()
    model.eval()
    ctx = DeployContext(session=session, model=model, target=target, out_dir=folder,
                        cancel=cancel, run_id=run_id, limit=limit, params=checked)
    summary: dict[str, Any] = {"backend": spec.id, "target": target, "out": str(folder)}
    try:
        yield Log(run_id, "info", f"checking that {project.name} fits {target}")
        issues = list(backend.check(ctx))
        summary["fit"] = [asdict(i) for i in issues]
        for issue in issues:
            yield Log(run_id, "warning" if issue.severity != "error" else "error", str(issue))
        errors = [i for i in issues if i.severity == "error"]
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            # a backend's message may say "does not fit <target>" itself: say it once
            reason = first.message.removeprefix(f"does not fit {target}: ")
            raise DeployError(f"does not fit {target}: {reason}{more}",
                              where=f"node {first.node!r}" if first.node else "")
        # The cost-table figure first, so a view can show it beside the backend's from the start.
        summary["estimate"] = _estimate(session, model, limit)
        yield EnergySample(run_id, 0, {"estimate": True, **summary["estimate"]})
        summary["report"] = yield from drive(backend.deploy(ctx), cancel)
        summary["live"] = yield from drive(backend.run(ctx), cancel)
    except Cancelled:
        yield RunFinished(run_id, "cancelled", summary=summary)
        return
    summary["seconds"] = round(time.perf_counter() - started, 3)
    report_file = folder / "deploy_report.json"
    atomic_write_text(report_file, json.dumps(summary, indent=2, default=_json_default) + "\n")
    yield Artifact(run_id, str(report_file), "deploy_report")
    yield RunFinished(run_id, "ok", summary=summary)


def _estimate(session: Any, model: CompiledNetwork, limit: int | None) -> dict[str, Any]:
    """The cost-table estimate of the torch model on the same samples."""
    from workbench.core.runs.compress import measure

    figures = measure(model, session, limit=limit)
    return {"kind": "estimate", "table": figures["energy_table"],
            "pj_per_sample": figures["total_pj_per_sample"], "accuracy": figures["accuracy"]}


def _default_out(project: Any, spec: BackendSpec, target: str) -> Path:
    base = project.folder if project.folder else Path.cwd()
    return Path(base) / "deploy" / f"{spec.id.rpartition('.')[0]}-{target}"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
