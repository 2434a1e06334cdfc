"""Residual pruning in ``wb_qp_snn`` (docs/qp_snn.md, Structured pruning): convs whose outputs
meet at a residual add lose the same channels, option-A shortcuts follow the pruned widths, the
ResNet node, the per-group ratio list, and invariant 7 (pruned ResNet20 widths and sizes) on
what the plugin's pruning produces.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from wb_qp_snn import quantizers as qz
from wb_qp_snn.pruning import group_ratios
from wb_qp_snn.resnet import OptionA
from wb_qp_snn.scores import keep_indices, l1_scores
from wb_qp_snn.size import size_bytes, size_mb
from wb_qp_snn.surgery import find_prunable, prune_network, unit_module

from workbench.core.build.compile import compile_graph
from workbench.core.model.errors import CompileError, ProjectError
from workbench.core.model.graph import Graph, Node
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.runs import catalog
from workbench.core.runs.compress import measure
from workbench.core.runs.events import RunFinished
from workbench.core.runs.session import Session

F64 = torch.float64
DIGITS = (1, 8, 8)
QP_RESNET20 = {"stem_width": 64, "stage_widths": "128,256,512"}  # the paper's widths


def resnet_graph(**params) -> Graph:
    return Graph.chain([Node("net", "wb_qp_snn.resnet", params)])


def build(graph: Graph, host, shape=DIGITS) -> nn.Module:
    """Compiled in float64, eval mode, batch norms with non-trivial statistics."""
    torch.manual_seed(0)
    model = compile_graph(graph, host.registry, shape).double()
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=gen) * 2.0)
    return model.eval()


def inputs(shape=DIGITS) -> torch.Tensor:
    return torch.rand(3, 4, *shape, generator=torch.Generator().manual_seed(2), dtype=F64) * 3


def masked(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """The reference for pruning a residual net: each listed module's output with the removed
    channels (``masks[name]`` = the kept ones) set to 0, the rest of the network unchanged."""
    for name, kept in masks.items():

        def hook(_module, _inputs, out, kept=kept):
            removed = torch.ones(out.shape[2], dtype=torch.bool)
            removed[kept] = False
            out = out.clone()
            out[:, :, removed] = 0
            return out

        model.get_submodule(name).register_forward_hook(hook)
    return model


def prune(model, graph, host, keep, plans, shape=DIGITS):
    return prune_network(model, graph, keep, {p.name: p for p in plans},
                         lambda g: compile_graph(g, host.registry, shape).double())


# ============================================================================================
# The option-A shortcut and the ResNet node


def test_option_a_subsamples_then_pads_in_front_and_behind():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(1, 2, 3, 4, 4)
    wider = OptionA(3, 6, stride=2)(x)  # 3 more channels: 1 in front, 2 behind
    expected = torch.zeros(1, 2, 6, 2, 2)
    expected[:, :, 1:4] = x[:, :, :, ::2, ::2]
    assert torch.equal(wider, expected)
    narrower = OptionA(5, 2)(torch.arange(5.0).reshape(1, 1, 5, 1, 1))  # 3 fewer: crop 2 + 1
    assert narrower.flatten().tolist() == [2.0, 3.0]
    assert torch.equal(OptionA(3, 3)(x), x) and OptionA(3, 3).identity


def test_resnet20_node_builds_on_digits_and_has_the_papers_size(plugin_host):
    model = compile_graph(resnet_graph(), plugin_host.registry, DIGITS)
    out = model(torch.rand(2, 5, *DIGITS))
    assert tuple(out.shape) == (2, 5, 10)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 20  # ResNet20: stem, 9 blocks × 2 convs, classifier
    # QP-SNN's ResNet20 on CIFAR-100: 17.10 M parameters, 68.4 MB in FP32 (BN γ, β counted)
    big = compile_graph(resnet_graph(**QP_RESNET20, classes=100), plugin_host.registry,
                        (3, 32, 32))
    assert round(sum(p.numel() for p in big.parameters()) / 1e6, 2) == 17.10
    assert round(size_mb(big), 1) == 68.4


def test_bad_resnet_widths_name_the_parameter(plugin_host):
    with pytest.raises(CompileError, match="stage_widths"):
        compile_graph(resnet_graph(stage_widths="16,x"), plugin_host.registry, DIGITS)
    with pytest.raises(CompileError, match="inner_widths lists 2 widths"):
        compile_graph(resnet_graph(inner_widths="4,4"), plugin_host.registry, DIGITS)


# ============================================================================================
# Groups: convs meeting at a residual add share one selection


def test_resnet_groups_in_network_order(plugin_host):
    graph = resnet_graph(stem_width=6, stage_widths="8,12", blocks=2)
    model = compile_graph(graph, plugin_host.registry, DIGITS)
    plans, skipped = find_prunable(graph, model, plugin_host.registry)
    b = "net.blocks."
    assert [p.members for p in plans] == [
        ["net.stem"],  # option-A shortcut 6 -> 8: the stem is a group of its own
        [b + "s1b1.conv1"],
        [b + "s1b1.conv2", b + "s1b2.conv2"],  # stage-1 outputs meet at the adds
        [b + "s1b2.conv1"],
        [b + "s2b1.conv1"],
        [b + "s2b2.conv1"],
    ]
    assert plans[2].spike_units == {b + "s1b1.conv2": b + "s1b1.neuron",
                                    b + "s1b2.conv2": b + "s1b2.neuron"}
    assert set(plans[2].resize) == {b + "s1b1.conv2", b + "s1b2.conv2", b + "s1b1.shortcut",
                                    b + "s1b2.shortcut"}
    assert set(skipped) == {b + "s2b1.conv2", b + "s2b2.conv2"}  # the last stage: not pruned
    assert all("prune_last_conv" in why for why in skipped.values())
    # with the stem as wide as stage 1, the first shortcut is the identity: one group
    same = resnet_graph(stem_width=8, stage_widths="8,12", blocks=2)
    plans, _ = find_prunable(same, compile_graph(same, plugin_host.registry, DIGITS),
                             plugin_host.registry)
    assert plans[0].members == ["net.stem", b + "s1b1.conv2", b + "s1b2.conv2"]


def test_pruned_identity_resnet_equals_masking_the_removed_channels(plugin_host):
    """One stage, identity shortcuts only: removing a group's channels gives the logits of the
    unpruned network whose neurons in that group have the removed channels silenced."""
    graph = resnet_graph(stem_width=6, stage_widths="6", blocks=2)
    model = build(graph, plugin_host)
    plans, skipped = find_prunable(graph, model, plugin_host.registry, prune_last_conv=True)
    assert not skipped and [p.name for p in plans] == [
        "net.stem", "net.blocks.s1b1.conv1", "net.blocks.s1b2.conv1"]
    keep = {"net.stem": torch.tensor([0, 2, 5]), "net.blocks.s1b1.conv1": torch.tensor([1, 4]),
            "net.blocks.s1b2.conv1": torch.tensor([0, 1, 3, 5])}
    pruned, new_graph = prune(model, graph, plugin_host, keep, plans)
    assert new_graph.node("net").params["stem_width"] == 3
    assert new_graph.node("net").params["stage_widths"] == "3"
    assert new_graph.node("net").params["inner_widths"] == "2,4"
    stem_weight = pruned.layers["net"].stem.conv.weight
    assert torch.equal(stem_weight, model.layers["net"].stem.conv.weight[keep["net.stem"]])
    # the shared selection: every conv of the group keeps the same output channels
    for block in ("s1b1", "s1b2"):
        got = pruned.layers["net"].blocks.get_submodule(block).conv2.conv.weight
        old = model.layers["net"].blocks.get_submodule(block).conv2.conv.weight
        inner = keep[f"net.blocks.{block}.conv1"]
        assert torch.equal(got, old[keep["net.stem"]][:, inner])
    x = inputs()
    with torch.no_grad():
        got = pruned.eval()(x)
        reference = masked(model, {
            "layers.net.stem": keep["net.stem"],
            "layers.net.blocks.s1b1.neuron": keep["net.stem"],
            "layers.net.blocks.s1b2.neuron": keep["net.stem"],
            "layers.net.blocks.s1b1.conv1": keep["net.blocks.s1b1.conv1"],
            "layers.net.blocks.s1b2.conv1": keep["net.blocks.s1b2.conv1"]})(x)
        fired = pruned.layers["net"].blocks.s1b2(pruned.layers["net"].blocks.s1b1(
            pruned.layers["net"].stem(x)))
    assert float(fired.mean()) > 0.05  # the kept channels fire
    assert float(reference.std()) > 0
    assert torch.allclose(got, reference, atol=1e-10, rtol=0)


def branch_graph() -> Graph:
    """c1 feeds c2 and, around it, the add: c1 and c2 carry the same channels."""
    return Graph(
        [Node("c1", "wb_core.spiking_conv", {"out_channels": 5}),
         Node("c2", "wb_core.spiking_conv", {"out_channels": 5}),
         Node("sum", "wb_core.add"),
         Node("c3", "wb_core.spiking_conv", {"out_channels": 4}),
         Node("f", "wb_core.flatten"),
         Node("fc", "wb_core.linear", {"out_features": 3})],
        [("c1", "c2"), ("c1", "sum"), ("c2", "sum"), ("sum", "c3"), ("c3", "f"), ("f", "fc")])


def test_branch_and_add_in_a_graph_are_one_group(plugin_host):
    graph = branch_graph()
    model = build(graph, plugin_host)
    plans, skipped = find_prunable(graph, model, plugin_host.registry)
    (plan,) = plans
    assert plan.members == ["c1", "c2"] and plan.readers == ["c2", "c3"]
    assert plan.spike_units == {"c1": "c1", "c2": "c2"}
    assert "prune_last_conv" in skipped["c3"]
    kept = torch.tensor([1, 2, 4])
    pruned, new_graph = prune(model, graph, plugin_host, {"c1": kept}, plans)
    assert [new_graph.node(n).params["out_channels"] for n in ("c1", "c2", "c3")] == [3, 3, 4]
    assert torch.equal(pruned.layers["c2"].conv.weight,
                       model.layers["c2"].conv.weight[kept][:, kept])  # reads its own group
    x = inputs()
    with torch.no_grad():
        got = pruned.eval()(x)
        reference = masked(model, {"layers.c1": kept, "layers.c2": kept})(x)
    assert float(reference.std()) > 0
    assert torch.allclose(got, reference, atol=1e-10, rtol=0)


def test_option_a_shortcut_node_follows_the_pruned_width(plugin_host):
    graph = Graph(
        [Node("c0", "wb_core.spiking_conv", {"out_channels": 4}),
         Node("c1", "wb_core.conv2d", {"out_channels": 6, "bias": False, "stride": 2}),
         Node("bn", "wb_core.batch_norm"),
         Node("sc", "wb_qp_snn.shortcut_a", {"out_channels": 6, "stride": 2}),
         Node("sum", "wb_core.add"),
         Node("n", "wb_core.lif_b"),
         Node("f", "wb_core.flatten"),
         Node("fc", "wb_core.linear", {"out_features": 3})],
        [("c0", "c1"), ("c0", "sc"), ("c1", "bn"), ("bn", "sum"), ("sc", "sum"), ("sum", "n"),
         ("n", "f"), ("f", "fc")])
    model = build(graph, plugin_host)
    plans, _ = find_prunable(graph, model, plugin_host.registry, prune_last_conv=True)
    assert [p.members for p in plans] == [["c0"], ["c1"]]
    assert plans[1].resize == ["c1", "sc"] and plans[1].spike_units == {"c1": "n"}
    assert plans[1].carriers == ["bn", "sum", "n", "f"] and plans[1].positions == 16
    keep = {"c0": torch.tensor([0, 3]), "c1": torch.tensor([1, 2, 5])}
    pruned, new_graph = prune(model, graph, plugin_host, keep, plans)
    assert new_graph.node("sc").params["out_channels"] == 3
    assert tuple(pruned.layers["fc"].weight.shape) == (3, 3 * 16)
    x = inputs()
    with torch.no_grad():
        assert tuple(pruned.eval()(x).shape) == (3, 4, 3)
        spikes = pruned.layers["c0"](x)
        # the pruned shortcut pads by position: 2 channels -> 3, none in front, one behind
        assert torch.equal(pruned.layers["sc"](spikes)[:, :, :2], spikes[:, :, :, ::2, ::2])


# ============================================================================================
# The passes through compress: combined scores, the ratio list, errors


def project_with(graph: Graph, folder: Path, host, weights=None) -> tuple[Path, nn.Module]:
    """A digits project with ``graph`` and untrained weights (enough for a pruning pass), and
    its model."""
    shutil.copytree(examples_dir() / "digits_conv", folder)
    project = load_project(folder)
    project.graph = graph
    save_project(project, folder)
    session = Session(load_project(folder), host.registry)
    model = session.build(load_saved_weights=False)
    if weights:
        weights(model)
    session.save_weights()
    return folder, model


def compress(folder: Path, host, method: str, params: dict, out: Path | None = None
             ) -> RunFinished:
    session = Session(load_project(folder), host.registry)
    events = list(catalog.compress(session, method=method, params=params, out=out, limit=64))
    assert isinstance(events[-1], RunFinished)
    return events[-1]


def residual_graph() -> Graph:
    return Graph(
        [Node("c1", "wb_core.spiking_conv", {"out_channels": 4}),
         Node("c2", "wb_core.conv2d", {"out_channels": 4, "bias": False}),
         Node("bn", "wb_core.batch_norm"),
         Node("sum", "wb_core.add"),
         Node("n", "wb_core.lif"),
         Node("c3", "wb_core.spiking_conv", {"out_channels": 6}),
         Node("pool", "wb_core.avg_pool"),
         Node("f", "wb_core.flatten"),
         Node("fc", "wb_core.linear", {"out_features": 10})],
        [("c1", "c2"), ("c2", "bn"), ("bn", "sum"), ("c1", "sum"), ("sum", "n"), ("n", "c3"),
         ("c3", "pool"), ("pool", "f"), ("f", "fc")])


def test_l1_selection_is_shared_and_scored_from_the_whole_group(plugin_host, tmp_path):
    # per-kernel L1: c1 alone would keep {0, 2}, c2 alone {1, 3}; their mean [2, 1, 1.5, 1.75]
    # keeps {0, 3}
    l1_c1, l1_c2 = [4.0, 0.0, 3.0, 0.0], [0.0, 2.0, 0.0, 3.5]

    def weights(model):
        with torch.no_grad():
            for c in range(4):
                model.layers["c1"].conv.weight[c] = l1_c1[c] / 9  # 1×3×3 entries
                model.layers["c2"].weight[c] = l1_c2[c] / 36  # 4×3×3 entries

    folder, before = project_with(residual_graph(), tmp_path / "res", plugin_host, weights)
    done = compress(folder, plugin_host, "wb_qp_snn.l1_prune",
                    {"ratio": 0.5, "finetune_epochs": 0}, tmp_path / "pruned")
    assert done.status == "ok", done.error
    (layer,) = done.summary["report"]["layers"]
    assert (layer["node"], layer["members"], layer["kept"]) == ("c1", ["c1", "c2"], [0, 3])
    session = Session(load_project(tmp_path / "pruned"), plugin_host.registry)
    after = session.build()
    assert torch.equal(after.layers["c1"].conv.weight, before.layers["c1"].conv.weight[[0, 3]])
    assert torch.equal(after.layers["c2"].weight,
                       before.layers["c2"].weight[[0, 3]][:, [0, 3]])
    assert torch.equal(after.layers["bn"].running_var, before.layers["bn"].running_var[[0, 3]])
    assert measure(after, session, limit=64)["accuracy"] == done.summary["after"]["accuracy"]


@pytest.fixture(scope="module")
def resnet_project(tmp_path_factory) -> Path:
    """A small ResNet on the digits (6 prunable groups), untrained; read, never changed."""
    from workbench.pluginhost.manager import PluginHost

    host = PluginHost(strict=True)
    host.load()
    return project_with(resnet_graph(stem_width=6, stage_widths="8,12", blocks=2),
                        tmp_path_factory.mktemp("resnet") / "resnet", host)[0]


def test_svs_ratio_list_is_honoured_per_group_on_the_resnet(plugin_host, resnet_project,
                                                            tmp_path):
    folder = resnet_project
    ratios = [0.5, 0.25, 0.5, 0.0, 0.5, 0.75]  # stem, s1b1 inner, stage 1, s1b2, s2b1, s2b2
    done = compress(folder, plugin_host, "wb_qp_snn.svs_prune",
                    {"ratio": ratios, "batches": 1, "finetune_epochs": 0}, tmp_path / "p")
    assert done.status == "ok", done.error
    layers = done.summary["report"]["layers"]
    assert [(r["ratio"], r["width_before"], r["width_after"]) for r in layers] == [
        (0.5, 6, 3), (0.25, 8, 6), (0.5, 8, 4), (0.0, 8, 8), (0.5, 12, 6), (0.75, 12, 3)]
    assert all(0 <= r["scores"]["min"] <= r["scores"]["max"] <= 8 for r in layers)
    session = Session(load_project(tmp_path / "p"), plugin_host.registry)
    params = session.project.graph.node("net").params
    assert (params["stem_width"], params["stage_widths"], params["inner_widths"]) == (
        3, "4,12", "6,8,6,3")
    assert measure(session.build(), session, limit=64)["accuracy"] == \
        done.summary["after"]["accuracy"]


@pytest.mark.parametrize("ratio, message", [
    ([0.5, 0.5], "ratio lists 2 value(s), but the network has 6 prunable"),
    ([0.5, 0.5, 0.5, 1.0, 0.5, 0.5], "must lie in [0, 1)"),
])
def test_ratio_list_errors_name_the_parameter(plugin_host, resnet_project, ratio, message):
    done = compress(resnet_project, plugin_host, "wb_qp_snn.l1_prune", {"ratio": ratio})
    assert done.status == "failed" and done.error_kind == "input"
    assert "parameter 'ratio'" in done.error and message in done.error
    if len(ratio) == 2:  # the message lists the groups in the order the list follows
        assert "1. net.stem; 2. net.blocks.s1b1.conv1; 3. net.blocks.s1b1.conv2 (+1 conv" \
            in done.error


def test_ratio_accepts_a_number_a_list_or_text(plugin_host):
    spec = plugin_host.registry.get("wb_qp_snn.svs_prune")
    assert spec.check_params({"ratio": 0.3})["ratio"] == 0.3
    assert spec.check_params({"ratio": "0.3"})["ratio"] == 0.3
    assert spec.check_params({"ratio": "0.1, 0.3,0.6"})["ratio"] == [0.1, 0.3, 0.6]
    assert spec.check_params({"ratio": "[0.2]"})["ratio"] == [0.2]
    assert spec.check_params({"ratio": [0, 0.5]})["ratio"] == [0.0, 0.5]
    for bad in ("half", [], [0.2, 1.5], True):
        with pytest.raises(ProjectError, match="ratio"):
            spec.check_params({"ratio": bad})


# ============================================================================================
# 7. Pruned ResNet20 widths and sizes, on what the plugin's pruning produces

# as printed; the code reads the first 12 entries: stem, stage-1 and stage-2 outputs, inner 1..9
PAPER_6_22M = [0.1] + [0.3] * 3 + [0.6] * 9
PAPER_3_87M = [0.1] + [0.35] * 3 + [0.75] * 9


def network_order(paper: list[float]) -> list[float]:
    """The paper's 12-entry list in the plugin's group order: stem, inner 1, stage-1 outputs,
    inner 2..4, stage-2 outputs, inner 5..9."""
    stem, stage1, stage2, inner = paper[0], paper[1], paper[2], paper[3:12]
    return [stem, inner[0], stage1, *inner[1:4], stage2, *inner[4:]]


@pytest.mark.parametrize("paper, widths, params_m, sizes", [
    (PAPER_6_22M, (57, "89,179,512", "89,51,51,102,102,102,204,204,204"), 6.22,
     (6.27, 3.16, 1.61)),
    (PAPER_3_87M, (57, "83,166,512", "83,32,32,64,64,64,128,128,128"), 3.87,
     (3.92, 1.98, 1.02)),
])
def test_pruned_resnet20_widths_and_sizes(plugin_host, paper, widths, params_m, sizes):
    lookup = plugin_host.registry
    graph = resnet_graph(**QP_RESNET20)
    torch.manual_seed(0)
    model = compile_graph(graph, lookup, (3, 32, 32))
    plans, skipped = find_prunable(graph, model, lookup)
    assert len(plans) == 12 and len(skipped) == 3  # stage-3 outputs keep their width
    ratios = group_ratios(network_order(paper), plans)
    keep = {p.name: keep_indices(l1_scores(_first_conv(model, p.name).weight), r)
            for p, r in zip(plans, ratios, strict=True)}
    pruned, new_graph = prune_network(model, graph, keep, {p.name: p for p in plans},
                                      lambda g: compile_graph(g, lookup, (3, 32, 32)))
    params = new_graph.node("net").params
    assert (params["stem_width"], params["stage_widths"], params["inner_widths"]) == widths
    count = sum(p.numel() for p in pruned.parameters())
    assert math.floor(count / 1e4) / 100 == params_m  # the paper truncates to 2 decimals
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)][1:]  # stem stays FP32
    for bits, size in zip((8, 4, 2), sizes, strict=True):
        for conv in convs:
            qz.freeze(conv, bits)
        assert round(size_bytes(pruned) / 1e6, 2) == size


def _first_conv(model: nn.Module, unit: str) -> nn.Conv2d:
    return next(m for m in unit_module(model, unit).modules() if isinstance(m, nn.Conv2d))
