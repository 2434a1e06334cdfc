"""Runs as event generators: training, evaluation, cancel, failures, probes, records."""

from __future__ import annotations

import json

import numpy as np
import torch

from workbench.core.build.probes import SpikeProbe, neuron_layers
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.events import MetricSample, Progress, RunFinished, RunStarted
from workbench.core.runs.session import Session


def _finished(events) -> RunFinished:
    last = events[-1]
    assert isinstance(last, RunFinished)
    assert sum(isinstance(e, RunFinished) for e in events) == 1
    return last


def test_training_yields_typed_events_and_learns(tiny_project, plugin_host):
    session = Session(tiny_project, plugin_host.registry)
    events = list(session.train(epochs=2))
    assert isinstance(events[0], RunStarted) and events[0].kind == "train"
    finished = _finished(events)
    assert finished.status == "ok", finished.error
    epoch_ends = [e for e in events if isinstance(e, MetricSample) and e.epoch_end]
    assert [e.epoch for e in epoch_ends] == [1, 2]
    assert epoch_ends[-1].values["test_accuracy"] > 0.5
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == events[0].total
    assert {e.run_id for e in events} == {events[0].run_id}


def test_training_is_reproducible_with_the_same_seed(tmp_path, plugin_host):
    from workbench.testing.fixtures import make_tiny_project

    results = []
    for name in ("a", "b"):
        session = Session(make_tiny_project(tmp_path / name), plugin_host.registry)
        results.append(_finished(list(session.train(epochs=1))).summary["train_loss"])
    assert results[0] == results[1]


def test_cancel_stops_within_a_batch(tiny_project, plugin_host):
    session = Session(tiny_project, plugin_host.registry)
    cancel = CancelToken()
    seen = []
    for event in session.train(epochs=50, cancel=cancel):
        seen.append(event)
        if isinstance(event, Progress) and event.done == 3:
            cancel.set()
    finished = _finished(seen)
    assert finished.status == "cancelled"
    assert max(e.done for e in seen if isinstance(e, Progress)) == 3


def test_bad_input_ends_the_run_as_a_failure_not_an_exception(tiny_project, plugin_host):
    tiny_project.graph.nodes[2].params["out_features"] = 7  # digits have 10 classes
    finished = _finished(list(Session(tiny_project, plugin_host.registry).train(epochs=1)))
    assert finished.status == "failed" and finished.error_kind == "input"
    assert "node 'fc'" in finished.error and "10 classes" in finished.error


def test_plugin_crash_in_a_run_is_reported_as_internal(tiny_project, plugin_host, monkeypatch):
    session = Session(tiny_project, plugin_host.registry)
    session.build()
    monkeypatch.setattr(session.model, "forward", lambda x: 1 / 0)
    finished = _finished(list(session.train(epochs=1)))
    assert finished.status == "failed" and finished.error_kind == "internal"
    assert "ZeroDivisionError" in finished.error and "Traceback" in finished.traceback


def test_evaluate_reports_accuracy_and_energy(tiny_project, plugin_host):
    session = Session(tiny_project, plugin_host.registry)
    list(session.train(epochs=1))
    finished = _finished(list(session.evaluate(limit=100)))
    summary = finished.summary
    assert summary["samples"] == 100 and 0 <= summary["accuracy"] <= 1
    energy = summary["energy"]
    assert energy["kind"] == "estimate" and energy["table"] == "wb_core.fp32_45nm"
    assert [layer["name"] for layer in energy["layers"]] == ["hidden.fc", "fc"]
    assert energy["layers"][0]["input"] == "real" and energy["layers"][1]["input"] == "spikes"
    expected = energy["macs_per_sample"] * 4.6 + energy["sops_per_sample"] * 0.9
    assert abs(energy["total_pj_per_sample"] - expected) < 1e-6 * expected


def test_probe_records_spikes_and_membranes_only_while_active(tiny_project, plugin_host):
    session = Session(tiny_project, plugin_host.registry)
    model = session.build()
    x, _ = session.data().test.batch(np.arange(4))
    assert neuron_layers(model) == ["hidden.neuron"]
    with torch.no_grad(), SpikeProbe(model, membranes=True, samples=2) as probe:
        model(session.encoder()(x))
    record = probe.records["hidden.neuron"]
    assert record.spikes.shape == (2, 2, 32) and record.membrane.shape == (2, 2, 32)
    assert set(record.spikes.unique().tolist()) <= {0.0, 1.0}
    neuron = model.layers["hidden"].neuron
    assert neuron.record_membrane is False and neuron.last_membrane is None
    assert not neuron._forward_hooks


def test_records_are_json_lines_without_progress(tiny_project, plugin_host):
    session = Session(tiny_project, plugin_host.registry)
    run = session.train(epochs=1)  # a run records itself into <project>/runs/<run id>.jsonl
    events = list(run)
    files = list((tiny_project.folder / "runs").glob("*.jsonl"))
    assert len(files) == 1 and files[0].stem == run.id == events[0].run_id
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert lines[0]["event"] == "run_started" and lines[-1]["event"] == "run_finished"
    assert [line["event"] for line in lines].count("run_finished") == 1
    assert all(line["event"] != "progress" for line in lines)
    assert len(lines) == sum(not isinstance(e, Progress) for e in events)


def test_saved_weights_are_loaded_by_the_next_session(tiny_project, plugin_host):
    first = Session(tiny_project, plugin_host.registry)
    list(first.train(epochs=1))
    first.save_weights()
    second = Session(tiny_project, plugin_host.registry)
    second.build()
    assert second.weights_loaded
    for (k, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_recording_maps_collects_attention_maps_only_while_active():
    from workbench.core.build.network import CompiledNetwork
    from workbench.core.build.probes import recording_maps
    from workbench.core.build.report import CompileReport

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.record_maps = False

        def forward(self, x):
            maps = {"kind": "fake", "mask": (x > 0).float()} if self.record_maps else {}
            return x, maps

    net = CompiledNetwork({"att": Attention()}, ["att"], {"att": []}, CompileReport())
    x = torch.randn(2, 3, 4)
    net(x)
    assert net.last_maps == {}  # nothing recorded, nothing kept
    with recording_maps(net, samples=1) as maps:
        net(x)
    assert set(maps) == {"att"} and maps["att"]["kind"] == "fake"
    assert maps["att"]["mask"].shape == (2, 1, 4)
    assert net.layers["att"].record_maps is False and net.last_maps == {}
