"""Tests of the ``wb_qp_snn`` plugin (docs/qp_snn.md): the quantisers, the SVS and L1 scores, the
keep rule, the structured-pruning surgery, the size rule, and the four compression passes
run through ``workbench.core.runs.catalog`` on the trained digits conv project.

The numbered sections are the invariants listed under Tests in docs/qp_snn.md; residual
networks, the ResNet node, the ratio list and invariant 7 are in test_qp_snn_residual.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn
from wb_qp_snn import quantizers as qz
from wb_qp_snn.scores import keep_count, keep_indices, l1_scores, map_rank, svs_scores
from wb_qp_snn.size import size_bytes, size_mb
from wb_qp_snn.surgery import find_prunable, prune_network

from workbench.core.build.compile import compile_graph
from workbench.core.build.info import describe
from workbench.core.model.graph import Graph, Node
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.runs import catalog
from workbench.core.runs.compress import measure
from workbench.core.runs.events import RunFinished
from workbench.core.runs.session import Session

F64 = torch.float64
METHOD_IDS = ("wb_qp_snn.rescaw", "wb_qp_snn.uniform", "wb_qp_snn.svs_prune",
              "wb_qp_snn.l1_prune")


def gaussian(*shape: int, std: float = 0.05, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen) * std


def distinct_per_channel(w: torch.Tensor) -> list[int]:
    return [int(torch.unique(row).numel()) for row in w.reshape(w.shape[0], -1)]


# ============================================================================================
# Registration


def test_specs_are_registered_and_importing_the_plugin_needs_no_torch(plugin_host):
    kinds = {sid: plugin_host.registry.get(sid).kind for sid in METHOD_IDS}
    assert kinds == {"wb_qp_snn.rescaw": "quantize", "wb_qp_snn.uniform": "quantize",
                     "wb_qp_snn.svs_prune": "prune", "wb_qp_snn.l1_prune": "prune"}
    rescaw = plugin_host.registry.get("wb_qp_snn.rescaw")
    assert rescaw.defaults()["bits"] == 4 and rescaw.defaults()["gamma"] == "mean"
    assert {p.name for p in plugin_host.registry.get("wb_qp_snn.uniform").params}.isdisjoint(
        {"gamma", "granularity"})
    assert {p.name for p in plugin_host.registry.get("wb_qp_snn.l1_prune").params}.isdisjoint(
        {"batches", "eps"})
    code = "import sys, wb_qp_snn; wb_qp_snn.wb_compressions(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ============================================================================================
# 1. Level count and arithmetic progression without 0


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("gamma", ["mean", "max", "percentile"])
def test_rescaw_levels_are_an_odd_progression_per_channel(bits, gamma):
    w = gaussian(6, 4, 3, 3, seed=bits)
    quant = qz.quantize(w, bits, gamma=gamma)
    s = 2 ** bits - 1
    assert quant.bits == bits and quant.q_step == 2 and quant.q_zero == -s
    w_hat = quant.dequantize()
    g = qz.scale_of(w, gamma)
    assert torch.allclose(quant.scale, g / s)
    for c in range(w.shape[0]):
        values = torch.unique(w_hat[c]).double()
        assert values.numel() <= 2 ** bits
        k = (values / g[c].double() + 1) * s / 2  # γ_c(−1 + 2k/s)  =>  k
        assert torch.allclose(k, k.round(), atol=1e-4)
        assert bool(((k.round() >= 0) & (k.round() <= s)).all())
        assert not bool((values == 0).any())
    odd = quant.ints
    assert bool((odd % 2 != 0).all())  # q = 2k − s is odd: zero is not a level
    # the fake-quantised forward equals the frozen weights
    assert torch.allclose(qz.rescaw(w, bits, gamma=gamma), w_hat, atol=1e-7)


def test_gamma_options_and_granularity():
    w = gaussian(5, 3, 3, 3, seed=1)
    rows = w.reshape(5, -1)
    assert torch.allclose(qz.scale_of(w, "mean"), rows.abs().mean(1))
    assert torch.allclose(qz.scale_of(w, "max"), rows.abs().amax(1))
    x = 0.99
    expected = torch.maximum(torch.quantile(rows, 1 - x, dim=1).abs(),
                             torch.quantile(rows, x, dim=1).abs())
    assert torch.allclose(qz.scale_of(w, "percentile", percentile=x), expected)
    layer = qz.scale_of(w, "mean", "layer")
    assert torch.allclose(layer, torch.full((5,), float(w.abs().mean())))
    # with γ = max |W| nothing is clipped: the extreme weight sits on the outer level
    quant = qz.quantize(w, 4, gamma="max")
    assert torch.allclose(quant.dequantize().abs().amax((1, 2, 3)),
                          rows.abs().amax(1))
    # an all-zero channel stays finite
    w[2] = 0
    assert bool(torch.isfinite(qz.quantize(w, 4).dequantize()).all())


def test_vanilla_uniform_is_rescaw_with_unit_gamma():
    w = gaussian(4, 8, seed=2, std=0.6)
    quant = qz.quantize(w, 3, method="uniform")
    s = 7
    expected = 2 * torch.round(s / 2 * (w.clamp(-1, 1) + 1)) / s - 1  # vanilla
    assert torch.allclose(quant.dequantize(), expected, atol=1e-6)
    assert torch.allclose(quant.scale, torch.full((4,), 1 / s))
    assert torch.allclose(qz.uniform(w, 3), expected, atol=1e-6)


def test_wide_and_narrow_bit_widths():
    w = gaussian(3, 10, seed=3)
    one = qz.quantize(w, 1)
    assert set(one.ints.unique().tolist()) <= {-1, 1}
    wide = qz.quantize(w, 32)
    assert wide.codes.max() < 2 ** 32
    # at 32 bits every weight inside [−γ, γ] is reproduced to float32 precision
    g = qz.scale_of(w)[:, None]
    inside = w.abs() <= g
    assert torch.allclose(wide.dequantize()[inside], w[inside], atol=1e-6)
    with pytest.raises(ValueError, match="bits"):
        qz.quantize(w, 33)


# ============================================================================================
# 2. Utilisation vs vanilla on Gaussian weights


def test_rescaw_uses_all_levels_where_vanilla_uses_few():
    w = gaussian(16, 64, 3, 3, std=0.05, seed=4)
    for bits, vanilla_max in ((2, 2), (4, 4)):
        res = distinct_per_channel(qz.quantize(w, bits).dequantize())
        van = distinct_per_channel(qz.quantize(w, bits, method="uniform").dequantize())
        assert all(n == 2 ** bits for n in res)
        assert max(van) <= vanilla_max
    res8 = torch.tensor(distinct_per_channel(qz.quantize(w, 8).dequantize()))
    van8 = torch.tensor(distinct_per_channel(qz.quantize(w, 8, method="uniform").dequantize()))
    assert bool((res8 >= 4 * van8).all())
    assert 150 <= int(res8.min()) and int(van8.max()) <= 45  # observed ≈171–196 vs 35–38
    used = qz.levels_used(qz.quantize(w, 8))
    assert torch.equal(used, res8)


# ============================================================================================
# 3. Straight-through estimators


def test_paper_ste_is_clipped_and_code_ste_divides_by_gamma():
    w = gaussian(4, 2, 3, 3, seed=5).requires_grad_(True)
    upstream = torch.randn(w.shape, generator=torch.Generator().manual_seed(9))
    g = qz.scale_of(w)[:, None, None, None]
    outside = (w.detach() / g).abs() > 1
    assert bool(outside.any()) and bool((~outside).any())

    qz.rescaw(w, 4, ste="paper").backward(upstream)
    assert bool((w.grad[outside] == 0).all())
    assert torch.equal(w.grad[~outside], upstream[~outside])

    w.grad = None
    qz.rescaw(w, 4, ste="code").backward(upstream)
    assert torch.allclose(w.grad, upstream / g)

    w.grad = None  # vanilla: γ = 1, clipped at |W| = 1
    big = (w.detach() * 40).requires_grad_(True)
    qz.uniform(big, 2, ste="paper").backward(upstream)
    assert torch.equal(big.grad, upstream * (big.detach().abs() <= 1))


def test_fake_quantize_parametrization_trains_latent_weights_and_freezes():
    conv = nn.Conv2d(2, 4, 3)
    qz.fake_quantize(conv, 2)
    latent = conv.parametrizations.weight.original
    assert len(torch.unique(conv.weight[0])) <= 4
    conv(torch.randn(1, 2, 5, 5)).sum().backward()
    assert latent.grad is not None
    qz.freeze(conv, 2)
    assert not hasattr(conv, "parametrizations")
    assert conv.weight_bits == 2
    assert torch.equal(conv.weight.detach(), conv.weight_quant.dequantize())


# ============================================================================================
# 4. SVS invariants


def test_map_rank_invariants():
    assert int(map_rank(torch.zeros(6, 5))) == 0
    row = torch.tensor([0.25, 0.0, 1.0, 0.5, 0.75])
    assert int(map_rank(row.expand(6, 5).clone())) == 1
    assert int(map_rank(torch.eye(6, 5))) == 5
    assert int(map_rank(torch.eye(4, 7))) == 4
    gen = torch.Generator().manual_seed(0)
    maps = (torch.rand(20, 4, 6, 7, generator=gen) < 0.3).double().mean(1)  # averaged spikes
    ranks = map_rank(maps)
    assert bool(((ranks >= 0) & (ranks <= 6)).all())
    rows, cols = torch.randperm(6, generator=gen), torch.randperm(7, generator=gen)
    assert torch.equal(map_rank(maps[:, rows][:, :, cols]), ranks)
    # eps decides what counts as significant
    assert int(map_rank(torch.diag(torch.tensor([1.0, 1e-3, 0.0])), eps=1e-2)) == 1


def test_svs_scores_average_the_rank_over_samples():
    spikes = torch.zeros(2, 2, 3, 4, 4)  # [T, B, C, H, W]
    spikes[:, 0, 1] = torch.eye(4)  # sample 0, channel 1: rank 4
    spikes[0, 1, 1, 0] = 1.0  # sample 1, channel 1: one row at t = 0 -> rank 1
    spikes[:, :, 2, :, 0] = 1.0  # channel 2: one column -> rank 1
    assert torch.equal(svs_scores(spikes), torch.tensor([0.0, 2.5, 1.0], dtype=F64))
    with pytest.raises(ValueError):
        svs_scores(torch.zeros(2, 3, 4, 4))


def test_keep_rule_floor_ties_and_order():
    assert [keep_count(n, r) for n, r in ((64, 0.1), (128, 0.3), (256, 0.3), (128, 0.6),
                                          (512, 0.6), (128, 0.35), (256, 0.75))] == \
        [57, 89, 179, 51, 204, 83, 64]
    scores = torch.tensor([1.0, 3.0, 1.0, 2.0, 1.0, 3.0])
    assert keep_indices(scores, 0.5).tolist() == [1, 3, 5]
    assert keep_indices(scores, 1 / 3).tolist() == [1, 3, 4, 5]  # tie at 1.0: highest index kept
    assert keep_indices(torch.ones(5), 0.4).tolist() == [2, 3, 4]
    assert keep_indices(torch.ones(3), 0.9).tolist() == []
    w = torch.zeros(3, 2, 2)
    w[0] = -2.0
    w[2] = 0.5
    assert torch.equal(l1_scores(w), torch.tensor([8.0, 0.0, 2.0], dtype=F64))


# ============================================================================================
# 5. Structured pruning equals zeroing the kernels (plain nets, eval mode)

INPUT = (2, 8, 8)


def small_graph(*, flat_bn: bool = False) -> Graph:
    nodes = [
        Node("c1", "wb_core.conv2d", {"out_channels": 6, "bias": False}),
        Node("b1", "wb_core.batch_norm"),
        Node("n1", "wb_core.lif"),
        Node("p1", "wb_core.max_pool"),
        Node("c2", "wb_core.spiking_conv", {"out_channels": 8}),
        Node("p2", "wb_core.avg_pool"),
        Node("f", "wb_core.flatten"),
    ]
    if flat_bn:
        nodes.append(Node("b3", "wb_core.batch_norm"))
    nodes.append(Node("fc", "wb_core.linear", {"out_features": 5}))
    return Graph.chain(nodes)


def build(graph: Graph, host) -> nn.Module:
    torch.manual_seed(0)
    model = compile_graph(graph, host.registry, INPUT).double()
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():  # BN with non-trivial statistics and affine parameters
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) * 2.0)
    return model.eval()


def inputs() -> torch.Tensor:
    return torch.rand(4, 4, *INPUT, generator=torch.Generator().manual_seed(2), dtype=F64) * 3


def zero_kernels(model: nn.Module, keep: dict[str, torch.Tensor]) -> nn.Module:
    """The reference for pruning: conv weights and BN γ, β of the removed kernels set to 0."""
    pairs = {"c1": (model.layers["c1"], model.layers["b1"]),
             "c2": (model.layers["c2"].conv, model.layers["c2"].bn)}
    with torch.no_grad():
        for node, (conv, bn) in pairs.items():
            drop = torch.ones(conv.weight.shape[0], dtype=torch.bool)
            drop[keep[node]] = False
            conv.weight[drop] = 0
            bn.weight[drop] = 0
            bn.bias[drop] = 0
    return model


def test_pruning_equals_zeroing_removed_kernels(plugin_host):
    lookup = plugin_host.registry
    graph = small_graph()
    model = build(graph, plugin_host)
    plans, skipped = find_prunable(graph, model, lookup, prune_last_conv=True)
    assert [p.name for p in plans] == ["c1", "c2"] and not skipped
    c1, c2 = plans
    assert (c1.members, c1.carriers, c1.readers, c1.spike_units) == (
        ["c1"], ["b1", "n1", "p1"], ["c2"], {"c1": "n1"})
    assert (c2.carriers, c2.readers, c2.flatten, c2.positions) == (["p2", "f"], ["fc"], "f", 4)
    keep = {"c1": torch.tensor([0, 2, 3, 5]), "c2": torch.tensor([1, 2, 4, 7])}
    pruned, new_graph = prune_network(
        model, graph, keep, {p.name: p for p in plans},
        lambda g: compile_graph(g, lookup, INPUT).double())
    assert new_graph.node("c1").params["out_channels"] == 4
    assert new_graph.node("c2").params["out_channels"] == 4
    assert graph.node("c1").params["out_channels"] == 6  # the input graph is untouched
    assert pruned.layers["c2"].conv.weight.shape == (4, 4, 3, 3)
    assert pruned.layers["fc"].weight.shape == (5, 16)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())

    x = inputs()
    with torch.no_grad():
        reference = zero_kernels(model, keep)(x)
        got = pruned.eval()(x)
        first = pruned.layers["n1"](pruned.layers["b1"](pruned.layers["c1"](x)))
        second = pruned.layers["c2"](pruned.layers["p1"](first))
    assert float(first.mean()) > 0.05 and float(second.mean()) > 0.05  # the kept kernels fire
    assert float(reference.std()) > 0
    assert torch.allclose(got, reference, atol=1e-10, rtol=0)
    assert not pruned.layers["c2"].bn.running_var.equal(model.layers["c2"].bn.running_var[:4])
    assert torch.equal(pruned.layers["c2"].bn.running_var,
                       model.layers["c2"].bn.running_var[keep["c2"]])


def test_pruning_keeps_quantised_codes_and_slices_flattened_batch_norm(plugin_host):
    lookup = plugin_host.registry
    graph = small_graph(flat_bn=True)
    model = build(graph, plugin_host)
    qz.freeze(model.layers["c2"].conv, 3)
    qz.freeze(model.layers["fc"], 4)
    plans, _ = find_prunable(graph, model, lookup, prune_last_conv=True)
    assert plans[1].carriers == ["p2", "f", "b3"]
    keep = {"c1": torch.tensor([1, 4]), "c2": torch.tensor([0, 5, 6])}
    pruned, _ = prune_network(model, graph, keep, {p.name: p for p in plans},
                              lambda g: compile_graph(g, lookup, INPUT).double())
    old, new = model.layers["c2"].conv.weight_quant, pruned.layers["c2"].conv.weight_quant
    assert new.bits == 3
    assert torch.equal(new.codes, old.codes[keep["c2"]][:, keep["c1"]])
    assert torch.equal(new.scale, old.scale[keep["c2"]])
    cols = torch.tensor([0, 1, 2, 3, 20, 21, 22, 23, 24, 25, 26, 27])  # channels × 2×2 positions
    assert torch.equal(pruned.layers["fc"].weight_quant.codes,
                       model.layers["fc"].weight_quant.codes[:, cols])
    assert torch.equal(pruned.layers["b3"].running_mean, model.layers["b3"].running_mean[cols])
    assert torch.equal(pruned.layers["fc"].weight.detach(),
                       pruned.layers["fc"].weight_quant.dequantize().double())


# ============================================================================================
# 6. Size accounting (the size rule of docs/wb_core.md)

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_cifar10() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 10))


def test_vgg16_size_and_its_scaling_with_bits():
    model = vgg16_cifar10()
    assert sum(p.numel() for p in model.parameters()) == 14_719_818
    assert abs(size_mb(model) - 58.88) <= 0.02
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    quantised = sum(c.weight.numel() for c in convs[1:])  # first conv and classifier stay FP32
    assert quantised == 14_708_736
    sizes = []
    for bits in (8, 4, 2):
        for conv in convs[1:]:
            qz.freeze(conv, bits)
        sizes.append(size_bytes(model))
        assert sizes[-1] == ((14_719_818 - quantised) * 32 + quantised * bits) / 8
    assert sizes[0] > sizes[1] > sizes[2]
    assert round(sizes[1] / 1e6, 2) == 7.40


# ============================================================================================
# Workflows through workbench.core.runs.catalog


def run(session: Session, spec, params: dict, out: Path | None = None) -> RunFinished:
    events = list(catalog.compress(session, method=spec.id, params=params, out=out))
    last = events[-1]
    assert isinstance(last, RunFinished)
    return last


def session_for(folder: Path, host) -> Session:
    return Session(load_project(folder), host.registry)


@pytest.fixture
def conv_project(trained_digits_conv, tmp_path) -> Path:
    folder = tmp_path / "digits_conv"
    shutil.copytree(trained_digits_conv, folder)
    return folder


def reload(folder: Path, host) -> tuple[Session, nn.Module]:
    session = session_for(folder, host)
    return session, session.build()


def test_rescaw_4_bit_project_reloads_packed(plugin_host, conv_project, tmp_path):
    spec = plugin_host.registry.get("wb_qp_snn.rescaw")
    out = tmp_path / "q4"
    done = run(session_for(conv_project, plugin_host), spec, {"bits": 4, "finetune_epochs": 1},
               out)
    assert done.status == "ok", done.error
    report = done.summary["report"]
    assert report["full_precision"] == ["conv1.conv", "fc"]
    assert [(r["layer"], r["bits"]) for r in report["layers"]] == [("conv2.conv", 4)]
    assert report["layers"][0]["levels_used_mean"] > 12  # ReScaW uses (nearly) all 16 levels

    session, model = reload(out, plugin_host)
    bits = {layer["name"]: layer["bits"] for layer in describe(model)["layers"]}
    assert bits["conv2"] == [4, 32]  # 4-bit kernels, FP32 batch norm
    assert bits["conv1"] == [32] and bits["fc"] == [32]
    quant = model.layers["conv2"].conv.weight_quant
    assert quant.bits == 4 and torch.equal(model.layers["conv2"].conv.weight.detach(),
                                           quant.dequantize())
    with safe_open(str(load_project(out).weights_path), framework="pt") as handle:
        keys = set(handle.keys())
        meta = json.loads(handle.metadata()["quantized"])
    assert "layers.conv2.conv.weight.q_codes" in keys
    assert "layers.conv2.conv.weight" not in keys and "layers.conv1.conv.weight" in keys
    assert meta == {"layers.conv2.conv.weight": {"bits": 4, "shape": [64, 32, 3, 3],
                                                 "q_step": 2, "q_zero": -15}}
    assert load_project(out).weights_path.stat().st_size < \
        load_project(conv_project).weights_path.stat().st_size
    after = done.summary["after"]
    assert after["model_size_bytes"] < done.summary["before"]["model_size_bytes"]
    assert measure(model, session)["accuracy"] == after["accuracy"]
    assert session.project.compression[-1]["method"] == "wb_qp_snn.rescaw"


def test_svs_prune_half_shrinks_the_graph_and_reloads(plugin_host, conv_project, tmp_path):
    spec = plugin_host.registry.get("wb_qp_snn.svs_prune")
    out = tmp_path / "p50"
    done = run(session_for(conv_project, plugin_host), spec,
               {"ratio": 0.5, "finetune_epochs": 1, "batches": 2}, out)
    assert done.status == "ok", done.error
    (layer,) = done.summary["report"]["layers"]
    assert (layer["node"], layer["width_before"], layer["width_after"]) == ("conv1", 32, 16)
    assert len(layer["kept"]) == 16 and layer["kept"] == sorted(layer["kept"])
    assert 0 <= layer["scores"]["min"] <= layer["scores"]["max"] <= 8  # 8×8 maps: rank ≤ 8
    assert "conv2" in done.summary["report"]["not_pruned"]

    session, model = reload(out, plugin_host)
    assert session.project.graph.node("conv1").params["out_channels"] == 16
    assert session.project.graph.node("conv2").params["out_channels"] == 64
    assert describe(model)["params"] < done.summary["before"]["params"]
    assert describe(model)["params"] == done.summary["after"]["params"]
    assert measure(model, session)["accuracy"] == done.summary["after"]["accuracy"]


def test_quantise_then_prune_stays_quantised(plugin_host, conv_project, tmp_path):
    registry = plugin_host.registry
    first = run(session_for(conv_project, plugin_host), registry.get("wb_qp_snn.rescaw"),
                {"bits": 4, "finetune_epochs": 0}, tmp_path / "q4")
    assert first.status == "ok", first.error
    done = run(session_for(tmp_path / "q4", plugin_host), registry.get("wb_qp_snn.l1_prune"),
               {"ratio": 0.25, "prune_last_conv": True, "finetune_epochs": 1},
               tmp_path / "q4p")
    assert done.status == "ok", done.error
    report = done.summary["report"]
    assert [(r["node"], r["width_after"]) for r in report["layers"]] == [("conv1", 24),
                                                                          ("conv2", 48)]
    assert report["quantized_layers"] == {"conv2.conv": 4}
    assert report["requantized_with"]["method"] == "rescaw"
    session, model = reload(tmp_path / "q4p", plugin_host)
    quant = model.layers["conv2"].conv.weight_quant
    assert quant.bits == 4 and tuple(quant.codes.shape) == (48, 24, 3, 3)
    assert len(session.project.compression) == 2
    assert measure(model, session)["accuracy"] == done.summary["after"]["accuracy"]


def test_uniform_quantisation_without_fine_tuning(plugin_host, conv_project):
    done = run(session_for(conv_project, plugin_host), plugin_host.registry.get(
        "wb_qp_snn.uniform"), {"bits": 2, "finetune_epochs": 0, "keep_first_last": False})
    assert done.status == "ok", done.error
    layers = done.summary["report"]["layers"]
    assert [r["layer"] for r in layers] == ["conv1.conv", "conv2.conv", "fc"]
    assert all(r["levels_used_mean"] <= 4 for r in layers)
    assert done.summary["after"]["bits"] == {"conv1": 2, "conv2": 2, "fc": 2}


@pytest.mark.parametrize("bits", [0, 33])
def test_bits_out_of_range_are_rejected(plugin_host, conv_project, bits):
    done = run(session_for(conv_project, plugin_host),
               plugin_host.registry.get("wb_qp_snn.rescaw"), {"bits": bits})
    assert done.status == "failed" and done.error_kind == "input"
    assert "bits" in done.error


@pytest.mark.parametrize("ratio", [0.0, 1.0, 0.99])
def test_ratio_out_of_range_is_rejected(plugin_host, conv_project, ratio):
    done = run(session_for(conv_project, plugin_host),
               plugin_host.registry.get("wb_qp_snn.svs_prune"), {"ratio": ratio})
    assert done.status == "failed" and done.error_kind == "input"
    assert "parameter 'ratio'" in done.error


def test_pruning_an_mlp_says_it_needs_convolutions(plugin_host, tmp_path):
    folder = tmp_path / "mlp"
    shutil.copytree(examples_dir() / "digits_mlp", folder)
    session = session_for(folder, plugin_host)
    session.build(load_saved_weights=False)
    session.save_weights()  # untrained weights are enough to reach the method's check
    done = run(session_for(folder, plugin_host), plugin_host.registry.get("wb_qp_snn.l1_prune"),
               {})
    assert done.status == "failed" and done.error_kind == "input"
    assert "convolution" in done.error and "no convolution layer" in done.error


def test_only_the_last_conv_points_at_prune_last_conv(plugin_host, tmp_path):
    folder = tmp_path / "one_conv"
    shutil.copytree(examples_dir() / "digits_conv", folder)
    project = load_project(folder)
    graph = project.graph
    graph.nodes = [n for n in graph.nodes if n.id not in ("conv2", "pool2")]
    graph.edges = [("conv1", "pool1"), ("pool1", "flat"), ("flat", "fc")]
    save_project(project, folder)
    session = session_for(folder, plugin_host)
    session.build(load_saved_weights=False)
    session.save_weights()
    done = run(session_for(folder, plugin_host),
               plugin_host.registry.get("wb_qp_snn.svs_prune"), {})
    assert done.status == "failed" and "parameter 'prune_last_conv'" in done.error


def test_untrained_project_is_refused(plugin_host, tmp_path):
    folder = tmp_path / "fresh"
    shutil.copytree(examples_dir() / "digits_conv", folder)
    (folder / "weights.safetensors").unlink(missing_ok=True)
    done = run(session_for(folder, plugin_host), plugin_host.registry.get("wb_qp_snn.rescaw"),
               {})
    assert done.status == "failed" and "not trained" in done.error
