"""Runs: ``train`` and ``evaluate`` as generators of :mod:`events <workbench.core.events>`.

They never import Qt: the CLI prints the events, the GUI's worker thread forwards them, and
tests simply ``list(...)`` them. Each run checks its :class:`CancelToken` before every batch and
ends with exactly one :class:`RunFinished`; an exception inside becomes
``RunFinished(status="failed")`` with the message, never a crash of the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.build.metrics import count_correct
from workbench.core.data.splits import ArraySplit
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import guarded, new_run_id
from workbench.core.runs.events import (
    EnergySample,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
)

#: batch-level metric samples are throttled to this rate (control plane, style.md §5.4)
METRIC_HZ = 5.0


def _test_accuracy(model: torch.nn.Module, encode: Callable[[torch.Tensor], torch.Tensor],
                   split: ArraySplit, batch_size: int, cancel: CancelToken) -> float | None:
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in split.batches(batch_size):
            if cancel.requested:
                return None
            correct += count_correct(model(encode(x)), y)
            seen += len(y)
    return correct / max(seen, 1)


def train(model: torch.nn.Module, encode: Callable[[torch.Tensor], torch.Tensor],
          train_split: ArraySplit, test_split: ArraySplit, make_trainer: Callable[..., Any], *,
          epochs: int, batch_size: int, seed: int = 0, cancel: CancelToken | None = None,
          run_id: str | None = None, on_batch: Callable[[], None] | None = None,
          config: dict[str, Any] | None = None) -> Iterator[RunEvent]:
    """Train ``model`` for ``epochs``; after each epoch, measure test accuracy.

    ``make_trainer(model, epochs=, steps_per_epoch=)`` builds the learning rule's trainer.
    ``on_batch`` runs after every optimiser step (the GUI's live probe hooks in there).
    """
    run_id = run_id or new_run_id("train")
    cancel = cancel or CancelToken()
    return guarded(run_id, _train(model, encode, train_split, test_split, make_trainer, epochs,
                                  batch_size, seed, cancel, run_id, on_batch, config or {}))


def _train(model, encode, train_split, test_split, make_trainer, epochs, batch_size, seed,
           cancel, run_id, on_batch, config) -> Iterator[RunEvent]:
    steps_per_epoch = train_split.n_batches(batch_size)
    total = epochs * steps_per_epoch
    yield RunStarted(run_id, "train", total, dict(config))
    trainer = make_trainer(model, epochs=epochs, steps_per_epoch=steps_per_epoch)
    started = time.perf_counter()
    last_metric = 0.0
    step = samples = 0
    history: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        loss_sum = correct = seen = 0.0
        for x, y in train_split.batches(batch_size, shuffle=True, seed=seed + epoch):
            if cancel.requested:
                yield RunFinished(run_id, "cancelled",
                                  summary=_train_summary(history, started, samples))
                return
            m = trainer.train_step(encode(x), y)
            step += 1
            samples += m["count"]
            loss_sum += m["loss"] * m["count"]
            correct += m["correct"]
            seen += m["count"]
            if on_batch is not None:
                on_batch()
            yield Progress(run_id, step, total, epoch)
            now = time.perf_counter()
            if now - last_metric >= 1.0 / METRIC_HZ:
                last_metric = now
                yield MetricSample(run_id, epoch, step, {"loss": m["loss"],
                                                         "lr": getattr(trainer, "lr", 0.0)})
        accuracy = _test_accuracy(model, encode, test_split, batch_size, cancel)
        if accuracy is None:
            yield RunFinished(run_id, "cancelled",
                              summary=_train_summary(history, started, samples))
            return
        values = {"train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                  "test_accuracy": accuracy, "lr": getattr(trainer, "lr", 0.0)}
        history.append({"epoch": epoch, **values})
        yield MetricSample(run_id, epoch, step, values, epoch_end=True)
    yield RunFinished(run_id, "ok", summary=_train_summary(history, started, samples))


def _train_summary(history: list[dict[str, float]], started: float, samples: int) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"epochs": len(history), "seconds": round(seconds, 3),
                               "samples_per_s": round(samples / seconds, 1) if seconds > 0 else 0.0,
                               "history": history}
    if history:
        summary["test_accuracy"] = history[-1]["test_accuracy"]
        summary["best_test_accuracy"] = max(h["test_accuracy"] for h in history)
        summary["train_loss"] = history[-1]["train_loss"]
    return summary


def evaluate(model: torch.nn.Module, encode: Callable[[torch.Tensor], torch.Tensor],
             split: ArraySplit, table: CostTable, *, batch_size: int = 256,
             encode_once: bool = True, sop_counting: str = "exact", limit: int | None = None,
             cancel: CancelToken | None = None, run_id: str | None = None,
             energy_every: float = 0.25) -> Iterator[RunEvent]:
    """Measure accuracy on ``split`` and count the energy ledger from the spikes seen.

    An :class:`EnergySample` with the ledger so far is yielded every ``energy_every`` seconds,
    so a view can fill in live; the summary holds ``accuracy`` and ``energy``.
    """
    run_id = run_id or new_run_id("evaluate")
    cancel = cancel or CancelToken()
    return guarded(run_id, _evaluate(model, encode, split, table, batch_size, encode_once,
                                     sop_counting, limit, cancel, run_id, energy_every))


def _evaluate(model, encode, split, table, batch_size, encode_once, sop_counting, limit,
              cancel, run_id, energy_every) -> Iterator[RunEvent]:
    total = split.n_batches(batch_size, limit)
    samples = len(split) if limit is None else min(len(split), limit)
    yield RunStarted(run_id, "evaluate", total, {"table": table.id, "samples": samples})
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
            correct += count_correct(model(encode(x)), y)
            seen += len(y)
            yield Progress(run_id, i, total)
            if time.perf_counter() - last >= energy_every:
                last = time.perf_counter()
                yield EnergySample(run_id, seen, meter.report(table).to_dict())
        report = meter.report(table).to_dict()
    yield EnergySample(run_id, seen, report)
    yield RunFinished(run_id, "ok", summary={"accuracy": correct / max(seen, 1), "samples": seen,
                                             "correct": correct, "energy": report})
