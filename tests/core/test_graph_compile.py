"""Graph model, validation and compile: shapes, per-node errors, residual graphs."""

from __future__ import annotations

import pytest
import torch

from workbench.core.build.compile import compile_graph, validate
from workbench.core.model.errors import CompileError
from workbench.core.model.graph import Graph, Node


def test_sequential_conv_net_infers_every_shape(plugin_host):
    graph = Graph.chain([
        Node("c1", "wb_core.spiking_conv", {"out_channels": 4}),
        Node("p1", "wb_core.max_pool"),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 3}),
    ])
    model = compile_graph(graph, plugin_host.registry, (1, 8, 8))
    shapes = {n: model.report.nodes[n].out_shape for n in model.order}
    assert shapes == {"c1": (4, 8, 8), "p1": (4, 4, 4), "flat": (64,), "fc": (3,)}
    out = model(torch.rand(5, 2, 1, 8, 8))
    assert out.shape == (5, 2, 3)
    assert set(dict(model.named_parameters())) >= {"layers.c1.conv.weight", "layers.fc.weight"}


def test_residual_add_graph_runs_and_sums_its_branches(plugin_host):
    graph = Graph(
        [Node("a", "wb_core.linear", {"out_features": 6}),
         Node("b", "wb_core.spiking_linear", {"out_features": 6}),
         Node("sum", "wb_core.add"),
         Node("out", "wb_core.linear", {"out_features": 2})],
        [("a", "b"), ("a", "sum"), ("b", "sum"), ("sum", "out")],
    )
    model = compile_graph(graph, plugin_host.registry, (4,))
    x = torch.rand(3, 2, 4)
    a = model.layers["a"](x)
    expected = model.layers["out"](a + model.layers["b"](a))
    assert torch.allclose(model(x), expected)


def test_shape_error_names_the_node_and_the_shapes(plugin_host):
    graph = Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("conv", "wb_core.conv2d"),
    ])
    with pytest.raises(CompileError) as err:
        compile_graph(graph, plugin_host.registry, (1, 8, 8))
    assert err.value.node == "conv"
    assert "expects a [C, H, W] input, got [64]" in str(err.value)


def test_validate_reports_every_node_and_blames_downstream_once(plugin_host):
    graph = Graph.chain([
        Node("fc", "wb_core.linear", {"out_features": 4}),   # image input: fails
        Node("lif", "wb_core.lif"),
        Node("ok", "wb_core.linear", {"out_features": 2}),
    ])
    report = validate(graph, plugin_host.registry, (1, 8, 8))
    assert not report.ok
    assert "Flatten" in report.nodes["fc"].error
    assert report.nodes["lif"].error == "an input of this node has an error"
    assert report.nodes["lif"].out_shape is None


def test_bad_parameter_is_reported_against_the_node(plugin_host):
    graph = Graph.chain([Node("fc", "wb_core.linear", {"out_features": 0})])
    report = validate(graph, plugin_host.registry, (4,))
    assert "out_features" in report.nodes["fc"].error
    assert "below the minimum" in report.nodes["fc"].error


def test_unknown_spec_and_structure_errors(plugin_host):
    unknown = Graph.chain([Node("x", "someone_else.magic")])
    assert "no installed plugin provides" in validate(unknown, plugin_host.registry, (4,)).nodes["x"].error
    cycle = Graph([Node("a", "wb_core.flatten"), Node("b", "wb_core.flatten")],
                  [("a", "b"), ("b", "a")])
    assert "cycle" in validate(cycle, plugin_host.registry, (4,)).error
    two_outputs = Graph([Node("a", "wb_core.flatten"), Node("b", "wb_core.flatten"),
                         Node("c", "wb_core.flatten")], [("a", "b"), ("a", "c")])
    with pytest.raises(CompileError, match="one output node"):
        compile_graph(two_outputs, plugin_host.registry, (4,))
    with pytest.raises(CompileError, match="no nodes"):
        compile_graph(Graph(), plugin_host.registry, (4,))


def test_block_neuron_is_chosen_from_the_neuron_contributions(plugin_host):
    graph = Graph.chain([Node("h", "wb_core.spiking_linear",
                              {"out_features": 3,
                               "neuron": {"id": "wb_core.lif_b", "params": {"lam": 0.9}}})])
    model = compile_graph(graph, plugin_host.registry, (4,))
    assert model.layers["h"].neuron.dynamics.a == pytest.approx(0.9)
    graph.nodes[0].params["neuron"] = "wb_core.linear"
    report = validate(graph, plugin_host.registry, (4,))
    assert "is not an installed neuron" in report.nodes["h"].error


def test_unique_id_and_topological_order():
    graph = Graph.chain([Node("conv1", "x.y"), Node("conv2", "x.y")])
    assert graph.unique_id("conv") == "conv3"
    assert graph.topological_order() == ["conv1", "conv2"]
