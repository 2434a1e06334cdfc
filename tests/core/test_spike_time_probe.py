"""Probing a time-to-first-spike network: each spike-time layer's firing times, the output race
and their summary, JSON and arrays; a spike-train network's probe is unchanged.

The network comes from a toy plugin (``tests/fixtures/ttfs_toy_plugin.py``) fed by the real
``wb_core.ttfs`` encoder: flatten → 16 time neurons → 10 output time neurons.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from workbench.core.model.errors import WorkbenchError
from workbench.core.runs.probe import (
    probe_arrays,
    probe_sample,
    probe_summary,
    race_winner,
    spike_time_stats,
)
from workbench.core.runs.session import Session
from workbench.testing.fixtures import make_tiny_project


@pytest.fixture
def host(ttfs_toy):
    return ttfs_toy.host()


@pytest.fixture
def make_session(ttfs_toy, host):
    """``make_session(folder)``: the toy TTFS project (tests/conftest.py), built and silenced."""
    return lambda folder: ttfs_toy.session(folder, host)


def expected_times(session: Session, index: int) -> dict[str, torch.Tensor]:
    """Each layer's times for test sample ``index``, computed layer by layer here."""
    x, _y = session.data().test.batch(np.array([index]))
    model = session.model
    with torch.no_grad():
        flat = model.layers["flat"](session.encoder()(x))
        hidden = model.layers["hidden"](flat)
        out = model.layers["out"](hidden)
    return {"hidden": hidden[0, 0], "out": out[0, 0]}


def test_the_probe_keeps_each_time_layers_firing_times_and_the_output_race(tmp_path, make_session):
    session = make_session(tmp_path / "p")
    result = probe_sample(session, 3)
    expected = expected_times(session, 3)
    assert list(result.spike_times) == ["hidden", "out"]
    for name, times in expected.items():
        assert result.spike_times[name].shape == (times.numel(),)
        assert torch.equal(result.spike_times[name], times)  # inf kept where silent
    assert result.spike_times["hidden"][0] == math.inf
    assert torch.equal(result.output_times, expected["out"])
    assert result.output_times[2] == math.inf and result.output_times[7] == math.inf
    # the earliest output spike is the readout's prediction
    assert result.predicted == int(expected["out"].argmin()) == race_winner(result.output_times)
    item = result.as_dict()  # what the views get
    assert item["spike_times"] is result.spike_times and item["output_times"] is result.output_times
    assert not result.records  # no neuron layer: the raster has nothing to draw
    for module in session.model.modules():  # the hooks went with the probe
        assert not module._forward_hooks


def test_the_summary_gives_per_layer_figures_and_the_race_with_silence_as_null(tmp_path, make_session):
    session = make_session(tmp_path / "p")
    result = probe_sample(session, 0)
    summary = probe_summary(result, weights_loaded=False)
    text = json.dumps(summary, allow_nan=False)  # valid JSON: no Infinity
    summary = json.loads(text)
    for name, times in expected_times(session, 0).items():
        fired = times[torch.isfinite(times)].double().numpy()
        assert summary["spike_times"][name] == {
            "neurons": times.numel(), "fired": fired.size,
            "first": pytest.approx(fired.min()), "median": pytest.approx(np.median(fired)),
            "last": pytest.approx(fired.max())}
    race = summary["race"]
    assert len(race["times"]) == 10 and race["times"][2] is None and race["times"][7] is None
    fired = {k: t for k, t in enumerate(race["times"]) if t is not None}
    assert race["winner"] == min(fired, key=fired.get) == summary["predicted"]
    assert race["times"][race["winner"]] == pytest.approx(float(result.output_times.min()))


def test_the_arrays_carry_each_layers_times_and_the_output_times(tmp_path, make_session):
    session = make_session(tmp_path / "p")
    result = probe_sample(session, 1)
    arrays = probe_arrays(result)
    assert arrays["hidden/spike_times"].dtype == np.float32
    assert np.array_equal(arrays["hidden/spike_times"], result.spike_times["hidden"].numpy())
    assert np.isinf(arrays["hidden/spike_times"][0])
    assert np.array_equal(arrays["output_times"], result.output_times.numpy())
    path = tmp_path / "probe.npz"
    np.savez_compressed(path, **arrays)
    with np.load(path) as saved:
        assert np.array_equal(saved["out/spike_times"], arrays["out/spike_times"])


def test_a_layer_filter_picks_time_layers_and_an_unknown_name_lists_them(tmp_path, make_session):
    session = make_session(tmp_path / "p")
    result = probe_sample(session, 0, layers=["out"])
    assert list(result.spike_times) == ["out"]
    with pytest.raises(WorkbenchError) as caught:
        probe_sample(session, 0, layers=["nope"])
    assert "'nope'" in caught.value.message and "hidden, out" in caught.value.message


def test_a_spike_train_network_is_probed_as_before(tmp_path, plugin_host):
    session = Session(make_tiny_project(tmp_path / "tiny"), plugin_host.registry)
    result = probe_sample(session, 0)
    assert result.spike_times == {} and result.output_times is None
    assert "hidden.neuron" in result.records
    summary = probe_summary(result, weights_loaded=False)
    assert "spike_times" not in summary and "race" not in summary
    assert not any(key.endswith("spike_times") or key == "output_times"
                   for key in probe_arrays(result))


def test_the_race_winner_is_the_first_earliest_and_none_when_all_are_silent():
    inf = math.inf
    assert race_winner(torch.tensor([0.7, inf, 0.2, 0.2])) == 2  # a tie: the first, as the readout
    assert race_winner(torch.tensor([inf, inf])) is None
    assert spike_time_stats(torch.tensor([inf, inf, inf])) == {
        "neurons": 3, "fired": 0, "first": None, "median": None, "last": None}
    assert spike_time_stats(torch.tensor([0.0, inf, 3.0, 1.0])) == {
        "neurons": 4, "fired": 3, "first": 0.0, "median": 1.0, "last": 3.0}
