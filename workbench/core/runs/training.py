"""The training and evaluation loops, as generators of :mod:`events <workbench.core.runs.events>`.

They never import Qt: the CLI prints the events, the GUI's worker thread forwards them, and
tests simply ``list(...)`` them. Each loop checks its :class:`CancelToken` before every batch.
Both honour a :class:`~workbench.core.build.compute.Compute` (device, mixed precision) and the
learning rule's readout; the trainer's extra metrics (anything ``train_step`` returns beside
``loss``, ``correct`` and ``count``, e.g. ``backward_events``) reach every metric event.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from workbench.core.build.compute import CPU, Compute
from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.model.errors import WorkbenchError
from workbench.core.model.readout import class_scores, count_correct
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.distributed import SINGLE, Single
from workbench.core.runs.events import (
    EnergySample,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)

#: batch-level metric samples are throttled to this rate: events are the low-rate control
#: plane (spikes go through buffers)
METRIC_HZ = 5.0
#: the first training step under ``compute.compile``: seconds to minutes of compiling
WARM_UP = "compiling the network"
#: what every trainer reports; anything else in ``train_step``'s dict is an extra metric
BASE_KEYS = ("loss", "correct", "count")

Readout = Callable[[torch.Tensor], torch.Tensor]
Encode = Callable[[torch.Tensor], torch.Tensor]


def _test_accuracy(model: torch.nn.Module, encode: Encode, split: Any, batch_size: int,
                   cancel: CancelToken, compute: Compute, readout: Readout,
                   world: Single = SINGLE) -> float | None:
    model.eval()
    world.share_buffers(model)
    correct = seen = 0
    with torch.no_grad():
        for x, y in world.shard(split.batches(batch_size), skip_small=False):
            if world.stop(cancel.requested):
                return None
            if len(y):
                with compute.autocast():
                    out = model(encode(compute.to_device(x)))
                correct += count_correct(out, y, readout)
                seen += len(y)
    correct, seen = world.sum(correct, seen)
    return correct / max(seen, 1)


class ExtraMetrics:
    """Per-epoch totals of a trainer's extra metrics.

    A trainer may say how each is reduced over an epoch with ``metric_reductions`` (``"sum"`` for
    counts such as ``backward_events``, ``"mean"`` — weighted by samples — for rates); the
    default is the mean."""

    def __init__(self, reductions: dict[str, str] | None) -> None:
        self.reductions = dict(reductions or {})
        self.sums: dict[str, float] = {}
        self.weights: dict[str, float] = {}

    def add(self, values: dict[str, Any], count: int) -> dict[str, float]:
        extra = {k: float(v) for k, v in values.items()
                 if k not in BASE_KEYS and isinstance(v, (int, float)) and math.isfinite(v)}
        for key, value in extra.items():
            if self.reductions.get(key) == "sum":
                self.sums[key] = self.sums.get(key, 0.0) + value
            else:
                self.sums[key] = self.sums.get(key, 0.0) + value * count
                self.weights[key] = self.weights.get(key, 0.0) + count
        return extra

    def epoch(self, world: Single = SINGLE) -> dict[str, float]:
        self.sums, self.weights = world.sum_dict(self.sums), world.sum_dict(self.weights)
        out = {key: (total if key not in self.weights else total / max(self.weights[key], 1.0))
               for key, total in self.sums.items()}
        self.sums, self.weights = {}, {}
        return out


class TrainingDiverged(WorkbenchError):
    """The loss or the weights became NaN or infinite; the network was put back to its last
    good weights (exit status 2: the fix is in the user's hands, a lower learning rate)."""


class LastGoodWeights:
    """A copy of the weights as they were before the run and after each healthy epoch, so a
    run that diverges gives the network back in its last good state."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.epoch = 0
        self.state = self._copy()

    def _copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def healthy(self) -> bool:
        return all(bool(v.isfinite().all()) for v in self.model.state_dict().values()
                   if v.is_floating_point())

    def keep(self, epoch: int) -> None:
        self.epoch, self.state = epoch, self._copy()

    def restore(self, what: str) -> TrainingDiverged:
        """Put the last good weights back; the error that says what happened."""
        self.model.load_state_dict(self.state)
        kept = (f"the weights after epoch {self.epoch}" if self.epoch
                else "the weights it started with")
        return TrainingDiverged(f"training diverged: {what}. The network was given back "
                                f"{kept} and nothing was saved; lower the learning rate or "
                                "check the data", where="training")


def train(model: torch.nn.Module, encode: Encode, train_split: Any, test_split: Any,
          make_trainer: Callable[..., Any], *, epochs: int, batch_size: int, seed: int = 0,
          cancel: CancelToken, run_id: str, on_batch: Callable[[], None] | None = None,
          config: dict[str, Any] | None = None, compute: Compute = CPU,
          readout: Readout = class_scores, world: Single = SINGLE) -> Iterator[RunEvent]:
    """Train ``model`` for ``epochs``; after each epoch, measure test accuracy.

    ``make_trainer(model, epochs=, steps_per_epoch=)`` builds the learning rule's trainer.
    ``on_batch`` runs after every optimiser step (the GUI's live probe hooks in there).
    ``world`` is this process's share of a run on several (:mod:`.distributed`): its part of
    each batch, averaged gradients, metrics summed over the processes.

    A NaN or infinite loss (or a trainer raising ``FloatingPointError``), or weights that are
    not finite at the end of an epoch, stop the run with :class:`TrainingDiverged` after the
    network was given back its last good weights.
    """
    steps_per_epoch = world.steps(train_split, batch_size)
    total = epochs * steps_per_epoch
    yield RunStarted(run_id, "train", total, {**(config or {}), **compute.describe(),
                                              **world.describe()})
    trainer = make_trainer(model, epochs=epochs, steps_per_epoch=steps_per_epoch)
    with world.averaging(model), _compiled(model, compute.compile):
        yield from _epochs(model, encode, train_split, test_split, trainer, epochs=epochs,
                           batch_size=batch_size, seed=seed, cancel=cancel, run_id=run_id,
                           on_batch=on_batch, compute=compute, readout=readout, world=world,
                           steps_per_epoch=steps_per_epoch)


@contextlib.contextmanager
def _compiled(model: torch.nn.Module, on: bool) -> Iterator[None]:
    """The whole network through ``torch.compile`` for the run (``compute.compile``); the
    plain module again afterwards, so probes, saving and export see the network as before."""
    if not on:
        yield
        return
    # A second network compiled in the same process (the app trains one project after
    # another) would otherwise be traced against the first one's cached guards and fail to
    # compile ("cannot determine truth value of Relational"); start from a clean cache.
    torch.compiler.reset()
    model.compile()
    try:
        yield
    finally:
        model._compiled_call_impl = None  # what Module.compile set: undone in place


def _epochs(model: torch.nn.Module, encode: Encode, train_split: Any, test_split: Any,
            trainer: Any, *, epochs: int, batch_size: int, seed: int, cancel: CancelToken,
            run_id: str, on_batch: Callable[[], None] | None, compute: Compute,
            readout: Readout, world: Single, steps_per_epoch: int) -> Iterator[RunEvent]:
    total = epochs * steps_per_epoch
    extras = ExtraMetrics(getattr(trainer, "metric_reductions", None))
    started = time.perf_counter()
    last_metric = 0.0
    step = samples = 0
    history: list[dict[str, float]] = []
    last_good = LastGoodWeights(model)
    for epoch in range(1, epochs + 1):
        loss_sum = correct = seen = 0.0
        for x, y in world.shard(train_split.batches(batch_size, shuffle=True, seed=seed + epoch)):
            if world.stop(cancel.requested):
                yield RunFinished(run_id, "cancelled",
                                  summary=_train_summary(history, started, samples, world))
                return
            step += 1
            if compute.compile and step == 1:  # the first step compiles: show it as a step
                yield StepStarted(run_id, WARM_UP)
                yield Progress(run_id, 0, total, epoch, message=WARM_UP)
            where = f"at epoch {epoch}, batch {step - (epoch - 1) * steps_per_epoch}"
            try:
                with compute.autocast():
                    m = trainer.train_step(encode(compute.to_device(x)), compute.to_device(y))
            except FloatingPointError as exc:  # a trainer's way to say it diverged
                raise last_good.restore(f"{exc} ({where})") from None
            if not math.isfinite(float(m["loss"])):
                raise last_good.restore(f"the loss became {m['loss']} {where}")
            if compute.compile and step == 1:
                yield StepStarted(run_id, "training")
            samples += m["count"]
            loss_sum += m["loss"] * m["count"]
            correct += m["correct"]
            seen += m["count"]
            extra = extras.add(m, m["count"])
            if on_batch is not None:
                on_batch()
            yield Progress(run_id, step, total, epoch)
            now = time.perf_counter()
            if now - last_metric >= 1.0 / METRIC_HZ:
                last_metric = now
                yield MetricSample(run_id, epoch, step, {"loss": m["loss"],
                                                         "lr": getattr(trainer, "lr", 0.0),
                                                         **extra})
        if not last_good.healthy():
            raise last_good.restore(f"the weights hold NaN or infinite values after epoch "
                                    f"{epoch}")
        last_good.keep(epoch)
        accuracy = _test_accuracy(model, encode, test_split, batch_size, cancel, compute, readout,
                                  world)
        if accuracy is None:
            yield RunFinished(run_id, "cancelled",
                              summary=_train_summary(history, started, samples, world))
            return
        loss_sum, correct, seen = world.sum(loss_sum, correct, seen)
        values = {"train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                  "test_accuracy": accuracy, "lr": getattr(trainer, "lr", 0.0),
                  **extras.epoch(world)}
        history.append({"epoch": epoch, **values})
        yield MetricSample(run_id, epoch, step, values, epoch_end=True)
    yield RunFinished(run_id, "ok", summary=_train_summary(history, started, samples, world))


def _train_summary(history: list[dict[str, float]], started: float, samples: int,
                   world: Single = SINGLE) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    samples = world.sum(samples)[0]
    summary: dict[str, Any] = {"epochs": len(history), "seconds": round(seconds, 3),
                               "samples_per_s": round(samples / seconds, 1) if seconds > 0 else 0.0,
                               "history": history}
    if history:
        last = history[-1]
        summary["test_accuracy"] = last["test_accuracy"]
        summary["best_test_accuracy"] = max(h["test_accuracy"] for h in history)
        summary["train_loss"] = last["train_loss"]
        extra = {k: v for k, v in last.items()
                 if k not in ("epoch", "train_loss", "train_accuracy", "test_accuracy", "lr")}
        if extra:  # the rule's own metrics of the last epoch (backward_events, …)
            summary["metrics"] = extra
    return summary


def evaluate(model: torch.nn.Module, encode: Encode, split: Any, table: CostTable, *,
             batch_size: int = 256, encode_once: bool = True, sop_counting: str = "exact",
             limit: int | None = None, cancel: CancelToken | None = None,
             run_id: str = "evaluate", energy_every: float = 0.25, compute: Compute = CPU,
             readout: Readout = class_scores) -> Iterator[RunEvent]:
    """Measure accuracy on ``split`` and count the energy ledger from the spikes seen.

    An :class:`EnergySample` with the ledger so far is yielded every ``energy_every`` seconds,
    so a view can fill in live; the summary holds ``accuracy`` and ``energy``.
    """
    cancel = cancel or CancelToken()
    total = split.n_batches(batch_size, limit)
    samples = len(split) if limit is None else min(len(split), limit)
    yield RunStarted(run_id, "evaluate", total, {"table": table.id, "samples": samples,
                                                 **compute.describe()})
    model.eval()
    correct = seen = 0
    last = time.perf_counter()
    with torch.no_grad(), EnergyMeter(model, encode_once=encode_once,
                                      sop_counting=sop_counting) as meter:
        for i, (x, y) in enumerate(split.batches(batch_size, limit=limit), start=1):
            if cancel.requested:
                yield RunFinished(run_id, "cancelled",
                                  summary={"accuracy": correct / max(seen, 1), "samples": seen})
                return
            with compute.autocast():
                out = model(encode(compute.to_device(x)))
            correct += count_correct(out, y, readout)
            seen += len(y)
            yield Progress(run_id, i, total)
            if time.perf_counter() - last >= energy_every:
                last = time.perf_counter()
                yield EnergySample(run_id, seen, meter.report(table).to_dict())
        report = meter.report(table).to_dict()
    yield EnergySample(run_id, seen, report)
    yield RunFinished(run_id, "ok", summary={"accuracy": correct / max(seen, 1), "samples": seen,
                                             "correct": correct, "energy": report})
