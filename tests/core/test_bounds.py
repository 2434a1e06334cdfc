"""Bounded work on untrusted graphs: shape inference on meta tensors, caps on a network's size.

A layer whose every parameter is inside its allowed range can still ask for tens of gigabytes
(a 65 536-channel convolution with wide padding). Shape inference must learn that without
allocating it, and a network over the caps must be refused by name before anything real is
built.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from workbench.core.build.compile import build_node, compile_graph, validate
from workbench.core.build.limits import ACTIVATIONS_ENV, PARAMS_ENV, Limits
from workbench.core.model.errors import CompileError, ProjectError, WorkbenchError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import ComputeSettings, Project
from workbench.core.model.specs import BlockSpec, ParamSpec
from workbench.pluginhost.registry import ContributionRegistry

ROOT = Path(__file__).resolve().parents[2]
DIGITS = (1, 8, 8)
#: 65 536 channels, 1x1 kernel, padding 60: 65 536 * 128 * 128 = 2**30 outputs per sample from
#: 131 072 parameters (every value inside the spec's range)
BILLION = {"out_channels": 65536, "kernel_size": 1, "padding": 60}


def _max_rss_mb_self() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def _huge_conv_graph() -> Graph:
    """The audit's case: a 65 536-channel 3x3 conv padded to 134x134 (18 GB at T = B = 2)."""
    return Graph.chain([
        Node("wide", "wb_core.spiking_conv", {"out_channels": 65536, "padding": 64}),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])


# -- the bar: `info` on a billion outputs per sample ------------------------------------------
# The child runs under a small Python parent whose only child it is, so RUSAGE_CHILDREN reads
# the child's own peak, whatever else this test process ran before.
_MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    mb = rss / (1 << 20) if sys.platform == "darwin" else rss / 1024
    print(json.dumps({"rc": done.returncode, "stderr": done.stderr, "rss_mb": mb}))
""")


@pytest.mark.slow
def test_info_on_a_billion_outputs_per_sample_is_a_clear_error_in_little_memory(tmp_path):
    project = Project("huge", Graph.chain([
        Node("wide", "wb_core.spiking_conv", dict(BILLION)),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ]))
    (tmp_path / "project.json").write_text(project.to_json(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in (ACTIVATIONS_ENV, PARAMS_ENV)}
    cli = "from workbench.cli import main; raise SystemExit(main())"
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-c", cli, "info", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)
    result = json.loads(measured.stdout)
    assert result["rc"] == 2, result["stderr"]
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snn-workbench: error: node 'wide': "), lines
    assert "1,073,741,824 activations per sample" in lines[0]
    assert "cap of 100,000,000" in lines[0] and "compute.max_activations" in lines[0]
    assert ACTIVATIONS_ENV in lines[0]
    assert result["rss_mb"] < 1024, f"peak RSS of `info` was {result['rss_mb']:.0f} MB"


# -- shape inference allocates nothing --------------------------------------------------------
def test_validate_reports_the_huge_conv_without_allocating_it(plugin_host):
    before = _max_rss_mb_self()
    report = validate(_huge_conv_graph(), plugin_host.registry, DIGITS)
    assert "1,176,764,416 activations per sample" in report.nodes["wide"].error
    assert "cap of 100,000,000" in report.nodes["wide"].error
    assert report.nodes["flat"].error == "an input of this node has an error"
    assert _max_rss_mb_self() - before < 256  # the real probe would have asked for ~18 GB


def test_validate_with_a_raised_cap_infers_the_shape_on_meta_tensors(plugin_host):
    before = _max_rss_mb_self()
    report = validate(_huge_conv_graph(), plugin_host.registry, DIGITS,
                      limits=Limits(max_activations=10**12, max_params=10**12))
    assert report.ok, report.nodes
    assert report.nodes["wide"].out_shape == (65536, 134, 134)
    assert report.nodes["fc"].out_shape == (10,)  # a 12-billion-weight linear, never built
    assert _max_rss_mb_self() - before < 256


def test_compile_refuses_the_huge_conv_by_name_before_building_anything(plugin_host):
    with pytest.raises(CompileError) as err:
        compile_graph(_huge_conv_graph(), plugin_host.registry, DIGITS)
    assert err.value.node == "wide"
    assert "raise the cap" in str(err.value)


def test_the_parameter_cap_names_the_node_that_crosses_it(plugin_host):
    graph = Graph.chain([Node("c1", "wb_core.conv2d", {"out_channels": 65536}),
                         Node("c2", "wb_core.conv2d", {"out_channels": 65536})])
    with pytest.raises(CompileError) as err:
        compile_graph(graph, plugin_host.registry, DIGITS,
                      limits=Limits(max_activations=10**12))
    assert err.value.node == "c2"  # 65536 * 65536 * 9 weights, 155 GB of fp32
    message = str(err.value)
    assert "38,655,426,560 parameters" in message  # both layers' weights and biases
    assert "cap of 1,000,000,000" in message and "compute.max_params" in message


# -- the caps are settings --------------------------------------------------------------------
def test_the_caps_come_from_the_project_and_the_environment_overrides_them(monkeypatch):
    monkeypatch.delenv(ACTIVATIONS_ENV, raising=False)
    monkeypatch.delenv(PARAMS_ENV, raising=False)
    assert Limits.resolve() == Limits(10**8, 10**9)
    settings = ComputeSettings(max_activations=5_000, max_params=7_000)
    assert Limits.resolve(settings) == Limits(5_000, 7_000)
    monkeypatch.setenv(ACTIVATIONS_ENV, "1e9")
    monkeypatch.setenv(PARAMS_ENV, "2_000")
    assert Limits.resolve(settings) == Limits(10**9, 2_000)
    for bad in ("lots", "0", "-5", "nan", "inf", "1e30"):
        monkeypatch.setenv(PARAMS_ENV, bad)
        with pytest.raises(WorkbenchError, match=f"environment variable {PARAMS_ENV}"):
            Limits.resolve(settings)


def test_a_small_cap_in_the_project_stops_a_small_network(plugin_host):
    graph = Graph.chain([Node("fc1", "wb_core.linear", {"out_features": 64}),
                         Node("fc2", "wb_core.linear", {"out_features": 64})])
    with pytest.raises(CompileError) as err:
        compile_graph(graph, plugin_host.registry, (16,),
                      limits=Limits.resolve(ComputeSettings(max_activations=100)))
    assert err.value.node == "fc2" and "128 activations" in str(err.value)


def test_the_project_fields_are_checked_and_written_only_when_changed():
    base = Project("p", Graph.chain([Node("fc", "wb_core.linear")])).to_dict()
    assert "max_activations" not in base["compute"]  # unchanged projects stay as they were
    data = json.loads(json.dumps(base))
    data["compute"]["max_activations"] = 123
    project = Project.from_dict(data)
    assert project.compute.max_activations == 123
    assert project.to_dict()["compute"]["max_activations"] == 123
    for bad in (0, -1, "many", 1.5, True, 10**16):
        data["compute"]["max_activations"] = bad
        with pytest.raises(ProjectError, match="compute.max_activations"):
            Project.from_dict(data, where="p.json")


# -- the real build draws from the generator exactly as before --------------------------------
def test_the_meta_pass_draws_nothing_and_compile_builds_in_node_order(plugin_host):
    graph = Graph.chain([
        Node("c1", "wb_core.spiking_conv", {"out_channels": 4}),
        Node("p1", "wb_core.max_pool"),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 3}),
    ])
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    report = validate(graph, plugin_host.registry, DIGITS)
    assert torch.equal(torch.random.get_rng_state(), state)
    # what compiling did before the meta pass: each real module built in order
    torch.manual_seed(7)
    expected = {n: build_node(graph.node(n), plugin_host.registry,
                              report.nodes[n].in_shapes)[0].state_dict()
                for n in graph.topological_order()}
    after_expected = torch.random.get_rng_state()
    torch.manual_seed(7)
    model = compile_graph(graph, plugin_host.registry, DIGITS)
    assert torch.equal(torch.random.get_rng_state(), after_expected)
    for node, tensors in expected.items():
        for name, value in tensors.items():
            assert torch.equal(model.layers[node].state_dict()[name], value), (node, name)


# -- blocks that cannot run on meta -------------------------------------------------------------
class _ReadsAValue(torch.nn.Module):
    """A block whose forward reads a tensor's value, which meta tensors do not have."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, width)

    def forward(self, x):
        if float(x.abs().sum()) > 1e30:  # .item() under another name
            raise RuntimeError("unreachable")
        return self.fc(x)


def _reads_a_value(in_shapes, width: int = 3):
    return _ReadsAValue(width)


def _exits(in_shapes):
    raise SystemExit("a factory that calls sys.exit()")


def _lookup(plugin_host) -> ContributionRegistry:
    lookup = ContributionRegistry()
    lookup.add("t", BlockSpec(id="t.reads", display_name="Reads", factory=_reads_a_value,
                              params=(ParamSpec("width", 3, "int", low=1, high=10**9),)))
    lookup.add("t", BlockSpec(id="t.exits", display_name="Exits", factory=_exits))
    lookup.add("wb_core", plugin_host.registry.get("wb_core.linear"))
    return lookup


def test_a_block_that_cannot_run_on_meta_gets_the_real_probe(plugin_host):
    lookup = _lookup(plugin_host)
    graph = Graph.chain([Node("r", "t.reads", {"width": 5}),
                         Node("fc", "wb_core.linear", {"out_features": 2})])
    torch.manual_seed(3)
    expected_r = torch.nn.Linear(4, 5).state_dict()
    expected_fc = torch.nn.Linear(5, 2).state_dict()
    torch.manual_seed(3)
    model = compile_graph(graph, lookup, (4,))
    assert model.report.nodes["r"].out_shape == (5,)
    for name, value in expected_r.items():  # the real probe's build did not shift the draws
        assert torch.equal(model.layers["r"].state_dict()["fc." + name], value)
    for name, value in expected_fc.items():
        assert torch.equal(model.layers["fc"].state_dict()[name], value)


def test_a_block_that_cannot_run_on_meta_is_still_held_to_the_parameter_cap(plugin_host):
    graph = Graph.chain([Node("r", "t.reads", {"width": 10**9})])  # 5e9 weights if built
    before = _max_rss_mb_self()
    report = validate(graph, _lookup(plugin_host), (4,))
    assert "5,000,000,000 parameters" in report.nodes["r"].error
    assert _max_rss_mb_self() - before < 256


def test_sys_exit_in_a_factory_is_reported_against_the_node(plugin_host):
    lookup = _lookup(plugin_host)
    graph = Graph.chain([Node("x", "t.exits")])
    report = validate(graph, lookup, (4,))
    assert "SystemExit" in report.nodes["x"].error and "sys.exit()" in report.nodes["x"].error
    with pytest.raises(CompileError) as err:
        compile_graph(graph, lookup, (4,))
    assert err.value.node == "x"
