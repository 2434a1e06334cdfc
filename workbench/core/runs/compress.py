"""Compression as a run: a trained project in, a smaller project out, with before/after figures.

A compression method (a ``CompressionSpec`` from a plugin) is a generator function::

    def apply(ctx: CompressionContext, **params) -> Generator[RunEvent, None, CompressionResult]

It works on ``ctx.model`` (a copy of the trained network; change it in place or build a new one
with ``ctx.compile(graph)``), yields progress through the context's helpers (``ctx.progress``,
``ctx.log``, ``yield from ctx.fine_tune(...)``), and returns a :class:`CompressionResult`: the
compressed model, the graph it was built from when the method changed the graph (pruning writes
smaller widths, Q-SNN swaps the neuron), and a report of what it did. Quantised layers carry a
:class:`~workbench.core.quantized.QuantizedTensor` (``quantized.attach``), so the saved project
stores them packed at their real bit width.

:func:`compress` drives a method: it checks the project is trained, measures the model before,
runs the method (cancel is checked between the method's events), measures after, and returns the
new project. The pass is recorded in ``project.compression`` — method, version, params, parent,
summary — so it can be replayed on the parent (:func:`replay`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.core.build.compile import compile_graph
from workbench.core.build.info import describe
from workbench.core.build.limits import Limits
from workbench.core.build.network import CompiledNetwork
from workbench.core.model.errors import CompressionError, WorkbenchError
from workbench.core.model.graph import Graph
from workbench.core.model.project import Project
from workbench.core.model.readout import class_scores, count_correct
from workbench.core.model.specs import CompressionSpec
from workbench.core.persistence.project_store import commit_project
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import (
    Log,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
)
from workbench.core.runs.plugin_steps import Cancelled, PluginRunContext, drive
from workbench.core.runs.reports import precision_split
from workbench.core.runs.training import evaluate

#: ``loss(out[T, B, C], y[B], x[T, B, ...]) -> scalar``; the default is mean-over-time CE.
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class CompressionResult:
    model: CompiledNetwork
    graph: Graph | None = None  # None: the graph is unchanged
    report: dict[str, Any] = field(default_factory=dict)


def mean_ce(out: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(class_scores(out), y)


class CompressionContext(PluginRunContext):
    """What a compression method may use: the model, the data, compiling and fine-tuning."""

    def __init__(self, *, model: CompiledNetwork, project: Project, lookup: Any, data: Any,
                 encode: Callable[[torch.Tensor], torch.Tensor], method: str,
                 cancel: CancelToken, run_id: str,
                 readout: Callable[[torch.Tensor], torch.Tensor] = class_scores) -> None:
        super().__init__(cancel, run_id)
        #: the learning rule's readout: the accuracies a method reports match the run's
        self.readout = readout
        self.model = model
        self.project = project
        self.graph = copy.deepcopy(project.graph)
        self.lookup = lookup
        self.data = data
        self.encode = encode
        self.method = method
        self.batch_size = project.training.batch_size
        self.seed = project.training.seed

    # -- errors and events -----------------------------------------------------------------------
    def fail(self, message: str, *, param: str = "", node: str = "") -> CompressionError:
        """An error naming the parameter or node at fault; ``raise ctx.fail(...)``."""
        where = self.method
        if param:
            where += f" parameter {param!r}"
        elif node:
            where += f" (node {node!r})"
        return CompressionError(message, where=where)

    # -- building and measuring ------------------------------------------------------------------
    def compile(self, graph: Graph) -> CompiledNetwork:
        """Build ``graph`` (new, untrained weights) for the shape the network's input sees
        (the encoder's per-step shape, which may differ from the sample's)."""
        return compile_graph(graph, self.lookup, self.model.input_shape,
                             limits=Limits.resolve(self.project.compute))

    def batches(self, count: int, batch_size: int | None = None, *, split: str = "train"
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``count`` encoded batches ``(x[T, B, ...], y[B])`` in a fixed order."""
        source = self.data.train if split == "train" else self.data.test
        for i, (x, y) in enumerate(source.batches(batch_size or self.batch_size)):
            if i >= count:
                break
            yield self.encode(x), y

    def accuracy(self, model: torch.nn.Module, *, split: str = "test",
                 limit: int | None = None) -> float:
        source = self.data.test if split == "test" else self.data.train
        model.eval()
        correct = seen = 0
        with torch.no_grad():
            for x, y in source.batches(256, limit=limit):
                correct += count_correct(model(self.encode(x)), y, self.readout)
                seen += len(y)
        return correct / max(seen, 1)

    def fine_tune(self, model: torch.nn.Module, *, epochs: int, lr: float = 1e-3,
                  loss: LossFn | None = None, params: list[torch.nn.Parameter] | None = None,
                  on_epoch: Callable[[int], None] | None = None,
                  label: str = "fine-tune") -> Generator[RunEvent, None, list[dict[str, float]]]:
        """Adam with a cosine schedule for ``epochs`` over the training split; yields progress
        and per-epoch metrics; returns the history. ``on_epoch(e)`` runs before epoch ``e``
        (estimator schedules hook in there)."""
        loss = loss or mean_ce
        params = params if params is not None else [p for p in model.parameters()
                                                    if p.requires_grad]
        train_split = self.data.train
        steps = max(1, epochs * train_split.n_batches(self.batch_size))
        optimizer = torch.optim.Adam(params, lr=lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps)))
        history: list[dict[str, float]] = []
        step = 0
        for epoch in range(epochs):
            if on_epoch is not None:
                on_epoch(epoch)
            total_loss = seen = 0.0
            for x, y in train_split.batches(self.batch_size, shuffle=True,
                                            seed=self.seed + 1000 + epoch):
                self.check_cancel()
                model.train()
                xs = self.encode(x)
                value = loss(model(xs), y, xs)
                if not torch.isfinite(value):
                    raise CompressionError(f"the {label} loss became {float(value)}; lower the "
                                           "learning rate", where=f"{self.method} parameter 'lr'")
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
                schedule.step()
                step += 1
                total_loss += float(value.detach()) * len(y)
                seen += len(y)
                yield Progress(self.run_id, step, steps, epoch + 1, message=label)
            accuracy = self.accuracy(model)
            values = {"train_loss": total_loss / max(seen, 1), "test_accuracy": accuracy}
            history.append({"epoch": epoch + 1, **values})
            yield MetricSample(self.run_id, epoch + 1, step, values, epoch_end=True)
        return history


# -- the run -------------------------------------------------------------------------------------
def measure(model: CompiledNetwork, session: Any, *, limit: int | None = None) -> dict[str, Any]:
    """Accuracy, size (see ``docs/compression.md``), bits per layer and energy per sample of
    ``model``."""
    settings = session.project.energy
    summary: dict[str, Any] = {}
    for event in evaluate(model, session.encoder(), session.data().test, session.cost_table(),
                          encode_once=settings.encode_once, sop_counting=settings.sop_counting,
                          limit=limit, readout=session.readout()):
        if isinstance(event, RunFinished):
            if event.status != "ok":
                raise WorkbenchError(f"measuring the model failed: {event.error}")
            summary = event.summary
    info = describe(model)
    return {
        "accuracy": summary["accuracy"],
        "model_size_bytes": info["bytes"],
        "model_size_mb": info["size_mb"],
        "params": info["params"],
        # the width of each layer's weights; biases and BN stay at 32 bits
        "bits": {layer["name"]: layer["weight_bits"] for layer in info["layers"]
                 if layer["params"]},
        "total_pj_per_sample": summary["energy"]["total_pj_per_sample"],
        "energy_table": summary["energy"]["table"],
        # each conv/linear layer of the ledger: its quantised width, None at full precision
        "layer_bits": {layer["name"]: layer.get("weight_bits")
                       for layer in summary["energy"]["layers"]
                       if layer.get("kind") in ("conv", "linear")},
    }


def compress_events(session: Any, spec: CompressionSpec, params: dict[str, Any],
                    out: str | Path | None, name: str | None, cancel: CancelToken, run_id: str,
                    limit: int | None, *, overwrite: bool = False,
                    source: Path | None = None) -> Iterator[RunEvent]:
    """The body of a compression run (``catalog.compress`` wraps it): the ``RunFinished``
    summary holds ``before``, ``after``, ``report`` and ``project`` (the new folder).

    ``out`` may hold another project only with ``overwrite``; it may never be ``source`` (by
    default the session's project folder), the trained project the variant comes from."""
    project: Project = session.project
    source = source if source is not None else project.folder
    checked = spec.check_params(params, where=spec.id)
    weights = project.weights_path
    in_memory = session.has_trained_model
    if not in_memory and (weights is None or not weights.exists()):
        raise CompressionError("the project is not trained yet (it has no saved weights): train "
                               "it first, then compress", where=str(project.folder or project.name))
    yield RunStarted(run_id, "compress", 0, {"method": spec.id, "params": checked,
                                             "project": project.name})
    started = time.perf_counter()
    model = session.model if in_memory else session.build()
    yield Log(run_id, "info", f"measuring {project.name} before compression")
    before = measure(model, session, limit=limit)
    ctx = CompressionContext(model=copy.deepcopy(model), project=project, lookup=session.lookup,
                             data=session.data(), encode=session.encoder(), method=spec.id,
                             cancel=cancel, run_id=run_id, readout=session.readout())
    try:
        result = yield from drive(spec.create(ctx, **checked), cancel)
    except Cancelled:
        yield RunFinished(run_id, "cancelled", summary={"before": before})
        return
    if not isinstance(result, CompressionResult):
        raise CompressionError(f"the method returned {type(result).__name__}, not a "
                               "CompressionResult", where=spec.id)
    yield Log(run_id, "info", "measuring the compressed model")
    after = measure(result.model, session, limit=limit)
    new_project = derive_project(project, spec, checked, result, before, after, name=name)
    summary: dict[str, Any] = {"method": spec.id, "params": checked, "before": before,
                               "after": after, "report": result.report,
                               # which layers are quantised, which kept at full precision
                               "precision": new_project.compression[-1]["precision"],
                               "seconds": round(time.perf_counter() - started, 3)}
    if out is not None:
        folder = save_compressed(new_project, result.model, out, overwrite=overwrite,
                                 source=source)
        summary["project"] = str(folder)
    session.compressed = (new_project, result.model)
    yield RunFinished(run_id, "ok", summary=summary, result=(new_project, result.model))


def derive_project(parent: Project, spec: CompressionSpec, params: dict[str, Any],
                   result: CompressionResult, before: dict[str, Any], after: dict[str, Any],
                   *, name: str | None = None) -> Project:
    """The compressed variant: the parent's settings, the method's graph, the pass recorded."""
    child = parent.copy()
    child.folder = None
    short = spec.id.rpartition(".")[2]
    child.name = name or f"{parent.name}-{short}"
    if result.graph is not None:
        child.graph = copy.deepcopy(result.graph)
    record = {"method": spec.id, "spec_version": spec.spec_version, "params": dict(params),
              "parent": parent.name,
              "parent_folder": str(parent.folder) if parent.folder else None,
              "before": _headline(before), "after": _headline(after),
              "precision": precision_split(after, result.report, params),
              "report": _jsonable(result.report)}
    child.compression = [*parent.compression, record]
    child.description = (f"{parent.name} compressed with {spec.display_name}. "
                         + (parent.description or "")).strip()
    return child


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: figures[k] for k in ("accuracy", "model_size_bytes", "params",
                                    "total_pj_per_sample", "bits")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_compressed(project: Project, model: CompiledNetwork, folder: str | Path, *,
                    overwrite: bool = False, source: str | Path | None = None) -> Path:
    """Write the variant's project file and its packed weights into ``folder`` as one step;
    another project there is replaced only with ``overwrite``, ``source`` never."""
    from workbench.core.persistence.weights import weights_bytes

    folder = Path(folder)
    commit_project(project, folder, weights=weights_bytes(model, where=str(folder)),
                   overwrite=overwrite, source=source)
    return folder


def replay_events(session: Any, passes: list[dict[str, Any]], specs: list[CompressionSpec],
                  out: str | Path | None, cancel: CancelToken, run_id: str, *,
                  overwrite: bool = False) -> Iterator[RunEvent]:
    """The body of a replay run: the recorded ``passes`` (a variant's ``compression`` list, minus
    those the parent already has) with their installed ``specs``, one after another, as steps
    of one run; the last variant is saved to ``out``. A pass that does not end ``ok`` ends the
    run with its status."""
    from workbench.core.runs.session import Session

    lookup = session.lookup
    yield RunStarted(run_id, "replay", len(passes), {"passes": [s.id for s in specs],
                                                     "project": session.project.name})
    current = session
    summary: dict[str, Any] = {}
    for i, (spec, record) in enumerate(zip(specs, passes, strict=True)):
        last = i == len(passes) - 1
        yield Log(run_id, "info", f"pass {i + 1}/{len(passes)}: {spec.id}")
        for event in compress_events(current, spec, record.get("params", {}),
                                     out if last else None, None, cancel, run_id, None,
                                     overwrite=overwrite, source=session.project.folder):
            if isinstance(event, RunStarted):
                continue  # one run: the passes are its steps
            if isinstance(event, RunFinished):
                if event.status != "ok":
                    yield event
                    return
                summary = event.summary
                continue
            yield event
        project, model = current.compressed
        session.compressed = (project, model)
        if not last:
            current = Session(project, lookup)
            current.model = model
            current.trained_in_session = True
    yield RunFinished(run_id, "ok", summary={**summary, "passes": len(passes)},
                      result=session.compressed)
