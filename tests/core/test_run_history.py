"""Reading run records back (a reopened project's last training curves) and the threshold a probe
hands to the membrane plot."""

from __future__ import annotations

import os

import torch

from workbench.core.build.probes import fixed_threshold
from workbench.core.runs.events import Log, MetricSample, RunFinished, RunStarted
from workbench.core.runs.records import last_training, read_training, recorded


def _record(folder, run_id: str, kind: str = "train", epochs: int = 2,
            status: str = "ok") -> None:
    events = [RunStarted(run_id, kind, total=epochs)]
    events += [MetricSample(run_id, epoch, epoch, {"train_loss": 1.0 / epoch,
                                                   "test_accuracy": 0.1 * epoch}, epoch_end=True)
               for epoch in range(1, epochs + 1)]
    events.append(RunFinished(run_id, status))
    list(recorded(iter(events), folder))


def test_the_newest_training_record_with_metrics_is_the_last_run(tmp_path):
    _record(tmp_path, "train-20250101-080000-aaaaaa", epochs=2)
    _record(tmp_path, "train-20250103-080000-cccccc", epochs=0, status="failed")  # no metric
    _record(tmp_path, "evaluate-20250104-080000-dddddd", kind="evaluate", epochs=1)
    _record(tmp_path, "train-20250102-080000-bbbbbb", epochs=4, status="cancelled")
    history = last_training(tmp_path)
    assert history.run_id == "train-20250102-080000-bbbbbb"
    assert history.epochs == 4 and history.status == "cancelled"
    assert history.started.isoformat() == "2025-01-02T08:00:00"
    assert [s.values["test_accuracy"] for s in history.samples] == \
        [0.1, 0.2, 0.1 * 3, 0.1 * 4]


def test_a_fifo_named_like_a_newer_record_is_passed_over_not_read(tmp_path):
    _record(tmp_path, "train-20250101-080000-aaaaaa", epochs=2)
    os.mkfifo(tmp_path / "runs" / "train-20250105-080000-ffffff.jsonl")  # reading it would hang
    assert last_training(tmp_path).run_id == "train-20250101-080000-aaaaaa"


def test_a_damaged_record_keeps_its_readable_lines(tmp_path):
    _record(tmp_path, "train-20250101-080000-aaaaaa", epochs=3)
    path = tmp_path / "runs" / "train-20250101-080000-aaaaaa.jsonl"
    lines = path.read_text("utf-8").splitlines()
    lines[2] = lines[2][:20]  # a line cut short (the app was killed while writing it)
    lines.append('{"event": "metric", "values": NaN}')  # not JSON
    path.write_text("\n".join(lines) + "\n", "utf-8")
    history = read_training(path)
    assert history.epochs == 2 and history.status == "ok"
    assert last_training(tmp_path / "nowhere") is None  # a project never run


def test_a_record_that_stops_mid_run_reads_as_interrupted(tmp_path):
    events = [RunStarted("train-1", "train", total=2),
              MetricSample("train-1", 1, 1, {"loss": 0.5}), Log("train-1", "info", "x")]
    list(recorded(iter(events), tmp_path))
    history = last_training(tmp_path)
    assert history.status == "" and history.epochs == 0 and len(history.samples) == 1


class _Neuron(torch.nn.Module):
    def __init__(self, threshold) -> None:
        super().__init__()
        self.threshold = threshold


class _Broken(torch.nn.Module):
    @property
    def threshold(self) -> float:
        raise RuntimeError("not built yet")


def test_a_probe_keeps_a_neurons_threshold_only_when_it_is_one_number():
    assert fixed_threshold(_Neuron(0.75)) == 0.75
    assert fixed_threshold(_Neuron(torch.tensor(1.5))) == 1.5
    assert fixed_threshold(_Neuron(torch.tensor([1.0, 2.0]))) is None  # per neuron: no line
    assert fixed_threshold(_Neuron(True)) is None
    assert fixed_threshold(torch.nn.Identity()) is None
    assert fixed_threshold(_Broken()) is None
