"""wb_sim on time-to-first-spike networks: the priority-queue simulator, the dense closed form
and a tick-by-tick brute force agree bit for bit; the backend deploys a ReL-PSP project and
refuses what has no integer form, naming the node."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wb_sim.ttfs_ir import TTFSLayer, TTFSNetwork, load_network
from wb_sim.ttfs_reference import torch_ttfs_forward
from wb_sim.ttfs_simulate import simulate_ttfs
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.pluginhost import DeployError, RunFinished, Session


def brute_force(net: TTFSNetwork, t_in: np.ndarray) -> list[np.ndarray]:
    """Every layer's firing ticks by evaluating every neuron's potential at every tick (conv
    layers through an explicit loop over output positions and taps)."""
    ticks = np.arange(net.horizon + 1)
    outs = []
    for sample in t_in:
        t = sample
        for layer in net.layers:
            weight, inputs = _as_dense(layer)
            lag = np.maximum(0, ticks[:, None] - t[None, :])  # [ticks, inputs]
            potential = lag @ weight.T  # [ticks, neurons]
            crossed = potential >= layer.neuron_thresholds()[None, :]
            t = np.where(crossed.any(0), crossed.argmax(0), net.silent)
            assert inputs == sample.size or layer is not net.layers[0]
        outs.append(t)
    return outs


def _as_dense(layer: TTFSLayer) -> tuple[np.ndarray, int]:
    if layer.kind == "linear":
        return layer.weight, layer.weight.shape[1]
    c_out, c_in, k, _ = layer.weight.shape
    _, h, w = layer.in_shape
    _, ho, wo = layer.out_shape
    dense = np.zeros((c_out * ho * wo, c_in * h * w), dtype=np.int64)
    for co in range(c_out):
        for y in range(ho):
            for x in range(wo):
                for ci in range(c_in):
                    for dy in range(k):
                        for dx in range(k):
                            iy = y * layer.stride - layer.padding + dy
                            ix = x * layer.stride - layer.padding + dx
                            if 0 <= iy < h and 0 <= ix < w:
                                dense[co * ho * wo + y * wo + x, ci * h * w + iy * w + ix] = \
                                    layer.weight[co, ci, dy, dx]
    return dense, c_in * h * w


def random_network(seed: int) -> tuple[TTFSNetwork, np.ndarray]:
    """A small conv -> linear -> linear network with mixed-sign weights, ties in time and
    silent inputs: every branch of the closed form is taken."""
    rng = np.random.default_rng(seed)
    horizon = 60
    conv = TTFSLayer("conv", "conv", rng.integers(-3, 6, (2, 1, 3, 3)), 4,
                     rng.integers(5, 40, 2), (1, 5, 5), (2, 3, 3), stride=2, padding=1)
    hidden = TTFSLayer("hidden", "linear", rng.integers(-4, 7, (6, 18)), 4,
                       rng.integers(10, 80, 6), (18,), (6,))
    out = TTFSLayer("out", "linear", rng.integers(-4, 7, (3, 6)), 4, rng.integers(5, 60, 3),
                    (6,), (3,))
    net = TTFSNetwork([conv, hidden, out], time_bits=2, horizon=horizon)
    t_in = rng.integers(0, 8, (12, 25))  # few distinct ticks: many ties
    t_in[rng.random(t_in.shape) < 0.3] = net.silent
    return net, t_in


@pytest.mark.parametrize("seed", range(4))
def test_the_queue_the_closed_form_and_a_tick_by_tick_run_agree_bit_for_bit(seed):
    net, t_in = random_network(seed)
    sim = simulate_ttfs(net, t_in)
    ref = torch_ttfs_forward(net, t_in)
    expected = np.stack(brute_force(net, t_in))
    np.testing.assert_array_equal(-sim.logits, expected)
    np.testing.assert_array_equal(-ref.logits, expected)
    for name in sim.spike_counts:
        np.testing.assert_array_equal(sim.spike_counts[name], ref.spike_counts[name])
    np.testing.assert_array_equal(sim.synaptic_events, ref.synaptic_events)
    np.testing.assert_array_equal(sim.predictions, expected.argmin(1))


def test_a_hand_worked_neuron_fires_where_its_potential_line_crosses():
    # weights 2, -1, 3 at ticks 0, 1, 5; threshold 10. V = 2t up to 1, t + 1 up to 5 (V(5) = 6),
    # then 4t - 14, which reaches 10 at t = 6. With the horizon at 5 it stays silent.
    layer = TTFSLayer("n", "linear", np.array([[2, -1, 3]]), 3, np.array([10]), (3,), (1,))
    t_in = np.array([[0, 1, 5]])
    assert simulate_ttfs(TTFSNetwork([layer], 0, horizon=20), t_in).logits.tolist() == [[-6]]
    assert torch_ttfs_forward(TTFSNetwork([layer], 0, 20), t_in).logits.tolist() == [[-6]]
    silent = simulate_ttfs(TTFSNetwork([layer], 0, horizon=5), t_in)
    assert silent.logits.tolist() == [[-6]] and silent.spike_counts["n"].tolist() == [0]
    # a silent input (tick 21 = horizon + 1) costs nothing; the others reach one neuron each
    quiet = simulate_ttfs(TTFSNetwork([layer], 0, horizon=20), np.array([[0, 1, 21]]))
    assert quiet.synaptic_events.tolist() == [2]


def test_bad_input_ticks_are_refused_with_the_range():
    net, t_in = random_network(0)
    with pytest.raises(DeployError, match=r"input ticks must lie in 0\.\.61"):
        simulate_ttfs(net, t_in + 100)
    with pytest.raises(DeployError, match="integer ticks"):
        simulate_ttfs(net, t_in.astype(float))


def test_the_network_file_round_trips(tmp_path):
    net, t_in = random_network(1)
    net.save(tmp_path / "network.npz")
    loaded = load_network(tmp_path / "network.npz")
    assert isinstance(loaded, TTFSNetwork) and loaded.horizon == net.horizon
    np.testing.assert_array_equal(simulate_ttfs(loaded, t_in).logits,
                                  simulate_ttfs(net, t_in).logits)


# -- the backend on a project -------------------------------------------------------------------
def _project(tmp_path, edit):
    folder = shutil.copytree(examples_dir() / "digits_stdbp", tmp_path / "digits_stdbp",
                             ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    path = folder / "project.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return folder


def _conv_net(data):
    """conv (4 channels) -> flatten -> linear 10: the conv path of the converter."""
    data["graph"]["nodes"] = [
        {"id": "conv", "spec": "wb_stdbp.relpsp_conv", "params": {"channels": 4}},
        {"id": "flat", "spec": "wb_core.flatten", "params": {}},
        {"id": "out", "spec": "wb_stdbp.relpsp_linear", "params": {"out_features": 10}},
    ]
    data["graph"]["edges"] = [["conv", "flat"], ["flat", "out"]]


def test_a_relpsp_conv_project_deploys_bit_exact_and_streams_live_energy(plugin_host,
                                                                         tmp_path):
    session = Session(load_project(_project(tmp_path, _conv_net)), plugin_host.registry)
    trained = session.train(epochs=1).result()  # a few seconds: deploy takes trained weights
    assert trained.status == "ok", trained.error
    events = list(catalog.deploy(session, backend="wb_sim.simulator", out=tmp_path / "out",
                                 limit=24, params={"chunk": 8}))
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "ok", last.error
    report = last.summary["report"]
    assert report["kind"] == "time-to-first-spike"
    assert report["golden"]["bit_exact"] and report["golden"]["samples"] == 24
    assert [layer["kind"] for layer in report["layers"]] == ["conv", "linear"]
    assert report["ops_per_sample"]["synaptic_events"] > 0
    assert report["accuracy"]["integer_vs_float_agreement"] >= 0.9
    assert last.summary["live"]["samples"] == 24
    assert isinstance(load_network(tmp_path / "out" / "network.npz"), TTFSNetwork)


def test_the_alpha_kernel_is_refused_naming_its_node(plugin_host, tmp_path):
    def alpha(data):
        data["graph"]["nodes"][2]["params"]["kernel"] = "alpha"

    session = Session(load_project(_project(tmp_path, alpha)), plugin_host.registry)
    finished = catalog.check_fit(session, backend="wb_sim.simulator").result()
    assert finished.status == "ok", finished.error
    [issue] = finished.summary["fit"]
    assert issue["node"] == "hidden2" and issue["severity"] == "error"
    assert "PSP has no integer form" in issue["message"] and "relpsp" in issue["message"]
