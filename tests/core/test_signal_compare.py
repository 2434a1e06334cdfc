"""Signal encoders compared on one sequence sample (the Signal view's and ``inspect --signal``'s
figures): every figure is checked against the encoder's own output, recomputed here by hand."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from workbench.core.model.errors import DatasetError, PluginError, WorkbenchError
from workbench.core.model.json_text import dumps
from workbench.core.model.project import Component
from workbench.core.model.specs import EncoderSpec, ParamSpec
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.session import Session
from workbench.core.runs.signal import (
    CSV_HEADER,
    EncodedSignal,
    compare_encoders,
    prepare_comparison,
    signal_encoders,
    signal_rows,
)
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import DeltaEncoder, toy_project_dir

TOY = "workbench.testing.toy_plugins"


class ShrinkingDelta(DeltaEncoder):
    """The toy delta encoder with a threshold that halves after every step of a channel that
    spiked (never below ``floor``) and says so through the optional ``thresholds``."""

    def __init__(self, threshold: float = 0.4, floor: float = 0.1) -> None:
        super().__init__(threshold)
        self.floor = floor

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        theta = torch.full(x.shape[:-1], self.threshold)
        base = x[..., 0].clone()
        spikes, used = [], []
        for t in range(x.shape[-1]):
            delta = x[..., t] - base
            s = (delta >= theta).float() - (delta <= -theta).float()
            base = base + theta * s
            spikes.append(s)
            used.append(theta.clone())
            theta = torch.where(s != 0, (theta / 2).clamp(min=self.floor), theta)
        return torch.stack(spikes), torch.stack(used)

    def encode(self, x, steps):
        spikes, used = self._run(x)
        return spikes, (x[..., 0].clone(), used)

    def decode(self, spikes, side):
        start, used = side
        return (start.unsqueeze(0) + (spikes * used).cumsum(0)).permute(1, 2, 0)

    def thresholds(self, spikes, side):
        return side[1]


class Broken(DeltaEncoder):
    def decode(self, spikes, side):
        raise RuntimeError("decoder lost its state")


@pytest.fixture(scope="module")
def registry():
    host = load_plugins(modules=[TOY])
    assert not host.report.failures
    host.registry.add("tests", EncoderSpec(
        id="tests.shrinking_delta", display_name="Shrinking delta", factory=ShrinkingDelta,
        params=(ParamSpec("threshold", 0.4), ParamSpec("floor", 0.1))))
    host.registry.add("tests", EncoderSpec(id="tests.broken", display_name="Broken",
                                           factory=Broken))
    return host.registry


@pytest.fixture
def session(tmp_path, registry):
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    return Session(load_project(folder), registry)


def short_sample(session: Session) -> tuple[int, torch.Tensor, int]:
    """A test sample shorter than the padded length (so cutting at its length matters)."""
    split = session.data().test
    index = next(i for i in range(len(split)) if split.length_of(i) < 20)
    x, _y, lengths = split.batch(np.array([index]), lengths=True)
    return index, x, int(lengths[0])


def test_the_figures_are_those_of_the_encoders_own_output(session):
    index, x, length = short_sample(session)
    [delta] = compare_encoders(session, index, encoders=["toy_plugins.delta"])

    encoder = DeltaEncoder(0.25)  # the toy encoder's default, as the project leaves it
    full, start = encoder.encode(x, 24)  # the padded sample, as the network gets it
    spikes = full[:length, 0]
    rebuilt = encoder.decode(full, start)[0, :, :length]
    signal = x[0, :, :length].double()
    error = rebuilt.double() - signal
    assert delta.encoder == "toy_plugins.delta" and delta.is_project
    assert delta.spikes.dtype == np.int8 and delta.spikes.shape == (length, 2)
    assert np.array_equal(delta.spikes, spikes.numpy())
    assert set(np.unique(delta.spikes)) <= {-1, 0, 1} and (delta.spikes < 0).any()
    assert np.array_equal(delta.signal, x[0, :, :length].numpy())
    assert np.allclose(delta.reconstruction, rebuilt.numpy())
    assert delta.thresholds is None  # the toy encoder does not say
    count = int((spikes != 0).sum())
    assert delta.spike_count == count
    assert delta.spikes_per_channel_per_1000 == pytest.approx(1000 * count / (2 * length))
    assert delta.mse == pytest.approx(float(error.pow(2).mean()))
    assert np.allclose(delta.mse_per_channel, error.pow(2).mean(1).numpy())
    snr = 10 * np.log10(float(signal.pow(2).sum()) / float(error.pow(2).sum()))
    assert delta.snr_db == pytest.approx(snr)
    per_channel = 10 * np.log10((signal.pow(2).sum(1) / error.pow(2).sum(1)).numpy())
    assert np.allclose(delta.snr_db_per_channel, per_channel)
    summary = json.loads(dumps(delta.summary()))
    assert summary["spikes"] == count and summary["steps"] == length
    assert summary["positive"] + summary["negative"] == count
    assert summary["mse"] == pytest.approx(delta.mse)


def test_the_project_encoder_comes_first_with_its_parameters(session):
    session.project.encoder.params["threshold"] = 0.5
    index, _x, _length = short_sample(session)
    project, default = compare_encoders(
        session, index, encoders=["toy_plugins.delta", Component("toy_plugins.delta", {})])
    assert project.is_project and project.spike_count < default.spike_count
    # the default list: the project's encoder, then every other signal encoder installed
    chosen = signal_encoders(session)
    assert chosen[0] == Component("toy_plugins.delta", {"threshold": 0.5})
    ids = [c.id for c in chosen]
    assert "tests.shrinking_delta" in ids
    assert not {"wb_core.direct", "wb_core.rate", "wb_core.latency"} & set(ids)  # not signals


def test_an_encoder_that_says_its_thresholds_gets_them_cut_to_the_length(session):
    index, x, length = short_sample(session)
    [shrinking] = compare_encoders(session, index, encoders=["tests.shrinking_delta"])
    encoder = ShrinkingDelta()
    spikes, side = encoder.encode(x, 24)
    assert shrinking.thresholds.shape == (length, 2)
    assert np.allclose(shrinking.thresholds, side[1][:length, 0].numpy())
    assert shrinking.thresholds.min() < 0.4  # it adapted
    assert np.allclose(shrinking.reconstruction,
                       encoder.decode(spikes, side)[0, :, :length].numpy())
    assert not shrinking.is_project


def test_csv_rows_hold_every_step_of_the_chosen_channels(session):
    index, _x, length = short_sample(session)
    encodings = compare_encoders(session, index,
                                 encoders=["toy_plugins.delta", "tests.shrinking_delta"])
    rows = list(signal_rows(encodings, channels=[1]))
    assert len(CSV_HEADER) == 7 and len(rows) == 2 * length
    step, channel, encoder, raw, spike, rebuilt, threshold = rows[length + 3]
    shrinking = encodings[1]
    assert (step, channel, encoder) == (3, 1, "tests.shrinking_delta")
    assert raw == pytest.approx(float(shrinking.signal[1, 3]))
    assert spike == int(shrinking.spikes[3, 1])
    assert rebuilt == pytest.approx(float(shrinking.reconstruction[1, 3]))
    assert threshold == pytest.approx(float(shrinking.thresholds[3, 1]))
    assert rows[0][-1] == ""  # the toy delta says no threshold


def test_an_exact_reconstruction_has_zero_error_and_infinite_snr():
    signal = np.array([[1.0, -2.0, 0.5]])
    exact = EncodedSignal("e.x", "Exact", False, signal, np.array([[1], [0], [-1]], np.int8),
                          reconstruction=signal.copy())
    assert exact.mse == 0.0 and exact.snr_db == float("inf")
    assert json.loads(dumps(exact.summary()))["snr_db"] is None  # JSON has no infinity
    assert exact.spikes_per_channel_per_1000 == pytest.approx(1000 * 2 / 3)


def test_a_dataset_that_is_not_sequences_is_one_clear_error(tmp_path):
    from workbench.testing.fixtures import make_tiny_project

    session = Session(make_tiny_project(tmp_path / "tiny"), load_plugins().registry)
    with pytest.raises(DatasetError) as caught:
        compare_encoders(session)
    message = str(caught.value)
    assert "the signal view needs a sequence dataset (layout 'sequence')" in message
    assert "wb_datasets.digits" in message and "'image'" in message


def test_bad_choices_are_named(session):
    with pytest.raises(WorkbenchError, match="not an installed encoder") as caught:
        compare_encoders(session, encoders=["toy_plugins.nope"])
    assert caught.value.where == "encoders"
    with pytest.raises(WorkbenchError, match="does not turn a") as caught:
        compare_encoders(session, encoders=["wb_core.direct"])
    assert caught.value.where == "encoders"
    with pytest.raises(WorkbenchError, match="choose 0 to 59") as caught:
        compare_encoders(session, 60)
    assert caught.value.where == "sample"
    with pytest.raises(PluginError, match="decoder lost its state") as caught:
        compare_encoders(session, encoders=["tests.broken"])
    assert caught.value.where == "encoder tests.broken"


def test_a_prepared_comparison_keeps_what_it_was_given(session):
    """The app encodes on a worker thread while the project may change: the prepared job holds
    its own sample and encoder choice."""
    index, _x, _length = short_sample(session)
    job = prepare_comparison(session, index, encoders=["toy_plugins.delta"])
    before = compare_encoders(session, index, encoders=["toy_plugins.delta"])[0]
    session.project.encoder.params["threshold"] = 0.6  # edited after the job was made
    [delta] = job()
    assert np.array_equal(delta.spikes, before.spikes) and delta.mse == before.mse
    [edited] = compare_encoders(session, index, encoders=["toy_plugins.delta"])
    assert edited.spike_count < before.spike_count


def test_a_broken_encoder_found_by_looking_is_left_out_with_a_warning(session, registry,
                                                                      caplog):
    with caplog.at_level("WARNING", logger="workbench.core.runs.signal"):
        found = compare_encoders(session)  # the registry holds tests.broken too
    ids = [e.encoder for e in found]
    assert ids[0] == "toy_plugins.delta" and "tests.broken" not in ids
    assert "encoder tests.broken: RuntimeError: decoder lost its state" in caplog.text
    # when it is the only one there is, its failure is the answer
    from workbench.pluginhost.registry import ContributionRegistry

    alone = ContributionRegistry()
    alone.add("toy_plugins", registry.get("toy_plugins.sequences"))
    alone.add("tests", registry.get("tests.broken"))
    session.project.encoder = Component("tests.broken")
    with pytest.raises(PluginError, match="decoder lost its state"):
        compare_encoders(Session(session.project, alone))
