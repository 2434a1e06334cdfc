"""Tests of the ``wb_q_snn`` plugin: the five unit tests below (docs/q_snn.md), the neuron contract
of the quantised-membrane LIF, the spike-regulation loss on a compiled network, the graph
rewrite, and the compression pass through the real core on a trained digits MLP."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from wb_q_snn.binarize import (
    BinaryWeight,
    EightBitWeight,
    estimator_schedule,
    sign_binarize,
    stem_codes,
    stem_quantize,
    tanh_sign,
    wsdr_binarize,
)
from wb_q_snn.method import weight_layers
from wb_q_snn.neuron import QuantizedLIF, membrane_levels, qlif, quantize_membrane
from wb_q_snn.regulation import QSNNLoss, RateRecorder, spike_regulation, tet_loss
from wb_q_snn.swap import PLAIN_LIF_B, QLIF_ID, input_units, swap_neurons

from workbench.core.build.compile import compile_graph
from workbench.core.build.energy import EnergyMeter, is_neuron_module
from workbench.core.build.info import describe
from workbench.core.model.graph import Graph, Node
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import RunFinished
from workbench.core.runs.session import Session

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def finished(events) -> RunFinished:
    last = None
    for event in events:
        if isinstance(event, RunFinished):
            last = event
    assert last is not None, "the run ended without RunFinished"
    return last


# -- Test 1: WS-DR binarisation -------------------------------------------------------------------
def test_wsdr_channels_have_two_values_with_power_of_two_scale():
    g = gen(1)
    # Channels of very different scale and offset: standardisation must make them alike.
    w = torch.randn(6, 4, 3, 3, generator=g, dtype=F64)
    w = w * torch.tensor([1e-3, 0.1, 1.0, 5.0, 40.0, 0.5], dtype=F64).view(-1, 1, 1, 1)
    w = w + torch.tensor([0.0, 1.0, -2.0, 0.3, 0.0, 7.0], dtype=F64).view(-1, 1, 1, 1)
    wb = wsdr_binarize(w, *estimator_schedule(0, 4))
    for c in range(w.shape[0]):
        values = wb[c].unique()
        assert len(values) == 2
        s = float(values.abs().max())
        assert torch.equal(values, torch.tensor([-s, s], dtype=F64))
        assert float(math.log2(s)).is_integer()
    quant = BinaryWeight(ws_dr=True).freeze(w)
    assert quant.bits == 1 and set(quant.ints.unique().tolist()) == {-1, 1}
    assert torch.allclose(quant.dequantize().to(F64), wb)


def test_sign_of_zero_is_plus_one_and_estimator_gradient():
    w_hat = torch.tensor([-2.0, -0.3, 0.0, 0.4, 1.5], dtype=F64, requires_grad=True)
    k, t = 3.0, 0.7
    out = tanh_sign(w_hat, k, t)
    assert out.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    out.backward(torch.ones_like(out))
    expected = k * t * (1 - torch.tanh(t * w_hat.detach()) ** 2)
    assert torch.allclose(w_hat.grad, expected)


def test_without_wsdr_is_sign_times_mean_abs_with_identity_ste():
    w = torch.randn(5, 7, generator=gen(2), dtype=F64, requires_grad=True)
    wb = sign_binarize(w)
    scale = w.detach().abs().mean(1, keepdim=True)
    assert torch.allclose(wb, scale * torch.where(w >= 0, 1.0, -1.0))
    upstream = torch.randn(5, 7, generator=gen(3), dtype=F64)
    wb.backward(upstream)
    assert torch.equal(w.grad, upstream)  # straight through
    quant = BinaryWeight(ws_dr=False).freeze(w)
    assert torch.allclose(quant.dequantize().to(F64), wb.detach())


# -- Test 2: quantised membrane -------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_membrane_levels_bounded_and_zero_safe(bits):
    u = torch.randn(16, 32, generator=gen(bits), dtype=F64) * 3
    q = quantize_membrane(u, bits)
    assert q.unique().numel() <= 2 ** bits - 1
    assert float(q.abs().max()) <= 1.0
    zero = quantize_membrane(torch.zeros(4, 5), bits)
    assert torch.equal(zero, torch.zeros(4, 5))  # no 0/0
    # the levels are multiples of one step a / (2^(b-1) - 1)
    a = float(torch.tanh(u).abs().max())
    codes = q / (a / membrane_levels(bits))
    assert torch.allclose(codes, codes.round(), atol=1e-9)


def test_neuron_state_is_quantised_every_step():
    neuron = QuantizedLIF(membrane_bits=3)
    x = torch.rand(5, 8, 40, generator=gen(4), dtype=F64) * 1.5
    state = neuron.initial_state(x[0])
    for t in range(x.shape[0]):
        _, state = neuron.step(x[t], state)
        assert state.v.unique().numel() <= 2 ** 3 - 1
        assert float(state.v.abs().max()) <= 1.0


# -- Test 3: spike regulation ---------------------------------------------------------------------
def test_spike_regulation_zero_at_half_and_gradient():
    lam = 5e-3
    assert float(spike_regulation([torch.tensor(0.5)] * 5, lam)) == 0.0
    rates = [torch.tensor(v, dtype=F64, requires_grad=True) for v in (0.1, 0.2, 0.9, 0.35, 0.7)]
    spike_regulation(rates, lam).backward()
    inner = rates[1:-1]
    for r in inner:
        expected = 2 * lam * (r.item() - 0.5) / len(inner)
        assert math.isclose(r.grad.item(), expected, rel_tol=1e-12)
    assert rates[0].grad is None and rates[-1].grad is None  # first and last are not regulated
    assert float(spike_regulation(rates[:2], lam)) == 0.0  # L' empty


# -- Test 4: estimator schedule -------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [4, 300])
def test_estimator_schedule(epochs):
    k0, t0 = estimator_schedule(0, epochs)
    assert math.isclose(t0, 0.1) and math.isclose(k0, 10.0)
    _k_last, t_last = estimator_schedule(epochs - 1, epochs)
    assert math.isclose(t_last, 10 ** (1 - 2 / epochs)) and t_last < 10
    if epochs == 300:
        assert round(t_last, 2) == 9.85
    for e in range(epochs):
        k, t = estimator_schedule(e, epochs)
        assert math.isclose(k, 1 / t) if t < 1 else k == 1.0


# -- Test 5: 8-bit stem/classifier rule -----------------------------------------------------------
def test_eight_bit_rule_codes():
    w = torch.randn(8, 12, generator=gen(5), dtype=F64)
    w[0, 0] = -3 * float(w.max())  # min(w) < -max(w): the code's "max" rule leaves the range
    q, _m = stem_codes(w, "max")
    assert int(q.max()) == 127 and int(q.min()) < -127
    quant = EightBitWeight("max").freeze(w)
    assert quant.bits > 8  # stored wider than 8 bits, exactly
    assert torch.equal(quant.ints, q)
    assert torch.allclose(quant.dequantize().to(F64), stem_quantize(w, "max"), atol=1e-6)

    q_abs, _ = stem_codes(w, "absmax")
    assert int(q_abs.min()) >= -127 and int(q_abs.max()) <= 127
    assert stem_quantize(w, "absmax").unique().numel() <= 255
    assert EightBitWeight("absmax").freeze(w).bits == 8

    balanced = w.clamp(min=-float(w.max()))  # min(w) >= -max(w)
    q_bal, _ = stem_codes(balanced, "max")
    assert int(q_bal.min()) >= -127 and stem_quantize(balanced, "max").unique().numel() <= 255
    assert EightBitWeight("max").freeze(balanced).bits == 8

    w_grad = w.clone().requires_grad_(True)
    stem_quantize(w_grad, "max").sum().backward()
    assert torch.equal(w_grad.grad, torch.ones_like(w))  # identity STE


def test_eight_bit_rule_rejects_nonpositive_max():
    with pytest.raises(ValueError, match="needs > 0"):
        EightBitWeight("max").freeze(-torch.rand(3, 4) - 0.1)


# -- the neuron contract -------------------------------------------------------------------------
def test_qlif_contract():
    neuron = qlif()
    assert is_neuron_module(neuron) and neuron.threshold == 1.0
    x = torch.rand(6, 4, 20, generator=gen(6), dtype=F64) * 2
    out = neuron(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert set(out.unique().tolist()) <= {0.0, 1.0} and out.sum() > 0
    assert torch.equal(neuron(x), out)  # fresh state every call
    state, stepped = neuron.initial_state(x[0]), []
    for t in range(x.shape[0]):
        s, state = neuron.step(x[t], state)
        stepped.append(s)
    assert torch.equal(torch.stack(stepped), out)
    assert neuron.last_membrane is None
    neuron.record_membrane = True
    neuron(x)
    assert neuron.last_membrane.shape == x.shape
    assert torch.equal(neuron.last_membrane[0], x[0])  # u_pre at t = 0 is the input


def test_qlif_surrogate_gradient_reaches_input():
    x = (torch.rand(3, 2, 10, generator=gen(7)) * 2).requires_grad_(True)
    qlif(membrane_bits=4)(x).sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_qlif_rejects_bad_bits():
    with pytest.raises(ValueError, match="membrane_bits"):
        QuantizedLIF(membrane_bits=1)


# -- graph rewrite, rates on a compiled network --------------------------------------------------
def _three_layer_graph() -> Graph:
    return Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("h1", "wb_core.spiking_linear", {"out_features": 24}),
        Node("h2", "wb_core.linear", {"out_features": 24}),
        Node("n2", "wb_core.lif_b"),
        Node("h3", "wb_core.spiking_linear", {"out_features": 24}),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])


def test_swap_neurons_and_spike_regulation_on_compiled_network(plugin_host):
    graph = _three_layer_graph()
    changed = swap_neurons(graph, plugin_host.registry, {"id": QLIF_ID,
                                                         "params": {"membrane_bits": 4}})
    # LIF (A) with tau 2 charges half its input, so theta 1 / (1/2) = 2 keeps the trained units;
    # LIF (B) has input gain 1 and keeps its theta
    assert changed == {"h1.neuron": 2.0, "n2": 1.0, "h3.neuron": 2.0}
    assert graph.node("n2").spec == QLIF_ID
    assert graph.node("n2").params == {"membrane_bits": 4, "theta": 1.0}
    assert graph.node("h1").params["neuron"] == {"id": QLIF_ID,
                                                 "params": {"membrane_bits": 4, "theta": 2.0}}
    torch.manual_seed(0)
    model = compile_graph(graph, plugin_host.registry, (1, 8, 8))
    assert [q for _, q, _ in weight_layers(model)] == ["h1.fc", "h2", "h3.fc", "fc"]
    x = torch.rand(4, 16, 1, 8, 8, generator=gen(8)) * 2
    y = torch.randint(0, 10, (16,), generator=gen(9))
    with RateRecorder(model) as recorder:
        out = model(x)
        assert recorder.names == ["h1.neuron", "n2", "h3.neuron"]
        rates = list(recorder.rates)
        total = QSNNLoss(recorder, 0.5)(out, y, x)
        reg = spike_regulation(rates, 0.5)
        assert reg.item() > 0
        assert torch.allclose(total, tet_loss(out, y) + reg)
        model.zero_grad()
        reg.backward()  # the rate of n2 is in the graph: its input layer gets a gradient
        assert bool(model.layers["h2"].weight.grad.abs().sum() > 0)
        assert model.layers["h3"].fc.weight.grad is None or \
            float(model.layers["h3"].fc.weight.grad.abs().sum()) == 0.0
    with EnergyMeter(model) as meter:  # the energy meter counts qlif layers as neurons
        model(x)
    assert set(meter._neurons) == {"h1.neuron", "n2", "h3.neuron"}


# -- the neuron swap keeps the trained units ------------------------------------------------------
@pytest.mark.parametrize(("choice", "units"), [
    ({"id": "wb_core.lif", "params": {}}, (0.5, 1.0)),  # H = V/2 + X/2
    ({"id": "wb_core.lif", "params": {"tau": 4.0, "v_th": 0.6, "v_reset": 0.2}}, (0.25, 0.6)),
    ({"id": "wb_core.lif_b", "params": {"theta": 0.8}}, (1.0, 0.8)),
    ({"id": QLIF_ID, "params": {}}, (1.0, 1.0)),
])
def test_input_units_of_a_neuron(plugin_host, choice, units):
    spec = plugin_host.registry.get(choice["id"])
    gain, threshold = input_units(spec.create(**spec.check_params(choice["params"])))
    assert math.isclose(gain, units[0], rel_tol=1e-9) and threshold == units[1]


def _conv_bn_graph() -> Graph:
    return Graph.chain([
        Node("c1", "wb_core.spiking_conv", {"out_channels": 6}),  # conv -> BN -> LIF (A)
        Node("c2", "wb_core.spiking_conv", {"out_channels": 6}),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])


def _spikes(model, x) -> dict[str, torch.Tensor]:
    """Every neuron layer's output on ``x``, by module name."""
    out: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _a, y, n=name: out.__setitem__(n, y))
               for name, m in model.named_modules() if is_neuron_module(m)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return out


@pytest.mark.parametrize("neuron", ["plain", "quantised"])
def test_swapped_network_fires_like_the_trained_one(plugin_host, neuron):
    """Weights trained under LIF (A), input gain 1/2, must not drive Q-SNN's gain-1 neuron twice
    as hard: the threshold carries the factor, wherever a batch norm sits."""
    reg = plugin_host.registry
    torch.manual_seed(0)
    original = compile_graph(_conv_bn_graph(), reg, (1, 8, 8))
    g = gen(12)
    for bn in (m for m in original.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        n = bn.num_features  # trained-looking norms, so that both layers fire in eval mode too
        bn.weight.data = 1 + 2 * torch.rand(n, generator=g)
        bn.bias.data = torch.rand(n, generator=g) - 0.5
        bn.running_mean = 0.1 * torch.randn(n, generator=g)
        bn.running_var = 0.02 + 0.2 * torch.rand(n, generator=g)
    x = torch.rand(4, 16, 1, 8, 8, generator=gen(11)) * 3
    choice = (PLAIN_LIF_B if neuron == "plain"
              else {"id": QLIF_ID, "params": {"membrane_bits": 8}})

    def swapped(graph: Graph):
        model = compile_graph(graph, reg, (1, 8, 8))
        model.load_state_dict(original.state_dict(), strict=False)
        return model

    graph = _conv_bn_graph()
    swap_neurons(graph, reg, choice)
    model = swapped(graph)
    unmatched = _conv_bn_graph()  # the same neuron with its own theta 1: the old behaviour
    for node in unmatched.nodes[:2]:
        node.params["neuron"] = choice
    # The plain LIF (B) reproduces LIF (A) at every step, even in training mode where each batch
    # norm normalises with the batch's statistics; the quantised membrane (tanh) only at the first
    # step, which the stored state does not reach yet, so there the norms must not pool the later
    # steps' statistics (eval mode).
    plain = neuron == "plain"
    ref, new, old = (_spikes(m.train(plain), x) for m in (original, model, swapped(unmatched)))
    assert set(ref) == {"layers.c1.neuron", "layers.c2.neuron"}
    steps = slice(None) if plain else slice(0, 1)
    for spikes in ref.values():  # fires (dozens of spikes), and not everywhere
        assert spikes[steps].sum() >= 20 and float(spikes[steps].mean()) < 0.5
    for name in ref:
        assert torch.equal(new[name][steps], ref[name][steps]), name
    assert not torch.equal(old["layers.c1.neuron"][0], ref["layers.c1.neuron"][0])


# -- the compression pass through the core -------------------------------------------------------
@pytest.fixture
def trained_copy(trained_digits_mlp, tmp_path):
    folder = tmp_path / "digits_mlp"
    shutil.copytree(trained_digits_mlp, folder)
    return folder


def test_compress_digits_mlp_workflow(plugin_host, trained_copy, tmp_path):
    spec = plugin_host.registry.get("wb_q_snn.q_snn")
    session = Session(load_project(trained_copy), plugin_host.registry)
    out = tmp_path / "q"
    done = finished(catalog.compress(session, method=spec.id, params={"finetune_epochs": 1},
                                     out=out))
    assert done.status == "ok", done.error + done.traceback
    summary = done.summary
    after, before = summary["after"], summary["before"]
    assert 0.5 < after["accuracy"] <= 1.0  # 10 classes: far above chance after one epoch
    assert after["model_size_bytes"] < before["model_size_bytes"] / 5
    report = summary["report"]
    assert report["binarized"] == ["hidden2.fc"] and report["eight_bit"] == ["hidden1.fc", "fc"]
    assert report["schedule"] == [{"epoch": 0, "k": 10.0, "t": 0.1}]
    assert report["spike_reg_layers"] == []  # two neuron layers: first and last are excluded
    assert report["thresholds"] == {"hidden1.neuron": 2.0, "hidden2.neuron": 2.0}  # LIF (A)
    assert list(report["spike_rates"]["after"]) == ["hidden1.neuron", "hidden2.neuron"]

    reloaded = Session(load_project(out), plugin_host.registry)
    model = reloaded.build()
    neurons = [n.params["neuron"]["id"] for n in reloaded.project.graph.nodes
               if "neuron" in n.params]
    assert neurons == [QLIF_ID, QLIF_ID]
    layers = {layer["name"]: layer for layer in describe(model)["layers"]}
    assert 1 in layers["hidden2"]["bits"]
    assert min(layers["hidden1"]["bits"]) >= 8 and min(layers["fc"]["bits"]) >= 8
    w = model.layers["hidden2"].fc.weight.detach()
    for row in w:
        assert row.abs().unique().numel() == 1 and math.log2(float(row.abs()[0])).is_integer()
    assert load_project(out).weights_path.stat().st_size < \
        load_project(trained_copy).weights_path.stat().st_size / 5
    # the saved project computes exactly what the compression returned
    x = torch.rand(4, 8, 1, 8, 8, generator=gen(10)) * 4
    compressed = session.compressed[1].eval()
    with torch.no_grad():
        assert torch.equal(model.eval()(x), compressed(x))


def _untrained_example(plugin_host) -> Session:
    project = load_project(examples_dir() / "digits_q_snn")
    project.folder = None  # nothing is written into the shipped example
    project.time_steps = 2  # half the cost; what is checked does not depend on T
    project.training.batch_size = 256  # a few large fine-tuning steps
    session = Session(project, plugin_host.registry)
    torch.manual_seed(0)
    session.build(load_saved_weights=False)
    session.weights_loaded = True  # an in-memory network stands for a trained one
    return session


def test_spike_regulation_acts_on_the_digits_q_snn_example(plugin_host):
    """The example has four neuron layers, so the regulation has two to pull towards rate 0.5:
    one epoch with a strong λ_f ends nearer 0.5 there than the same epoch without it."""
    spec = plugin_host.registry.get("wb_q_snn.q_snn")
    session = _untrained_example(plugin_host)  # each pass starts from a copy of its network
    reports = {}
    for lam in (0.0, 10.0):
        done = finished(catalog.compress(session, method=spec.id,
                                         params={"finetune_epochs": 1, "spike_reg": lam,
                                                 "lr": 0.05}, limit=1))
        assert done.status == "ok", done.error + done.traceback
        reports[lam] = done.summary["report"]
    regulated = ["conv2.neuron", "conv3.neuron"]
    assert all(r["spike_reg_layers"] == regulated for r in reports.values())
    rates = {lam: r["spike_rates"] for lam, r in reports.items()}
    assert rates[0.0]["before"] == rates[10.0]["before"]  # the same start

    def distance(lam: float) -> float:
        return sum((rates[lam]["after"][name] - 0.5) ** 2 for name in regulated)

    assert distance(10.0) < distance(0.0) - 0.1


def test_compress_baseline_variant_without_finetune(plugin_host, trained_copy):
    spec = plugin_host.registry.get("wb_q_snn.q_snn")
    session = Session(load_project(trained_copy), plugin_host.registry)
    params = {"finetune_epochs": 0, "ws_dr": False, "stem_scale": "absmax",
              "quantize_membrane": False}
    done = finished(catalog.compress(session, method=spec.id, params=params))
    assert done.status == "ok", done.error + done.traceback
    report = done.summary["report"]
    assert report["neuron"]["id"] == "wb_core.lif_b" and report["estimator"] == "sign_ste"
    assert report["layer_bits"] == {"hidden1.fc": 8, "hidden2.fc": 1, "fc": 8}
    for low, high in report["eight_bit_codes"].values():
        assert -127 <= low and high <= 127
    model = session.compressed[1]
    w = model.layers["hidden2"].fc.weight
    assert torch.allclose(w.abs(), w.abs().mean(1, keepdim=True).expand_as(w))


def test_membrane_bits_zero_is_rejected(plugin_host, trained_copy):
    spec = plugin_host.registry.get("wb_q_snn.q_snn")
    session = Session(load_project(trained_copy), plugin_host.registry)
    done = finished(catalog.compress(session, method=spec.id, params={"membrane_bits": 0}))
    assert done.status == "failed" and done.error_kind == "input"
    assert "membrane_bits" in done.error


def test_network_without_hidden_layer_is_rejected(plugin_host, tiny_project):
    spec = plugin_host.registry.get("wb_q_snn.q_snn")
    session = Session(tiny_project, plugin_host.registry)
    session.build(load_saved_weights=False)
    session.weights_loaded = True  # an in-memory network stands for a trained one
    done = finished(catalog.compress(session, method=spec.id, params={"finetune_epochs": 1},
                                     limit=1))
    assert done.status == "failed" and done.error_kind == "input"
    assert "nothing to binarise" in done.error and "fc" in done.error
