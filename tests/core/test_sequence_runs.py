"""The toy sequence plugin end to end through the run catalog: an encoder that sets T, ternary
input spikes, variable lengths, streamed data, and a rule's extra metric."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import MetricSample, RunFinished
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import toy_project_dir

TOY = "workbench.testing.toy_plugins"


@pytest.fixture(scope="module")
def toy_host():
    host = load_plugins(modules=[TOY])
    assert not host.report.failures
    return host


@pytest.fixture
def toy_session(tmp_path, toy_host):
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy_sequences")
    return Session(load_project(folder), toy_host.registry)


def test_the_module_registers_under_its_name(toy_host):
    info = next(p for p in toy_host.report.plugins if p.module == TOY)
    assert info.name == "toy_plugins"
    assert info.contributions == {"dataset": ["toy_plugins.sequences"],
                                  "encoder": ["toy_plugins.delta"],
                                  "learning_rule": ["toy_plugins.bptt_events"]}
    assert toy_host.registry.get("toy_plugins.delta").sets_time_steps


def test_the_encoder_sets_the_steps_and_the_network_shape(toy_session):
    assert toy_session.project.time_steps == 24
    toy_session.project.time_steps = 5  # the project's T is ignored: the encoder sets it
    assert toy_session.time_steps() == 24
    assert toy_session.step_shape() == (2,)
    model = toy_session.build()
    assert model.input_shape == (2,)
    report = toy_session.validate()
    assert report.ok and report.nodes["hidden"].in_shapes == [(2,)]


def test_train_evaluate_probe(toy_session, tmp_path):
    events = list(catalog.train(toy_session, epochs=3, fresh=True, save_weights=True))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "ok", finished.error
    assert finished.summary["test_accuracy"] > 0.5  # chance: 1/3
    epoch_ends = [e for e in events if isinstance(e, MetricSample) and e.epoch_end]
    assert len(epoch_ends) == 3
    # backward_events: summed over each epoch (the rule's metric_reductions), everywhere
    counts = [e.values["backward_events"] for e in epoch_ends]
    assert all(c > 0 for c in counts)
    assert finished.summary["metrics"]["backward_events"] == counts[-1]
    batches = [e for e in events if isinstance(e, MetricSample) and not e.epoch_end]
    assert batches and all("backward_events" in e.values for e in batches)
    assert events[0].config["time_steps"] == 24
    record = toy_session.project.folder / "runs" / f"{finished.run_id}.jsonl"
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    recorded = [line for line in lines if line["event"] == "metric" and line["epoch_end"]]
    assert [line["values"]["backward_events"] for line in recorded] == counts
    assert lines[-1]["summary"]["metrics"]["backward_events"] == counts[-1]

    # evaluation: the ternary input counts one accumulate per non-zero, never a MAC
    result = catalog.evaluate(toy_session).result()
    assert result.status == "ok", result.error
    assert result.summary["accuracy"] > 0.5
    first = next(layer for layer in result.summary["energy"]["layers"]
                 if layer["name"] == "hidden.fc")
    assert first["input"] == "spikes" and first["macs"] == 0
    data = toy_session.data()
    x, _y = data.test.batch(np.arange(len(data.test)))
    spikes = toy_session.encoder()(x)
    assert spikes.lt(0).any()
    assert first["sops"] == pytest.approx(float(spikes.ne(0).sum()) * 32 / len(data.test))

    # probe: the sample's length, the reconstruction, and the −1 input spikes
    out = tmp_path / "probe.npz"
    probe = catalog.probe(toy_session, sample=3, out=out).result()
    assert probe.status == "ok", probe.error
    summary = probe.summary
    assert summary["length"] == data.test.length_of(3)
    assert summary["reconstruction_mse"] < 0.1
    assert summary["input_spikes"]["shape"] == [2]
    assert summary["input_spikes"]["negative"] > 0
    assert summary["input_spikes"]["spikes"] == (summary["input_spikes"]["positive"]
                                                 + summary["input_spikes"]["negative"])
    neuron = summary["layers"]["hidden.neuron"]
    assert {"spikes", "positive", "negative", "firing_rate"} <= set(neuron)
    assert probe.result.reconstruction.shape == (2, 24)
    arrays = np.load(out)
    assert arrays["input_spikes"].dtype == np.int8 and arrays["input_spikes"].min() == -1
    assert arrays["hidden.neuron/spikes"].shape == (24, 32)


def test_streamed_data_trains_exactly_like_arrays(tmp_path, toy_host):
    histories = []
    for streamed in (False, True):
        folder = shutil.copytree(toy_project_dir(), tmp_path / f"toy_{streamed}")
        project = load_project(folder)
        project.dataset.params["streamed"] = streamed
        session = Session(project, toy_host.registry)
        finished = catalog.train(session, epochs=1, fresh=True).result()
        assert finished.status == "ok", finished.error
        histories.append(finished.summary["history"])
        evaluated = catalog.evaluate(session, limit=20).result()
        assert evaluated.status == "ok" and evaluated.summary["samples"] == 20
        probed = catalog.probe(session, sample=2).result()
        assert probed.summary["length"] == session.data().test.length_of(2)
    assert histories[0] == histories[1]


def test_backends_take_the_delta_encoders_spikes_as_the_input(toy_session, tmp_path):
    """An encoder that makes spikes feeds them to the integer network step by step: the fit
    checks take it (no static-input range to clip, so no 'negative inputs' warning either),
    read from a streamed split as from arrays, and wb_sim runs it bit-exactly."""
    from wb_sim.convert import input_scale_for

    arrays = toy_session.data()
    toy_session.project.dataset.params["streamed"] = True  # the checks read a stream too
    streamed = toy_session.data()
    assert streamed is not arrays
    assert input_scale_for(streamed.train) == input_scale_for(arrays.train)
    toy_session.build()
    for backend in ("wb_sim.simulator", "wb_fpga.fpga"):
        fit = catalog.check_fit(toy_session, backend=backend).result().summary["fit"]
        assert not [issue for issue in fit if issue["severity"] == "error"], fit
        assert not any("negative" in issue["message"] for issue in fit), fit
    trained = catalog.train(toy_session, epochs=1, fresh=True, save_weights=True).result()
    assert trained.status == "ok", trained.error
    done = catalog.deploy(toy_session, backend="wb_sim.simulator", out=tmp_path / "sim",
                          limit=12).result()
    assert done.status == "ok", done.error
    report = done.summary["report"]
    assert report["input_kind"] == "spikes" and report["golden"]["bit_exact"]
    assert report["time_steps"] == 24 and report["ops_per_sample"]["dense_macs"] == 0
