"""Tests of the energy ledger (docs/energy.md) against hand counts.

The bar: energy figures agree with a hand count on a tiny network, SOPs = Σ spikes × fan-out,
MACs = the dense count of layers fed real values (once per sample under direct encoding with
``encode_once``), energy = MACs × E_MAC + SOPs × E_AC.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from wb_core.blocks import Conv2d as TimeConv2d
from wb_core.encoders import DirectEncoder

from workbench.core.build.compile import compile_graph
from workbench.core.build.energy import CostTable, EnergyMeter, is_spike_tensor
from workbench.core.build.probes import SpikeProbe
from workbench.core.model.graph import Graph, Node

FP32 = CostTable("t", "t", 4.6, 0.9, "src")


class FixedSpikes(nn.Module):
    """A stand-in neuron (it has ``step`` and ``initial_state``) that emits chosen spikes."""

    def __init__(self, spikes: torch.Tensor) -> None:
        super().__init__()
        self.spikes = spikes

    def initial_state(self, x):
        return None

    def step(self, x, state):
        raise NotImplementedError

    def forward(self, x):
        assert x.shape[:2] == self.spikes.shape[:2]
        return self.spikes.clone()


class TimeConv1d(nn.Conv1d):
    """A time-major Conv1d: ``[T, B, C, L]`` in and out."""

    def forward(self, x):
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def layers_by_name(report):
    return {layer["name"]: layer for layer in report.layers}


def neurons_by_name(report):
    return {n["name"]: n for n in report.neurons}


# Input spikes [T=2, B=2, 4]: sample 0 has 3 spikes, sample 1 has 5.
IN_SPIKES = torch.tensor([
    [[1., 0., 0., 1.], [1., 1., 1., 0.]],   # t = 0: sample 0, sample 1
    [[0., 1., 0., 0.], [0., 0., 1., 1.]],   # t = 1
])
# Hidden spikes [T=2, B=2, 3]: sample 0 has 3 spikes, sample 1 has 1.
HIDDEN_SPIKES = torch.tensor([
    [[1., 0., 0.], [0., 0., 1.]],
    [[0., 1., 1.], [0., 0., 0.]],
])


def _two_layer(hidden: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), hidden, nn.Linear(3, 2))


def test_hand_count_on_a_tiny_network_with_known_spikes():
    model = _two_layer(FixedSpikes(HIDDEN_SPIKES))
    with EnergyMeter(model) as meter:
        model(IN_SPIKES)
    report = meter.report(FP32)
    assert report.samples == 2
    layers = layers_by_name(report)
    assert list(layers) == ["0", "2"]

    # layer 0: (3 + 5) input spikes x fan-out 3, over 2 samples
    first = layers["0"]
    assert first["input"] == "spikes" and first["kind"] == "linear"
    assert first["macs"] == 0
    assert first["sops"] == pytest.approx(8 * 3 / 2)
    assert first["pj"] == pytest.approx(12 * 0.9)
    assert first["firing_rate"] == pytest.approx(8 / 16)

    # layer 2: (3 + 1) hidden spikes x fan-out 2, over 2 samples
    second = layers["2"]
    assert second["input"] == "spikes"
    assert second["macs"] == 0
    assert second["sops"] == pytest.approx(4 * 2 / 2)
    assert second["pj"] == pytest.approx(4 * 0.9)
    assert second["firing_rate"] == pytest.approx(4 / 12)

    neuron = neurons_by_name(report)["1"]
    assert neuron["spikes"] == pytest.approx(4 / 2)
    assert neuron["updates"] == pytest.approx(12 / 2)
    assert neuron["firing_rate"] == pytest.approx(4 / 12)

    assert report.sops_per_sample == pytest.approx(16)
    assert report.macs_per_sample == 0
    assert report.total_pj_per_sample == pytest.approx(16 * 0.9)
    d = report.to_dict()
    assert d["kind"] == "estimate" and d["source"] == "src"
    assert d["sops_per_sample"] == pytest.approx(16)
    assert d["total_pj_per_sample"] == pytest.approx(14.4)
    assert d["neuron_updates_per_sample"] == pytest.approx(6)
    assert d["encode_once"] is True and d["sop_counting"] == "exact"


def test_per_sample_figures_are_the_mean_of_single_sample_counts():
    """B = 2 with different spike counts: the per-sample figure averages the two samples."""
    per_sample = []
    for b in range(2):
        model = _two_layer(FixedSpikes(HIDDEN_SPIKES[:, b:b + 1]))
        with EnergyMeter(model) as meter:
            model(IN_SPIKES[:, b:b + 1])
        report = meter.report(FP32)
        assert report.samples == 1
        per_sample.append([layer["sops"] for layer in report.layers])
    assert per_sample == [[3 * 3, 3 * 2], [5 * 3, 1 * 2]]

    model = _two_layer(FixedSpikes(HIDDEN_SPIKES))
    with EnergyMeter(model) as meter:
        model(IN_SPIKES)
        model(IN_SPIKES)  # a second batch: totals double, samples double, per-sample stays
    report = meter.report(FP32)
    assert report.samples == 4
    assert [layer["sops"] for layer in report.layers] == pytest.approx([12, 4])


def test_hand_count_with_a_real_if_neuron(plugin_host):
    """Fixed weights make the IF neuron's spikes known: n0 copies input 0, n1 copies input 1,
    n2 adds 0.5 per spike on inputs 2 and 3 and fires at 1."""
    neuron = plugin_host.registry.get("wb_core.if").create()
    model = _two_layer(neuron)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1., 0., 0., 0.], [0., 1., 0., 0.],
                                            [0., 0., .5, .5]]))
        model[0].bias.zero_()
    with EnergyMeter(model) as meter, SpikeProbe(model, samples=2) as probe:
        model(IN_SPIKES)
    hidden = probe.records["1"].spikes
    expected = torch.tensor([
        [[1., 0., 0.], [1., 1., 0.]],
        [[0., 1., 0.], [0., 0., 1.]],
    ])
    assert torch.equal(hidden, expected)  # sample 0: 2 spikes, sample 1: 3 spikes
    report = meter.report(FP32)
    layers = layers_by_name(report)
    assert layers["0"]["sops"] == pytest.approx(8 * 3 / 2)
    assert layers["2"]["sops"] == pytest.approx(5 * 2 / 2)
    assert neurons_by_name(report)["1"]["spikes"] == pytest.approx(5 / 2)
    assert report.total_pj_per_sample == pytest.approx((12 + 5) * 0.9)


# ============================================================================================
# Real-valued inputs: MACs


def test_real_valued_linear_input_counts_dense_macs():
    torch.manual_seed(0)
    T, B = 3, 2
    x_static = torch.rand(B, 4) + 0.1
    x_direct = DirectEncoder().encode(x_static, T)  # identical at every step
    x_changing = torch.rand(T, B, 4) + 0.1
    assert not is_spike_tensor(x_direct)

    def count(x, encode_once):
        model = nn.Sequential(nn.Linear(4, 3))
        with EnergyMeter(model, encode_once=encode_once) as meter:
            model(x)
        return layers_by_name(meter.report(FP32))["0"]

    once = count(x_direct, True)
    assert once["input"] == "real" and once["counted_once"] is True
    assert once["macs"] == pytest.approx(4 * 3)  # once per sample, not T times
    assert once["sops"] == 0
    assert once["pj"] == pytest.approx(12 * 4.6)

    every_step = count(x_direct, False)
    assert every_step["counted_once"] is False
    assert every_step["macs"] == pytest.approx(T * 4 * 3)
    assert every_step["pj"] == pytest.approx(T * 12 * 4.6)

    changing = count(x_changing, True)
    assert changing["counted_once"] is False
    assert changing["macs"] == pytest.approx(T * 4 * 3)  # steps differ: T times even so


def test_real_valued_conv_input_counts_dense_macs():
    torch.manual_seed(0)
    T, B = 3, 2
    dense_per_step = 3 * 5 * 5 * 2 * 3 * 3  # C_out * H_out * W_out * C_in * k * k
    x_direct = DirectEncoder().encode(torch.rand(B, 2, 5, 5) + 0.1, T)
    x_changing = torch.rand(T, B, 2, 5, 5) + 0.1

    def count(x, encode_once):
        model = nn.Sequential(TimeConv2d(2, 3, 3, padding=1))
        with EnergyMeter(model, encode_once=encode_once) as meter:
            model(x)
        report = meter.report(FP32)
        assert report.samples == B
        return layers_by_name(report)["0"]

    assert count(x_direct, True)["macs"] == pytest.approx(dense_per_step)
    assert count(x_direct, False)["macs"] == pytest.approx(T * dense_per_step)
    assert count(x_changing, True)["macs"] == pytest.approx(T * dense_per_step)
    assert count(x_direct, True)["kind"] == "conv"


# ============================================================================================
# Exact conv SOPs


def _brute_conv_sops(x: torch.Tensor, c_out: int, k: int, stride: int, padding: int,
                     groups: int = 1) -> float:
    """Loop over every output position; each non-zero input in its receptive field (of the
    output channel's group) costs one AC for each output channel of the group."""
    xs = x.reshape(-1, *x.shape[2:])  # [T*B, C, H, W]
    n, c_in, h, w = xs.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    per_group_in, per_group_out = c_in // groups, c_out // groups
    total = 0
    for i in range(n):
        for oy in range(h_out):
            for ox in range(w_out):
                for g in range(groups):
                    nz = 0
                    for c in range(g * per_group_in, (g + 1) * per_group_in):
                        for ky in range(k):
                            for kx in range(k):
                                iy, ix = oy * stride - padding + ky, ox * stride - padding + kx
                                if 0 <= iy < h and 0 <= ix < w and xs[i, c, iy, ix] != 0:
                                    nz += 1
                    total += nz * per_group_out
    return float(total)


def _brute_spike_fanout(x: torch.Tensor, c_out: int, k: int, stride: int, padding: int) -> float:
    """The same count seen from the inputs: Σ spikes × (outputs each spike drives)."""
    xs = x.reshape(-1, *x.shape[2:])
    _, _, h, w = xs.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    total = 0
    for i, c, iy, ix in (xs != 0).nonzero().tolist():
        drives = sum(
            1 for oy in range(h_out) for ox in range(w_out)
            if 0 <= iy - (oy * stride - padding) < k and 0 <= ix - (ox * stride - padding) < k
        )
        total += drives * c_out
    return float(total)


@pytest.mark.parametrize("stride", [1, 2])
def test_exact_conv_sops_equal_a_brute_force_count(stride):
    torch.manual_seed(stride)
    T, B = 2, 3
    x = (torch.rand(T, B, 2, 6, 6) < 0.3).float()
    assert 0 < float(x.sum()) < x.numel()
    model = nn.Sequential(TimeConv2d(2, 3, 3, stride=stride, padding=1))
    with EnergyMeter(model) as meter:
        out = model(x)
    layer = layers_by_name(meter.report(FP32))["0"]
    brute = _brute_conv_sops(x, 3, 3, stride, 1)
    assert brute == _brute_spike_fanout(x, 3, 3, stride, 1)
    assert layer["input"] == "spikes" and layer["macs"] == 0
    assert layer["sops"] == pytest.approx(brute / B)
    # border positions see fewer inputs: exact is below the rate shortcut for a uniform input
    dense = out.numel() * 2 * 9
    ones = torch.ones_like(x)
    with EnergyMeter(model) as meter:
        model(ones)
    assert layers_by_name(meter.report(FP32))["0"]["sops"] == pytest.approx(
        _brute_conv_sops(ones, 3, 3, stride, 1) / B)
    assert _brute_conv_sops(ones, 3, 3, stride, 1) < dense


def test_exact_grouped_conv_and_conv1d_sops():
    torch.manual_seed(7)
    T, B = 2, 2
    x = (torch.rand(T, B, 4, 5, 5) < 0.4).float()
    model = nn.Sequential(TimeConv2d(4, 6, 3, padding=1, groups=2))
    with EnergyMeter(model) as meter:
        model(x)
    assert layers_by_name(meter.report(FP32))["0"]["sops"] == pytest.approx(
        _brute_conv_sops(x, 6, 3, 1, 1, groups=2) / B)

    x1 = (torch.rand(T, B, 2, 7) < 0.4).float()
    model1 = nn.Sequential(TimeConv1d(2, 3, 3, padding=1))
    with EnergyMeter(model1) as meter:
        model1(x1)
    xs = x1.reshape(-1, 2, 7)
    total = 0  # output o sees inputs o-1..o+1 (clipped at the borders), 3 output channels
    for i in range(xs.shape[0]):
        for o in range(7):
            total += int((xs[i, :, max(o - 1, 0):min(o + 2, 7)] != 0).sum()) * 3
    assert total > 0
    assert layers_by_name(meter.report(FP32))["0"]["sops"] == pytest.approx(total / B)


@pytest.mark.parametrize("stride", [1, 2])
def test_rate_sop_counting_is_firing_rate_times_dense_macs(stride):
    torch.manual_seed(10 + stride)
    T, B = 2, 3
    x = (torch.rand(T, B, 2, 6, 6) < 0.3).float()
    model = nn.Sequential(TimeConv2d(2, 3, 3, stride=stride, padding=1), nn.Flatten(2),
                          nn.Linear(3 * (6 // stride) ** 2, 4))
    with EnergyMeter(model, sop_counting="rate") as meter:
        model(x)
    report = meter.report(FP32)
    assert report.sop_counting == "rate"
    conv = layers_by_name(report)["0"]
    rate = float(x.mean())
    side = (6 + 2 - 3) // stride + 1
    dense_per_sample = T * (3 * side * side) * 2 * 3 * 3  # T * C_out*H_out*W_out * C_in*k*k
    assert conv["firing_rate"] == pytest.approx(rate)
    assert conv["sops"] == pytest.approx(rate * dense_per_sample)
    with EnergyMeter(model, sop_counting="exact") as meter:
        model(x)
    assert layers_by_name(meter.report(FP32))["0"]["sops"] == pytest.approx(
        _brute_conv_sops(x, 3, 3, stride, 1) / B)

    with pytest.raises(ValueError, match="sop_counting"):
        EnergyMeter(model, sop_counting="guess")


# ============================================================================================
# Ternary spikes, hooks


def test_ternary_spikes_count_one_ac_per_nonzero():
    x = torch.tensor([
        [[1., -1., 0., 0., 1.], [0., 0., -1., 0., 0.]],
        [[0., -1., -1., 1., 0.], [0., 0., 0., 0., 0.]],
    ])  # T = 2, B = 2: 7 non-zero entries, 4 of them -1
    assert is_spike_tensor(x)
    assert not is_spike_tensor(x * 2)
    model = nn.Sequential(nn.Linear(5, 4))
    for counting in ("exact", "rate"):
        with EnergyMeter(model, sop_counting=counting) as meter:
            model(x)
        layer = layers_by_name(meter.report(FP32))["0"]
        assert layer["input"] == "spikes"
        assert layer["macs"] == 0
        assert layer["sops"] == pytest.approx(7 * 4 / 2)
        assert layer["pj"] == pytest.approx(14 * 0.9)


def test_hooks_are_removed_on_exit():
    model = _two_layer(FixedSpikes(HIDDEN_SPIKES))
    hooks_before = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    with EnergyMeter(model) as meter:
        model(IN_SPIKES)
        assert any(len(m._forward_hooks) for m in model.modules())
    first = meter.report(FP32).to_dict()
    model(IN_SPIKES)
    model(torch.rand(2, 2, 4))
    second = meter.report(FP32).to_dict()
    assert first == second
    assert meter.samples == 2
    assert [(len(m._forward_hooks), len(m._forward_pre_hooks))
            for m in model.modules()] == hooks_before


# ============================================================================================
# End to end through a compiled graph


def test_energy_of_a_compiled_graph_matches_the_recorded_spikes(plugin_host):
    torch.manual_seed(0)
    graph = Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("h", "wb_core.spiking_linear", {"out_features": 8}),
        Node("fc", "wb_core.linear", {"out_features": 3}),
    ])
    net = compile_graph(graph, plugin_host.registry, (1, 2, 2))
    net.eval()
    T, B = 5, 4
    x = DirectEncoder().encode(torch.rand(B, 1, 2, 2) * 4, T)
    table = CostTable.from_spec(plugin_host.registry.get("wb_core.fp32_45nm"))
    assert (table.e_mac_pj, table.e_ac_pj) == (4.6, 0.9)
    with torch.no_grad(), EnergyMeter(net) as meter, \
            SpikeProbe(net, layers=["h.neuron"], samples=B) as probe:
        out = net(x)
    assert out.shape == (T, B, 3)
    spikes = probe.records["h.neuron"].spikes
    assert spikes.shape == (T, B, 8)
    n_spikes = float(spikes.sum())
    assert 0 < n_spikes < spikes.numel()

    report = meter.report(table)
    assert report.samples == B
    layers = layers_by_name(report)
    assert set(layers) == {"h.fc", "fc"}
    # the encoding layer sees the direct-encoded image: dense MACs, once per sample
    assert layers["h.fc"]["input"] == "real" and layers["h.fc"]["counted_once"] is True
    assert layers["h.fc"]["macs"] == pytest.approx(4 * 8)
    assert layers["h.fc"]["sops"] == 0
    # the read-out sees the hidden spikes: each drives 3 synapses
    assert layers["fc"]["input"] == "spikes" and layers["fc"]["macs"] == 0
    assert layers["fc"]["sops"] == pytest.approx(n_spikes * 3 / B)
    assert layers["fc"]["firing_rate"] == pytest.approx(n_spikes / spikes.numel())
    neuron = neurons_by_name(report)["h.neuron"]
    assert neuron["spikes"] == pytest.approx(n_spikes / B)
    assert neuron["updates"] == pytest.approx(T * 8)
    assert report.total_pj_per_sample == pytest.approx(32 * 4.6 + n_spikes * 3 / B * 0.9)


def test_modules_that_count_their_own_ops_are_in_the_ledger():
    """An attention core reports spike x spike products itself (``count_ops``/``last_ops``)."""

    class Core(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.count_ops = False
            self.last_ops = None

        def forward(self, x):
            if self.count_ops:
                self.last_ops = {"macs": 10.0, "sops": 4.0 * x.shape[1]}
            return x

    net = torch.nn.Sequential(Core())
    with EnergyMeter(net) as meter:
        assert net[0].count_ops is True
        net(torch.ones(2, 3, 5))  # time-major: batch of 3
    assert net[0].count_ops is False
    (layer,) = meter.report(CostTable("t", "t", 4.6, 0.9, "src")).layers
    assert layer["kind"] == "attention"
    assert layer["sops"] == pytest.approx(4.0) and layer["macs"] == pytest.approx(10.0 / 3)
    assert layer["pj"] == pytest.approx(4.0 * 0.9 + 10.0 / 3 * 4.6)


def test_spike_product_ops_by_hand():
    """a = [[1, 0], [1, 1]] (channel 0: 2 spikes, channel 1: 1), b = [[0, 1], [1, 1]] (row 0:
    1 spike, row 1: 2): a @ b has 2*1 + 1*2 = 4 terms with both factors non-zero, out of
    2*2*2 = 8; each factor has 3 of 4 entries non-zero. Ternary -1 counts like 1."""
    from workbench.core.build.energy import spike_product_ops

    a = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, -1.0]])
    assert spike_product_ops(a, b) == {"terms": 4.0, "dense": 8.0, "rate_a": 0.75,
                                       "rate_b": 0.75}
    # batched: a second pair with no spike in a adds 8 dense terms and no exact one
    batched = spike_product_ops(torch.stack([a, torch.zeros(2, 2)]), torch.stack([b, b]))
    assert batched == {"terms": 4.0, "dense": 16.0, "rate_a": 0.375, "rate_b": 0.75}


@pytest.mark.parametrize(("counting", "sops"), [
    # 2 other ACs + the product's 4 exact terms; or + 8 dense terms * 3/4 * 3/4 = 4.5
    ("exact", 6.0),
    ("rate", 6.5),
])
def test_sop_counting_reaches_the_attention_cores_products(counting, sops):
    from workbench.core.build.energy import spike_product_ops

    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0]])

    class Core(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.count_ops = False
            self.last_ops = None

        def forward(self, x):
            if self.count_ops:
                product = spike_product_ops(a, b)
                self.last_ops = {"macs": 0.0, "sops": 2.0 + product["terms"],
                                 "products": [product]}
            return x

    net = torch.nn.Sequential(Core())
    with EnergyMeter(net, sop_counting=counting) as meter:
        net(torch.ones(1, 1, 2))  # one sample
    report = meter.report(CostTable("t", "t", 4.6, 0.9, "src"))
    (layer,) = report.layers
    assert report.sop_counting == counting and report.to_dict()["sop_counting"] == counting
    assert layer["sops"] == pytest.approx(sops, rel=1e-12)
