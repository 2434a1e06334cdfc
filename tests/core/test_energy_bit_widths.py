"""The ledger prices a quantised layer at its real bit width (docs/energy.md, "Bit widths").

The bar: a 4-bit variant's ledger total is lower than its FP32 parent's by the table's ratio.
Parent and variant here compute the same function (the parent's weights already lie on the
4-bit grid), so they see the same spikes and only the declared width differs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest
import torch
from wb_core.encoders import DirectEncoder

from workbench.core.build.compile import compile_graph
from workbench.core.build.energy import CostTable, EnergyMeter, accumulator_bits, reprice
from workbench.core.build.quantized import QuantizedTensor, attach
from workbench.core.model.graph import Graph, Node
from workbench.core.model.specs import EnergyModelSpec
from workbench.core.runs.reports import precision_split, precision_text

BITS = 4


@pytest.fixture
def fp32(plugin_host) -> CostTable:
    return CostTable.from_spec(plugin_host.registry.get("wb_core.fp32_45nm"))


def synaptic(net: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in net.named_modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}


def on_grid(module: torch.nn.Module, bits: int) -> QuantizedTensor:
    """The layer's weights rounded to a symmetric ``bits``-bit grid, one scale per channel."""
    w = module.weight.detach()
    top = 2 ** (bits - 1) - 1
    scale = w.abs().flatten(1).amax(1).clamp_min(1e-8) / top
    q = torch.round(w / scale.view(-1, *[1] * (w.dim() - 1))).clamp(-top, top)
    return QuantizedTensor.from_ints(q, scale, bits)


def parent_and_variant(plugin_host) -> tuple[torch.nn.Module, torch.nn.Module]:
    """An FP32 network whose weights lie on the 4-bit grid, and the same network with every
    conv/linear layer declared 4-bit (``quantized.attach``, as the compression plugins do)."""
    torch.manual_seed(0)
    graph = Graph.chain([
        Node("conv1", "wb_core.spiking_conv", {"out_channels": 4}),
        Node("flat", "wb_core.flatten"),
        Node("hidden", "wb_core.spiking_linear", {"out_features": 16}),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])
    parent = compile_graph(graph, plugin_host.registry, (1, 6, 6)).eval()
    with torch.no_grad():
        for module in synaptic(parent).values():
            module.weight.mul_(8.0)  # untrained weights, scaled so that every layer fires
    variant = copy.deepcopy(parent)
    for (_, p_mod), (_, v_mod) in zip(synaptic(parent).items(), synaptic(variant).items(),
                                      strict=True):
        quant = on_grid(p_mod, BITS)
        with torch.no_grad():
            p_mod.weight.copy_(quant.dequantize())  # on the grid, still FP32 for the ledger
        attach(v_mod, quant)
    return parent, variant


def ledger(net: torch.nn.Module, x: torch.Tensor, table: CostTable):
    with torch.no_grad(), EnergyMeter(net) as meter:
        net(x)
    return meter.report(table)


def test_the_tables_are_horowitz_45nm_and_the_rule_between_widths(plugin_host, fp32):
    assert (fp32.e_mac_pj, fp32.e_ac_pj) == (4.6, 0.9)  # FP32 mult 3.7 + add 0.9
    assert [fp32.int_add(b) for b in (8, 32)] == pytest.approx([0.03, 0.1])
    assert [fp32.int_mult(b) for b in (8, 32)] == pytest.approx([0.2, 3.1])
    # adds grow linearly with the width: the same step per bit below and between the points
    per_bit = (fp32.int_add(32) - fp32.int_add(8)) / 24
    assert fp32.int_add(8) - fp32.int_add(BITS) == pytest.approx((8 - BITS) * per_bit)
    # multiplies grow with the width squared (an array multiplier)
    per_square = (fp32.int_mult(32) - fp32.int_mult(8)) / (32 ** 2 - 8 ** 2)
    assert fp32.int_mult(8) - fp32.int_mult(BITS) == pytest.approx((64 - BITS ** 2) * per_square)
    costs = [fp32.int_add(b) + fp32.int_mult(b) for b in range(1, 33)]
    assert all(0 < a < b for a, b in itertools.pairwise(costs))
    # the INT8 table's flat prices are the same rule at 8 bits
    int8 = CostTable.from_spec(plugin_host.registry.get("wb_core.int8_45nm"))
    assert int8.e_ac_pj == pytest.approx(int8.int_add(8))
    assert int8.e_mac_pj == pytest.approx(int8.int_mult(8) + int8.int_add(8))
    assert "ISSCC 2014" in fp32.source and "docs/energy.md" in fp32.source


def test_a_4_bit_variant_costs_less_than_its_fp32_parent_by_the_tables_ratio(plugin_host, fp32):
    parent, variant = parent_and_variant(plugin_host)
    torch.manual_seed(1)
    spikes = torch.bernoulli(torch.full((3, 5, 1, 6, 6), 0.4))  # every layer sees spikes
    before, after = ledger(parent, spikes, fp32), ledger(variant, spikes, fp32)
    assert [(la["name"], la["sops"]) for la in after.layers] == \
        [(lb["name"], lb["sops"]) for lb in before.layers]  # the same spikes, counted the same
    assert all(la["sops"] > 0 and la["macs"] == 0 for la in after.layers)
    assert {la["priced_at"] for la in before.layers} == {"FP32"}
    assert {(la["priced_at"], la["weight_bits"]) for la in after.layers} == {("INT4", 4)}
    ratio = fp32.int_add(BITS) / fp32.e_ac_pj  # every operation an AC: a 4-bit add vs FP32 add
    assert after.total_pj_per_sample == pytest.approx(before.total_pj_per_sample * ratio)
    assert after.total_pj_per_sample < before.total_pj_per_sample / 40


def test_layer_by_layer_a_mac_on_4_bit_weights_is_a_4_bit_multiply_and_add(plugin_host, fp32):
    parent, variant = parent_and_variant(plugin_host)
    torch.manual_seed(2)
    x = DirectEncoder().encode(torch.rand(4, 1, 6, 6), 3)  # real-valued input to conv1
    before, after = ledger(parent, x, fp32), ledger(variant, x, fp32)
    for b, a in zip(before.layers, after.layers, strict=True):
        assert (a["macs"], a["sops"]) == pytest.approx((b["macs"], b["sops"]))
        priced = a["macs"] * (fp32.int_mult(BITS) + fp32.int_add(BITS)) \
            + a["sops"] * fp32.int_add(BITS)
        assert a["pj"] == pytest.approx(priced)
        assert a["pj"] < b["pj"] or b["pj"] == 0
    first = after.layers[0]
    assert first["input"] == "real" and first["macs"] > 0
    assert first["pj"] / before.layers[0]["pj"] == pytest.approx(
        (fp32.int_mult(BITS) + fp32.int_add(BITS)) / fp32.e_mac_pj)


def test_accumulates_can_be_priced_at_the_accumulator_width(plugin_host, fp32):
    _, variant = parent_and_variant(plugin_host)
    wide = dataclasses.replace(fp32, ac_width="accumulator")
    spikes = torch.bernoulli(torch.full((2, 3, 1, 6, 6), 0.5))
    layers = {la["name"]: la for la in ledger(variant, spikes, wide).layers}
    fc = layers["fc"]
    assert fc["fan_in"] == 16  # the hidden layer's 16 outputs
    assert accumulator_bits(BITS, 16) == BITS + 4
    assert fc["priced_at"] == "INT4, 8-bit adds"
    assert fc["e_ac_pj"] == pytest.approx(wide.int_add(8))
    assert layers["conv1.conv"]["fan_in"] == 9  # 1 channel × 3×3 kernel
    assert accumulator_bits(16, 10 ** 6) == 32 and accumulator_bits(32, 4) == 32


def test_repricing_keeps_each_layers_width_and_old_reports_stay_flat(plugin_host, fp32):
    parent, variant = parent_and_variant(plugin_host)
    spikes = torch.bernoulli(torch.full((2, 3, 1, 6, 6), 0.5))
    report = ledger(variant, spikes, fp32).to_dict()
    int8 = CostTable.from_spec(plugin_host.registry.get("wb_core.int8_45nm"))
    repriced = reprice(report, int8)
    assert [la["pj"] for la in repriced["layers"]] == pytest.approx(
        [la["pj"] for la in report["layers"]])  # 4-bit layers cost the same under either table
    assert repriced["precision"] == "INT8" and "int add" in repriced["pricing"]
    # a table without per-width costs (a custom one) prices quantised layers as the rest
    flat = CostTable("custom", "User-defined", 1.0, 0.5, "lab")
    layer = reprice(report, flat)["layers"][0]
    assert (layer["e_ac_pj"], layer["priced_at"]) == (0.5, "FP32")
    # a report saved before widths were priced has no weight_bits: full precision
    old = {**report, "layers": [{k: v for k, v in la.items() if k != "weight_bits"}
                                for la in report["layers"]]}
    assert reprice(old, fp32)["total_pj_per_sample"] == pytest.approx(
        ledger(parent, spikes, fp32).total_pj_per_sample)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("int_add_pj", ((32, 0.1), (8, 0.03)), "int_add_pj"),
    ("int_mult_pj", ((8, 0.2),), "int_mult_pj"),
    ("ac_width", "register", "ac_width"),
    ("mult_exponent", 0, "mult_exponent"),
    ("int_add_pj", ((8, 0.03), (32, 3.0)), "1-bit"),  # steep enough to price 1 bit below 0
])
def test_a_cost_table_with_bad_widths_is_refused_by_name(field, value, needle):
    base = {"int_add_pj": ((8, 0.03), (32, 0.1)), "int_mult_pj": ((8, 0.2), (32, 3.1))}
    spec = EnergyModelSpec(id="t.t", display_name="t", source="s", **{**base, field: value})
    assert any(needle in problem for problem in spec.problems())
    assert EnergyModelSpec(id="t.t", display_name="t", source="s", **base).problems() == []


def test_the_compress_summary_names_the_quantised_and_the_kept_layers():
    after = {"layer_bits": {"conv1.conv": None, "fc2": 4, "fc_out": None}}
    split = precision_split(after, {"full_precision": ["conv1.conv", "fc_out"]},
                            {"keep_first_last": True})
    assert precision_text(split) == ("quantised 1 of 3 layers to 4 bits: fc2; kept full "
                                     "precision: conv1.conv, fc_out (keep_first_last)")
    mixed = {"layer_bits": {"stem": 8, "mid": 1, "head": 8}}
    assert precision_text(precision_split(mixed, {}, {})) == \
        "quantised 3 of 3 layers (1 bit: mid; 8 bits: stem, head)"
    assert precision_text(precision_split({"layer_bits": {"a": None}}, {}, {})) == ""
