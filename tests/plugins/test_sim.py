"""Tests of ``wb_sim``: the integer conversion, the event-driven simulator (bit for bit against
the dense torch integer reference and a naive per-neuron loop), the work counters, the IR file,
the fit check and the backend run end to end."""

from __future__ import annotations

import copy
import gc
import shutil

import numpy as np
import pytest
import torch
from wb_sim import simulate as sim_mod
from wb_sim.convert import check, input_scale_for, to_integer
from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron
from wb_sim.reference import torch_integer_forward
from wb_sim.simulate import SimResult, energy_pj, int8_table, iter_simulate, simulate

from workbench.core.build.quantized import QuantizedTensor, attach
from workbench.core.data.splits import ArraySplit
from workbench.core.model.errors import DeployError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component, Project
from workbench.core.model.readout import class_scores
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import EnergySample, RunFinished
from workbench.core.runs.session import Session


# -- helpers ----------------------------------------------------------------------------------
def built(folder, host):
    session = Session(load_project(folder), host.registry)
    model = session.build()
    model.eval()
    return session, model


def samples(session, n=None):
    x, y = next(session.data().test.batches(n or len(session.data().test)))
    return x, y.numpy()


def float_predictions(session, model, x):
    with torch.no_grad():
        return class_scores(model(session.encoder()(x))).argmax(-1).numpy()


def convert(session, model, **kw):
    return to_integer(model, time_steps=session.project.time_steps,
                      input_scale=input_scale_for(session.data().train), **kw)


def assert_bit_exact(a: SimResult, b: SimResult):
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.logits, b.logits)
    assert list(a.spike_counts) == list(b.spike_counts)
    for name in a.spike_counts:
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
    np.testing.assert_array_equal(a.synaptic_events, b.synaptic_events)
    np.testing.assert_array_equal(a.dense_macs, b.dense_macs)
    np.testing.assert_array_equal(a.neuron_updates, b.neuron_updates)


def graph_session(host, nodes, **project_kw) -> tuple[Session, torch.nn.Module]:
    project = Project("t", Graph.chain(nodes), **project_kw)
    session = Session(project, host.registry)
    model = session.build(load_saved_weights=False)
    model.eval()
    return session, model


# -- bit exactness and accuracy on the trained examples ---------------------------------------
@pytest.mark.parametrize("bits", [8, 4])
def test_mlp_simulator_equals_torch_integer_and_keeps_accuracy(plugin_host, trained_digits_mlp,
                                                               bits):
    session, model = built(trained_digits_mlp, plugin_host)
    x, y = samples(session)  # all 360 test samples (>= 50)
    net = convert(session, model, weight_bits=bits)
    x_int = net.quantize_input(x.numpy())
    sim = simulate(net, x_int)
    assert_bit_exact(sim, torch_integer_forward(net, x_int))
    assert all(c.mean() > 10 for c in sim.spike_counts.values())  # the network is active
    float_acc = float(np.mean(float_predictions(session, model, x) == y))
    int_acc = float(np.mean(sim.predictions == y))
    assert float_acc > 0.8
    assert abs(int_acc - float_acc) <= 0.03, (bits, int_acc, float_acc)
    assert all(layer.weight_bits <= bits for layer in net.layers)


def test_conv_simulator_equals_torch_integer_and_keeps_accuracy(plugin_host,
                                                                trained_digits_conv):
    session, model = built(trained_digits_conv, plugin_host)
    x, y = samples(session)
    net = convert(session, model)
    assert [layer.pool for layer in net.layers] == [2, 2, 0]
    assert net.layers[2].in_shape == (64 * 2 * 2,)
    x_int = net.quantize_input(x.numpy())
    sim = simulate(net, x_int)
    assert_bit_exact(sim, torch_integer_forward(net, x_int))
    assert all(c.mean() > 10 for c in sim.spike_counts.values())
    float_acc = float(np.mean(float_predictions(session, model, x) == y))
    assert float_acc > 0.8
    assert abs(float(np.mean(sim.predictions == y)) - float_acc) <= 0.03


def test_numpy_path_gives_the_same_integers_as_scipy(plugin_host, trained_digits_conv,
                                                     monkeypatch):
    session, model = built(trained_digits_conv, plugin_host)
    x, _ = samples(session, 40)
    net = convert(session, model)
    x_int = net.quantize_input(x.numpy())
    with_scipy = simulate(net, x_int)
    monkeypatch.setattr(sim_mod, "USE_SCIPY", False)
    assert_bit_exact(simulate(net, x_int), with_scipy)


# -- the IR semantics, against a naive per-neuron loop ----------------------------------------
def naive(net: IntegerNetwork, x_int: np.ndarray) -> tuple[list[int], dict[str, int]]:
    """The ir.py arithmetic for ONE sample, neuron by neuron in plain Python integers."""
    state = {i: {} for i in range(len(net.layers))}
    logits = [0] * net.n_classes
    counts = {layer.name: 0 for layer in net.layers if layer.neuron}
    x = [int(v) for v in np.asarray(x_int).reshape(-1)]
    for _ in range(net.time_steps):
        inp = x
        for i, layer in enumerate(net.layers):
            w = layer.weight
            if layer.kind == "linear":
                outs = [sum(int(w[c, j]) * inp[j] for j in range(len(inp)))
                        for c in range(w.shape[0])]
                shape = (w.shape[0],)
            else:
                c_in, h, wd = layer.in_shape
                co, ho, wo = layer.out_shape
                k, s, p = w.shape[2], layer.stride, layer.padding
                outs = []
                for c in range(co):
                    for oy in range(ho):
                        for ox in range(wo):
                            acc = 0
                            for ci in range(c_in):
                                for dy in range(k):
                                    for dx in range(k):
                                        yy, xx = oy * s - p + dy, ox * s - p + dx
                                        if 0 <= yy < h and 0 <= xx < wd:
                                            acc += int(w[c, ci, dy, dx]) * inp[(ci * h + yy) * wd
                                                                              + xx]
                            outs.append(acc)
                shape = layer.out_shape
            per_channel = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            current = [(a << layer.shift) + int(layer.bias[n // per_channel])
                       for n, a in enumerate(outs)]
            if layer.neuron is None:
                logits = [lg + c for lg, c in zip(logits, current)]
                continue
            spikes = []
            for n, cur in enumerate(current):
                v = state[i].get(n, 0)
                k_leak = layer.neuron.leak_shift
                h_ = v + cur if k_leak is None else v - (v >> k_leak) + cur  # Python >> floors
                thr = int(layer.neuron.threshold[n // per_channel])
                spike = 1 if h_ >= thr else (-1 if layer.neuron.ternary and h_ <= -thr else 0)
                state[i][n] = (0 if spike else h_) if layer.neuron.reset == "hard" else \
                    h_ - thr * spike
                spikes.append(spike)
            counts[layer.name] += sum(abs(sp) for sp in spikes)
            if layer.pool:
                c, hh, ww = shape
                pool = layer.pool
                spikes = [max(spikes[(ch * hh + py * pool + a) * ww + px * pool + b]
                              for a in range(pool) for b in range(pool))
                          for ch in range(c) for py in range(hh // pool)
                          for px in range(ww // pool)]
            inp = spikes
    return logits, counts


def random_network(seed: int) -> IntegerNetwork:
    """A small random integer network with the less common options: stride 2, no padding,
    soft reset, no leak, leak shift 0 and 3, an odd map cropped by the pool."""
    rng = np.random.default_rng(seed)
    stride, pad = (2, 0) if seed % 2 else (1, 1)
    h_out = (7 + 2 * pad - 3) // stride + 1
    conv = IntLayer("conv", "conv", rng.integers(-7, 8, (3, 2, 3, 3)), 4,
                    rng.integers(-40, 60, 3), 4, (2, 7, 7), (3, h_out, h_out),
                    IntNeuron(rng.integers(60, 200, 3), [None, 0, 3][seed % 3],
                              ["hard", "soft"][seed % 2]),
                    stride=stride, padding=pad, pool=2)
    d = 3 * (h_out // 2) ** 2
    hidden = IntLayer("hidden", "linear", rng.integers(-7, 8, (5, d)), 4, rng.integers(-20, 20, 5),
                      3, (d,), (5,), IntNeuron(rng.integers(10, 40, 5), 1, "soft"))
    out = IntLayer("out", "linear", rng.integers(-7, 8, (4, 5)), 4, rng.integers(-5, 5, 4), 2,
                   (5,), (4,), None)
    return IntegerNetwork([conv, hidden, out], time_steps=3, input_scale=0.25, input_bits=3)


@pytest.mark.parametrize("seed", range(4))
def test_simulator_follows_the_ir_arithmetic(seed):
    net = random_network(seed)
    x_int = np.random.default_rng(100 + seed).integers(0, 8, (5, 2, 7, 7))
    x_int[0] = 0
    sim = simulate(net, x_int)
    assert_bit_exact(sim, torch_integer_forward(net, x_int))
    for b in range(len(x_int)):
        logits, counts = naive(net, x_int[b])
        assert sim.logits[b].tolist() == logits
        assert {k: int(v[b]) for k, v in sim.spike_counts.items()} == counts
    assert sim.predictions.tolist() == np.argmax(sim.logits, axis=1).tolist()
    chunks = list(iter_simulate(net, x_int, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert_bit_exact(SimResult.concat(chunks), sim)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_ternary_spikes_add_and_subtract_weights(reset):
    """Ternary neurons (docs/energy.md: |s| = 1 is one accumulate) in the simulator, the
    torch reference and the plain-Python arithmetic alike; a max-pool of them is refused."""
    rng = np.random.default_rng(7)
    hidden = IntLayer("hidden", "linear", rng.integers(-7, 8, (6, 10)), 4,
                      rng.integers(-30, 30, 6), 2, (10,), (6,),
                      IntNeuron(rng.integers(20, 60, 6), 1, reset, ternary=True))
    second = IntLayer("second", "linear", rng.integers(-7, 8, (5, 6)), 4,
                      rng.integers(-10, 10, 5), 3, (6,), (5,),
                      IntNeuron(rng.integers(10, 40, 5), None, reset, ternary=True))
    out = IntLayer("out", "linear", rng.integers(-7, 8, (3, 5)), 4, rng.integers(-5, 5, 3), 1,
                   (5,), (3,), None)
    net = IntegerNetwork([hidden, second, out], time_steps=4, input_scale=1.0, input_bits=3)
    x_int = rng.integers(0, 8, (12, 10))
    sim = simulate(net, x_int)
    assert_bit_exact(sim, torch_integer_forward(net, x_int))
    for b in range(len(x_int)):
        logits, counts = naive(net, x_int[b])
        assert sim.logits[b].tolist() == logits
        assert {k: int(v[b]) for k, v in sim.spike_counts.items()} == counts
    np.testing.assert_array_equal(sim.synaptic_events, sim.spike_counts["hidden"] * 5
                                  + sim.spike_counts["second"] * 3)
    # negative spikes really happen here (an identity read-out sums them), so the test
    # exercises the subtraction
    probe = IntLayer("probe", "linear", np.eye(6, dtype=np.int64), 2, np.zeros(6, dtype=np.int64),
                     0, (6,), (6,), None)
    first_only = IntegerNetwork([copy.deepcopy(hidden), probe], time_steps=4, input_scale=1.0,
                                input_bits=3)
    assert (simulate(first_only, x_int).logits < 0).any()
    pooled = copy.deepcopy(net)
    pooled.layers[0].pool = 2
    with pytest.raises(DeployError, match="ternary"):
        simulate(pooled, x_int)


# -- the work counters follow the spikes ------------------------------------------------------
def test_work_is_proportional_to_spikes(plugin_host, trained_digits_mlp):
    session, model = built(trained_digits_mlp, plugin_host)
    x, _ = samples(session, 50)
    net = convert(session, model)
    x_int = net.quantize_input(x.numpy())
    sim = simulate(net, x_int)
    widths = [layer.weight.shape[0] for layer in net.layers]
    np.testing.assert_array_equal(sim.dense_macs,
                                  (x_int.reshape(50, -1) != 0).sum(1) * widths[0])
    np.testing.assert_array_equal(sim.synaptic_events, sim.spike_counts["hidden1"] * widths[1]
                                  + sim.spike_counts["hidden2"] * widths[2])
    assert (sim.neuron_updates == (256 + 256) * net.time_steps).all()
    # Zero input: no multiply at all; whatever still happens is driven by the biases alone.
    zero = simulate(net, np.zeros_like(x_int[:3]))
    assert (zero.dense_macs == 0).all()
    np.testing.assert_array_equal(zero.synaptic_events, zero.spike_counts["hidden1"] * widths[1]
                                  + zero.spike_counts["hidden2"] * widths[2])
    # Without biases a silent input stays silent: no spikes, no events, zero logits.
    silent = copy.deepcopy(net)
    for layer in silent.layers:
        layer.bias = np.zeros_like(layer.bias)
    quiet = simulate(silent, np.zeros_like(x_int[:3]))
    assert (quiet.synaptic_events == 0).all() and (quiet.logits == 0).all()
    assert all((c == 0).all() for c in quiet.spike_counts.values())


def test_conv_events_count_only_the_taps_inside_the_map():
    rng = np.random.default_rng(0)
    layer = IntLayer("c", "conv", rng.integers(-3, 4, (4, 1, 3, 3)), 3, np.zeros(4, np.int64), 0,
                     (1, 5, 5), (4, 5, 5), IntNeuron(np.full(4, 10 ** 6), None), padding=1)
    out = IntLayer("o", "linear", rng.integers(-3, 4, (2, 100)), 3, np.zeros(2, np.int64), 0,
                   (100,), (2,), None)
    net = IntegerNetwork([layer, out], time_steps=2, input_scale=1.0)
    x = np.zeros((2, 1, 5, 5), np.int64)
    x[0, 0, 0, 0] = 3  # a corner: 2 x 2 taps land inside the map
    x[0, 0, 2, 2] = 1  # the centre: all 3 x 3
    x[1, 0, 0, 2] = 5  # an edge: 2 x 3
    sim = simulate(net, x)
    assert sim.dense_macs.tolist() == [(4 + 9) * 4, 6 * 4]
    assert (sim.synaptic_events == 0).all()  # the threshold is never reached: no spikes
    assert_bit_exact(sim, torch_integer_forward(net, x))


def test_energy_is_an_estimate_from_the_counts(plugin_host):
    result = SimResult(np.zeros(2, np.int64), np.zeros((2, 3), np.int64), {},
                       np.array([100, 0]), np.array([10, 4]), np.array([1, 1]))
    table = int8_table(plugin_host.registry)
    assert (table.e_mac_pj, table.e_ac_pj) == (0.23, 0.03)
    assert "Horowitz" in table.source
    np.testing.assert_allclose(energy_pj(result), [10 * 0.23 + 100 * 0.03, 4 * 0.23])
    np.testing.assert_allclose(energy_pj(result, {"e_mac_pj": 1.0, "e_ac_pj": 2.0}), [210, 4])


# -- conversion -------------------------------------------------------------------------------
def test_input_scale_uses_the_grid_of_the_data(plugin_host):
    session = Session(Project("t", Graph.chain([Node("flat", "wb_core.flatten")])),
                      plugin_host.registry)
    train = session.data().train
    assert input_scale_for(train) == 1.0 / 16.0
    x, _ = samples(session, 30)
    net = IntegerNetwork([], 1, input_scale_for(train))
    np.testing.assert_array_equal(net.quantize_input(x.numpy()) / 16.0, x.numpy())
    floats = ArraySplit(np.array([[0.1], [2.55], [1.0]], np.float32), np.zeros(3))
    assert input_scale_for(floats, 8) == pytest.approx(2.55 / 255)
    assert input_scale_for(floats, 4) == pytest.approx(2.55 / 15)


LIF = "wb_core.lif"


@pytest.mark.parametrize("nodes, node, phrase", [
    ([Node("conv", "wb_core.spiking_conv", {"out_channels": 4}), Node("pool", "wb_core.avg_pool"),
      Node("flat", "wb_core.flatten"), Node("fc", "wb_core.linear")], "pool", "average pooling"),
    ([Node("flat", "wb_core.flatten"),
      Node("hidden", "wb_core.spiking_linear",
           {"out_features": 8, "neuron": {"id": LIF, "params": {"v_reset": 0.2}}}),
      Node("fc", "wb_core.linear")], "hidden", "v_reset"),
    ([Node("flat", "wb_core.flatten"),
      Node("hidden", "wb_core.spiking_linear",
           {"out_features": 8, "neuron": {"id": LIF, "params": {"tau": 3.0}}}),
      Node("fc", "wb_core.linear")], "hidden", "1 - 2^-k"),
    ([Node("pool", "wb_core.max_pool"), Node("flat", "wb_core.flatten"),
      Node("fc", "wb_core.linear")], "pool", "needs spikes"),
    ([Node("flat", "wb_core.flatten"), Node("hidden", "wb_core.spiking_linear",
                                            {"out_features": 10})], "hidden", "read-out"),
])
def test_fit_check_names_the_node(plugin_host, nodes, node, phrase):
    session, model = graph_session(plugin_host, nodes)
    issues = check(model)
    assert issues and issues[0].node == node and phrase in issues[0].message, issues
    with pytest.raises(DeployError) as caught:
        convert(session, model)
    assert caught.value.where == f"node {node!r}" and phrase in caught.value.message


def test_supported_neurons_map_to_shifts_and_thresholds(plugin_host):
    session, model = graph_session(plugin_host, [
        Node("flat", "wb_core.flatten"),
        Node("a", "wb_core.spiking_linear",
             {"out_features": 8, "neuron": {"id": LIF, "params": {"tau": 4.0, "reset": "soft"}}}),
        Node("b", "wb_core.spiking_linear",
             {"out_features": 8, "neuron": {"id": "wb_core.lif_b", "params": {"lam": 0.75}}}),
        Node("c", "wb_core.spiking_linear", {"out_features": 8, "neuron": "wb_core.if"}),
        Node("drop", "wb_core.dropout"), Node("fc", "wb_core.linear"),
        Node("mean", "wb_core.mean_readout")])
    assert check(model) == []
    net = convert(session, model, frac_bits=6)
    a, b, c, _ = net.layers
    assert (a.neuron.leak_shift, a.neuron.reset) == (2, "soft")
    assert (b.neuron.leak_shift, c.neuron.leak_shift) == (2, None)
    # threshold = round(v_th / |alpha| * 2^f), alpha = input gain * weight scale (* input step)
    w = model.layers["c"].fc.weight.detach().double()
    alpha = w.abs().amax(1).numpy() / 127
    np.testing.assert_array_equal(c.neuron.threshold, np.rint(1.0 / alpha * 64).astype(np.int64))
    # LIF B fires at H > theta: one unit more
    wb = model.layers["b"].fc.weight.detach().double().abs().amax(1).numpy() / 127
    np.testing.assert_array_equal(b.neuron.threshold, np.rint(1.0 / wb * 64).astype(np.int64) + 1)
    assert any("H >= theta + 1" in note for note in net.notes)


def spikes_per_layer(model, x_encoded, nodes):
    seen = {}
    hooks = [model.layers[n].register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o.detach())) for n in nodes]
    with torch.no_grad():
        model(x_encoded)
    for h in hooks:
        h.remove()
    return {n: seen[n].flatten(2).sum((0, 2)).numpy() for n in nodes}


def test_conversion_folds_batch_norm_with_negative_gamma(plugin_host):
    """Untrained net with BN (some gammas negative), LIF B soft reset and IF: at 16 bits the
    integer spike counts follow the float network's, layer by layer."""
    torch.manual_seed(0)
    session, model = graph_session(plugin_host, [
        Node("conv", "wb_core.spiking_conv",
             {"out_channels": 6, "neuron": {"id": "wb_core.lif_b",
                                             "params": {"reset": "soft", "theta": 0.5}}}),
        Node("pool", "wb_core.max_pool"), Node("flat", "wb_core.flatten"),
        Node("hidden", "wb_core.spiking_linear",
             {"out_features": 24, "batch_norm": True, "neuron": "wb_core.if"}),
        Node("fc", "wb_core.linear")])
    with torch.no_grad():
        for bn in (model.layers["conv"].bn, model.layers["hidden"].bn):
            n = bn.num_features
            bn.weight.copy_(torch.linspace(-1.5, 2.0, n))
            bn.bias.copy_(torch.linspace(-0.2, 0.6, n))
            bn.running_mean.copy_(torch.randn(n) * 0.1)
            bn.running_var.copy_(torch.rand(n) * 0.5 + 0.5)
    x, _ = samples(session, 60)
    net = convert(session, model, weight_bits=16, frac_bits=16)
    assert any("negated" in note for note in net.notes)
    sim = simulate(net, net.quantize_input(x.numpy()))
    floats = spikes_per_layer(model, session.encoder()(x), ["conv", "hidden"])
    for name in ("conv", "hidden"):
        assert floats[name].sum() > 60 * 5  # both layers fire
        same = np.mean(sim.spike_counts[name] == floats[name])
        assert same >= 0.9, (name, same)
        assert abs(sim.spike_counts[name].sum() / floats[name].sum() - 1) < 0.01


def test_quantised_weights_are_used_as_they_are(plugin_host, trained_digits_mlp):
    session, model = built(trained_digits_mlp, plugin_host)
    model = copy.deepcopy(model)
    fc1, head = model.layers["hidden1"].fc, model.layers["fc"]
    w = fc1.weight.detach()
    scale = w.abs().amax(1) / 7
    q1 = torch.clamp(torch.round(w / scale[:, None]), -8, 7)
    attach(fc1, QuantizedTensor.from_ints(q1, scale, 4))
    wh = head.weight.detach()
    s_head = wh.abs().max() / 3
    q_head = torch.clamp(torch.round(wh / s_head), -4, 3)
    attach(head, QuantizedTensor.from_ints(q_head, s_head.repeat(wh.shape[0]), 3))
    net = convert(session, model, weight_bits=8)
    np.testing.assert_array_equal(net.layers[0].weight, q1.numpy().astype(np.int64))
    np.testing.assert_array_equal(net.layers[2].weight, q_head.numpy().astype(np.int64))
    assert (net.layers[0].weight_bits, net.layers[1].weight_bits, net.layers[2].weight_bits) \
        == (4, 8, 3)
    assert sum("as they are" in note for note in net.notes) == 2
    x, y = samples(session, 120)
    x_int = net.quantize_input(x.numpy())
    sim = simulate(net, x_int)
    assert_bit_exact(sim, torch_integer_forward(net, x_int))
    float_acc = np.mean(float_predictions(session, model, x) == y)
    assert abs(np.mean(sim.predictions == y) - float_acc) <= 0.05


def test_integer_network_file_round_trip(plugin_host, trained_digits_conv, tmp_path):
    session, model = built(trained_digits_conv, plugin_host)
    net = convert(session, model, name="digits_conv")
    loaded = IntegerNetwork.load(net.save(tmp_path / "net.npz"))
    assert (loaded.time_steps, loaded.input_scale, loaded.input_bits, loaded.name,
            loaded.notes) == (net.time_steps, net.input_scale, net.input_bits, "digits_conv",
                              net.notes)
    for a, b in zip(net.layers, loaded.layers):
        assert (a.name, a.kind, a.shift, a.in_shape, a.out_shape, a.stride, a.padding, a.pool,
                a.weight_bits) == (b.name, b.kind, b.shift, b.in_shape, b.out_shape, b.stride,
                                   b.padding, b.pool, b.weight_bits)
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        if a.neuron:
            np.testing.assert_array_equal(a.neuron.threshold, b.neuron.threshold)
            assert (a.neuron.leak_shift, a.neuron.reset) == (b.neuron.leak_shift, b.neuron.reset)
    x, _ = samples(session, 20)
    x_int = net.quantize_input(x.numpy())
    assert_bit_exact(simulate(loaded, x_int), simulate(net, x_int))


@pytest.fixture
def counted_tables(monkeypatch):
    """Every weight table built from now on, by layer kind, in a cache of its own."""
    built = []

    class Counting(sim_mod._Tables):
        def __init__(self, weight, kind):
            built.append(kind)
            super().__init__(weight, kind)

    monkeypatch.setattr(sim_mod, "_Tables", Counting)
    monkeypatch.setattr(sim_mod, "_TABLES", {})
    return built


def test_weight_tables_are_built_once_per_network(counted_tables):
    net = random_network(1)
    x_int = np.random.default_rng(7).integers(0, 8, (5, 2, 7, 7))
    first = simulate(net, x_int)
    assert counted_tables == ["conv", "linear", "linear"]
    assert_bit_exact(simulate(net, x_int), first)
    assert_bit_exact(SimResult.concat(list(iter_simulate(net, x_int, chunk=2))), first)
    assert len(counted_tables) == 3  # a second call and three chunks built nothing
    # a layer given a new weight array gets new tables, and the results follow them
    net.layers[1].weight = -net.layers[1].weight
    assert_bit_exact(simulate(net, x_int), torch_integer_forward(net, x_int))
    assert len(counted_tables) == 4
    # an edit in place is seen once the network's tables are dropped
    net.layers[2].weight[:] = 1
    sim_mod.forget(net)
    assert_bit_exact(simulate(net, x_int), torch_integer_forward(net, x_int))
    assert len(counted_tables) == 7
    # the cache holds no reference to the weights: it empties with the network
    del net
    gc.collect()
    assert sim_mod._TABLES == {}


def test_sums_beyond_int32_take_the_int64_table(counted_tables):
    """One read-out weight of 2^20 on an input of 2^12: each step adds 2^32, which wraps in
    int32; over 2 steps the logit is exactly 2^33."""
    out = IntLayer("out", "linear", np.array([[1 << 20], [-3]]), 22, np.zeros(2, np.int64), 0,
                   (1,), (2,), None)
    net = IntegerNetwork([out], time_steps=2, input_scale=1.0, input_bits=13)
    sim = simulate(net, np.array([[1 << 12], [1]]))
    assert sim.logits.tolist() == [[1 << 33, -3 * (1 << 13)], [1 << 21, -6]]


def test_simulator_refuses_bad_input():
    net = random_network(0)
    with pytest.raises(DeployError, match="integer inputs"):
        simulate(net, np.full((1, 2, 7, 7), 0.5))
    with pytest.raises(DeployError, match="98 values"):
        simulate(net, np.zeros((1, 3, 7, 7), np.int64))


# -- the backend ------------------------------------------------------------------------------
def test_backend_deploys_checks_golden_and_streams_live_energy(plugin_host, trained_digits_mlp,
                                                               tmp_path):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    spec = plugin_host.registry.get("wb_sim.simulator")
    assert spec is not None and spec.kind == "simulator"
    session = Session(load_project(folder), plugin_host.registry)
    events = list(catalog.deploy(session, backend=spec.id, params={"chunk": 8},
                                 out=tmp_path / "out", limit=60))
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "ok", last.error
    report = last.summary["report"]
    assert report["golden"]["bit_exact"] and report["golden"]["samples"] == 60
    assert abs(report["accuracy"]["integer"] - report["accuracy"]["float"]) <= 0.05
    assert report["ops_per_sample"]["synaptic_events"] > 0
    assert report["energy"]["kind"] == "estimate" and report["energy"]["pj_per_sample"] > 0
    live = [e for e in events if isinstance(e, EnergySample) and e.report.get("live")]
    assert [e.report["samples"] for e in live] == [8, 16, 24, 32, 40, 48, 56, 60]
    assert {e.report["kind"] for e in live} == {"estimate"}
    assert "Horowitz" in live[-1].report["source"]
    summary = last.summary["live"]
    assert summary["samples"] == 60 and summary["accuracy"] == report["accuracy"]["integer"]
    net = IntegerNetwork.load(tmp_path / "out" / "network.npz")
    session2, _model = built(folder, plugin_host)
    x, _ = samples(session2, 60)
    expected = energy_pj(simulate(net, net.quantize_input(x.numpy())), int8_table())
    assert summary["mean_pj"] == pytest.approx(float(expected.mean()))
    assert live[-1].report["total_pj"] == pytest.approx(float(expected.sum()))


def test_a_rate_encoded_project_runs_on_the_spikes_made_on_the_host(plugin_host,
                                                                     trained_digits_mlp,
                                                                     tmp_path):
    """An encoder that makes spikes (here Bernoulli rate coding) feeds them to the integer
    network step by step: layer 0 accumulates input spikes, no multiply is done."""
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    session = Session(load_project(folder), plugin_host.registry)
    session.project.encoder = Component("wb_core.rate")
    spec = plugin_host.registry.get("wb_sim.simulator")
    last = catalog.deploy(session, backend=spec.id, out=tmp_path / "out", limit=10).result()
    assert last.status == "ok", last.error
    report = last.summary["report"]
    assert report["input_kind"] == "spikes" and report["golden"]["bit_exact"]
    assert report["ops_per_sample"]["dense_macs"] == 0
    assert report["ops_per_sample"]["synaptic_events"] > 0
    assert IntegerNetwork.load(tmp_path / "out" / "network.npz").input_kind == "spikes"
