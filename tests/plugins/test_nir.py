"""Tests of ``wb_nir``: NIR export and import, checked against snnTorch's NIR reader/writer
(snnTorch 1.0 steps NIR graphs with dt = 1e-4) and against NIR's own Euler equations."""

from __future__ import annotations

import shutil
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from wb_core.neurons import SpikingNeuron
from wb_nir import neurons as nir_neurons
from wb_nir.export import to_nir
from wb_nir.importer import build_model, from_nir

from workbench.core.build.quantized import QuantizedTensor, attach
from workbench.core.model.errors import DeployError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component, Project, Training
from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import EnergySample, RunFinished
from workbench.core.runs.session import Session

N_SAMPLES = 20


@pytest.fixture
def backend(plugin_host):
    spec = plugin_host.registry.get("wb_nir.nir")
    assert spec is not None and spec.kind == "exchange" and spec.formats == ("nir",)
    return spec.create()


@pytest.fixture
def mlp(tmp_path, trained_digits_mlp, plugin_host):
    folder = tmp_path / "mlp"
    shutil.copytree(trained_digits_mlp, folder)
    session = Session(load_project(folder), plugin_host.registry)
    session.build().eval()
    assert session.weights_loaded
    return session


def encoded_test_batch(session, n=N_SAMPLES):
    x, _ = next(session.data().test.batches(n))
    return session.encoder()(x)  # [T, B, 1, 8, 8]


def snntorch_steps(net, x_seq):
    """Run an snnTorch/nirtorch module one sample and one step at a time (NIR shapes have no
    batch dimension, so snnTorch's Flatten(0, -1) needs unbatched samples)."""
    outs = []
    for i in range(x_seq.shape[1]):
        for m in net.modules():
            if isinstance(m, snn.SpikingNeuron):
                m.reset_mem()
        steps = []
        for t in range(x_seq.shape[0]):
            out = net(x_seq[t, i])
            steps.append(out[0] if isinstance(out, tuple) else out)
        outs.append(torch.stack(steps))
    return torch.stack(outs, dim=1)  # [T, B, ...]


def import_nir(host, path, out):
    """Import through the core's run, as the CLI and the GUI do; the new project folder."""
    finished = catalog.import_file(host.registry, path=path, out=out).result()
    assert finished.status == "ok", finished.error
    return Path(finished.summary["project"])


def checked(host, node):
    return host.registry.get(node.spec).check_params(node.params)


# -- export -> import round trip ------------------------------------------------------------


def test_round_trip_keeps_graph_weights_and_predictions(mlp, backend, plugin_host, tmp_path):
    report = backend.export_file(mlp, tmp_path / "mlp.nir")
    assert report["nodes"] == {"Affine": 3, "Flatten": 1, "Input": 1, "LIF": 2, "Output": 1}
    folder = import_nir(plugin_host, tmp_path / "mlp.nir", tmp_path / "back")

    back = Session(load_project(folder), plugin_host.registry)
    original = mlp.project.graph
    assert [n.id for n in back.project.graph.nodes] == [n.id for n in original.nodes]
    assert back.project.graph.edges == original.edges
    for ours, theirs in zip(original.nodes, back.project.graph.nodes):
        assert theirs.spec == ours.spec
        assert checked(plugin_host, theirs) == checked(plugin_host, ours)  # widths, neurons
    assert back.project.time_steps == mlp.project.time_steps

    model = back.build()
    assert back.weights_loaded
    before, after = mlp.model.state_dict(), model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.allclose(before[key], after[key]), key

    x = encoded_test_batch(mlp, 100)
    with torch.no_grad():
        assert torch.equal(model(x), mlp.model(x))


# -- our export read by snnTorch ----------------------------------------------------------------


def test_snntorch_steps_our_export_like_we_do(mlp, backend, tmp_path):
    backend.export_file(mlp, tmp_path / "mlp.nir")
    net = import_from_nir(nir.read(tmp_path / "mlp.nir"))
    hidden = {}
    net.hidden2_lif.register_forward_hook(
        lambda m, a, out: hidden.setdefault("theirs", []).append(out.detach()))
    mlp.model.layers["hidden2"].neuron.register_forward_hook(
        lambda m, a, out: hidden.__setitem__("ours", out.detach()))

    x = encoded_test_batch(mlp)
    with torch.no_grad():
        ours = mlp.model(x)
        theirs = snntorch_steps(net, x)
    assert theirs.shape == ours.shape == (mlp.project.time_steps, N_SAMPLES, 10)
    hidden_theirs = torch.stack(hidden["theirs"]).reshape(N_SAMPLES, -1, 256).transpose(0, 1)
    assert hidden["ours"].sum() > 0  # the hidden layer does fire
    assert torch.equal(hidden_theirs, hidden["ours"])  # the same spikes, step by step
    assert torch.allclose(theirs, ours, atol=1e-5, rtol=0)


# -- convolutions, batch norm folding -------------------------------------------------------


def conv_project() -> Project:
    graph = Graph.chain([
        Node("conv1", "wb_core.spiking_conv", {"out_channels": 6}),  # with batch norm
        Node("pool", "wb_core.avg_pool"),
        Node("conv2", "wb_core.spiking_conv",
             {"out_channels": 8, "batch_norm": False,
              "neuron": {"id": "wb_core.lif_b", "params": {"lam": 0.75}}}),
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])
    return Project("conv", graph, training=Training(Component("wb_core.bptt"), seed=3))


def test_conv_network_exports_folds_batch_norm_and_matches_snntorch(plugin_host):
    session = Session(conv_project(), plugin_host.registry)
    model = session.build()
    x = encoded_test_batch(session)
    with torch.no_grad():  # give batch norm running statistics that are not the identity
        model.train()
        for _ in range(3):
            model(x * 3.0)
        model.eval()
        bn = model.layers["conv1"].bn
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    graph = to_nir(model, session.project)
    assert {type(n).__name__ for n in graph.nodes.values()} == {
        "Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "Output"}

    back_graph, state = from_nir(graph, plugin_host.registry, (1, 8, 8))
    assert [n.spec for n in back_graph.nodes] == [n.spec for n in session.project.graph.nodes]
    back = build_model(back_graph, state, plugin_host.registry, (1, 8, 8))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in back.modules())  # folded
    net = import_from_nir(graph)
    with torch.no_grad():
        ours, folded, theirs = model(x), back(x), snntorch_steps(net, x)
    assert (ours != 0).any()
    # Folding batch norm changes rounding only; the spikes behind the outputs stay the same.
    assert torch.allclose(folded, ours, atol=1e-4, rtol=0)
    assert torch.allclose(theirs, folded, atol=1e-5, rtol=0)


def test_residual_add_becomes_summed_edges_and_comes_back(plugin_host):
    graph = Graph([
        Node("flat", "wb_core.flatten"),
        Node("a", "wb_core.spiking_linear", {"out_features": 16}),
        Node("b", "wb_core.spiking_linear",
             {"out_features": 16, "neuron": {"id": "wb_core.lif_b", "params": {"theta": 0.5}}}),
        Node("res", "wb_core.add"),
        Node("drop", "wb_core.dropout"),
        Node("fc", "wb_core.linear"),
    ], [("flat", "a"), ("a", "b"), ("a", "res"), ("b", "res"), ("res", "drop"), ("drop", "fc")])
    session = Session(Project("residual", graph), plugin_host.registry)
    model = session.build().eval()
    exported = to_nir(model, session.project)
    assert sorted(e for e in exported.edges if e[1] == "fc") == [("a.lif", "fc"), ("b.lif", "fc")]

    back_graph, state = from_nir(exported, plugin_host.registry, (1, 8, 8))
    assert [n.spec for n in back_graph.nodes] == ["wb_core.flatten", "wb_core.spiking_linear",
                                                  "wb_core.spiking_linear", "wb_core.add",
                                                  "wb_core.linear"]
    back = build_model(back_graph, state, plugin_host.registry, (1, 8, 8))
    x = encoded_test_batch(session) * 4.0
    with torch.no_grad():
        ours = model(x)
        assert torch.equal(back(x), ours)
        # snnTorch sums the two edges into fc as well (its IF import is not usable: it builds
        # a Leaky with beta 0.9, so this network uses LIF neurons only)
        assert torch.allclose(snntorch_steps(import_from_nir(exported), x), ours, atol=1e-5)
        hidden_b = model.layers["b"](model.layers["a"](model.layers["flat"](x)))
    assert hidden_b.sum() > 0  # the second branch does contribute spikes


def test_max_pool_network_is_refused_naming_every_pool(plugin_host, backend, tmp_path):
    session = Session(load_project(examples_dir() / "digits_conv"), plugin_host.registry)
    session.build(load_saved_weights=False)
    with pytest.raises(DeployError) as err:
        backend.export_file(session, tmp_path / "conv.nir")
    message = str(err.value)
    assert "node 'pool1' (wb_core.max_pool): NIR has no max-pool node" in message
    assert "node 'pool2'" in message and err.value.where == "node 'pool1'"
    assert not (tmp_path / "conv.nir").exists()


def test_soft_reset_is_refused_with_the_reason(plugin_host):
    graph = Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("hidden", "wb_core.spiking_linear",
             {"out_features": 16, "neuron": {"id": "wb_core.if", "params": {"reset": "soft"}}}),
        Node("fc", "wb_core.linear"),
    ])
    session = Session(Project("soft", graph), plugin_host.registry)
    with pytest.raises(DeployError, match=r"node 'hidden' .*soft reset"):
        to_nir(session.build(), session.project)


def test_attention_and_custom_neurons_are_refused(plugin_host, backend, tmp_path):
    session = Session(load_project(examples_dir() / "digits_snn_vit_ssa"), plugin_host.registry)
    session.build(load_saved_weights=False)
    with pytest.raises(DeployError, match="NIR has no attention block"):
        backend.export_file(session, tmp_path / "vit.nir")

    class QuantisedMembrane(SpikingNeuron):  # stands for any neuron with its own step
        pass

    plain = plugin_host.registry.get("wb_core.lif").create()
    with pytest.raises(nir_neurons.Unsupported, match="quantised-membrane"):
        nir_neurons.check_dynamics(QuantisedMembrane(plain.dynamics))


def test_a_qt_snn_is_refused_saying_what_nir_cannot_express(plugin_host, backend, tmp_path):
    session = Session(load_project(examples_dir() / "vowels_qt_snn"), plugin_host.registry)
    session.build(load_saved_weights=False, shape=((12, 29), 9))
    with pytest.raises(DeployError) as err:
        backend.export_file(session, tmp_path / "qt.nir")
    message = str(err.value)
    assert "node 'hidden1' (wb_qt_snn.qt_linear): a QT-SNN layer: NIR has no ternary neuron" in \
        message
    assert "node 'hidden2'" in message and "node 'out' (wb_qt_snn.qt_readout)" in message
    assert not (tmp_path / "qt.nir").exists()
    # a ternary neuron in any block is named for what it fires
    ternary = plugin_host.registry.get("wb_qt_snn.ternary_lif").create()
    with pytest.raises(nir_neurons.Unsupported, match=r"ternary spikes \(-1, 0, \+1\)"):
        nir_neurons.check_dynamics(ternary)


# -- neuron mapping against NIR's own equations -----------------------------------------------


def nir_euler(node, x, dt):
    """NIR's LIF/IF stepped by forward Euler in float64: the reference semantics."""
    v = np.broadcast_to(np.asarray(node.v_reset, np.float64), x.shape[1:]).copy()
    spikes = []
    for t in range(x.shape[0]):
        if isinstance(node, nir.IF):
            v = v + node.r * x[t]
        else:
            v = v + dt / node.tau * (node.v_leak - v) + node.r * dt / node.tau * x[t]
        z = v > node.v_threshold
        v = np.where(z, node.v_reset, v)
        spikes.append(z)
    return np.stack(spikes).astype(np.float32)


def ones(value, n=64):
    return np.full(n, value, dtype=np.float64)


FOREIGN = {  # NIR neurons as other tools write them (dt = 1e-4)
    "snntorch_leaky": nir.LIF(tau=ones(4e-4), r=ones(4.0), v_leak=ones(0.0),
                              v_threshold=ones(0.9), v_reset=ones(0.0)),
    "gain_2": nir.LIF(tau=ones(2e-4), r=ones(4.0), v_leak=ones(0.0), v_threshold=ones(0.9),
                      v_reset=ones(0.0)),
    "leak_to_reset": nir.LIF(tau=ones(4e-4), r=ones(1.0), v_leak=ones(0.25),
                             v_threshold=ones(0.9), v_reset=ones(0.25)),
    "if_unit": nir.IF(r=ones(1.0), v_threshold=ones(0.9), v_reset=ones(0.0)),
    "if_gain": nir.IF(r=ones(0.5), v_threshold=ones(0.45), v_reset=ones(0.0)),
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_imported_neuron_fires_like_nir_euler(name, plugin_host):
    node = FOREIGN[name]
    spec_id, params = nir_neurons.from_nir(node, 1e-4, name)
    neuron = plugin_host.registry.get(spec_id).create(**params)
    # Multiples of 1/64 keep every product with these powers-of-two gains exact in float32,
    # and the threshold 0.9 is never hit exactly, so > and >= cannot differ.
    x = torch.randint(-16, 80, (6, 3, 64)).float() / 64
    want = nir_euler(node, x.numpy().astype(np.float64), 1e-4)
    assert want.any() and not want.all()
    assert np.array_equal(neuron(x).numpy(), want)


@pytest.mark.parametrize("spec_id, params", [
    ("wb_core.lif", {"tau": 4.0, "v_th": 0.9, "v_reset": 0.25}),
    ("wb_core.lif_b", {"lam": 0.75, "theta": 0.9}),
    ("wb_core.if", {"v_th": 0.9}),
])
def test_exported_neuron_fires_like_nir_euler(spec_id, params, plugin_host):
    neuron = plugin_host.registry.get(spec_id).create(**params)
    node = nir_neurons.to_nir(nir_neurons.check_dynamics(neuron), (64,), 1e-4, {})
    assert nir_neurons.same_dynamics(neuron.dynamics, node, 1e-4)
    x = torch.randint(-16, 80, (6, 3, 64)).float() / 64
    want = nir_euler(node, x.numpy().astype(np.float64), 1e-4)
    assert np.array_equal(neuron(x).numpy(), want)


# -- ties at the threshold behind quantised weights --------------------------------------------
#: one float32 step below 1.0 (float32 has 24 significant bits): where a NIR reader's
#: ``v > v_threshold`` fires exactly when our ``H >= 1`` does
BELOW_ONE = 1.0 - 2.0 ** -24


def quantise(layer, bits=4, step=0.125, seed=0):
    """Give ``layer`` random ``bits``-bit weights on the grid ``step·q`` and a zero bias (so
    that, fed spikes, every potential is a multiple of a power of two: exact in float32)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(-(2 ** (bits - 1)), 2 ** (bits - 1), tuple(layer.weight.shape),
                      generator=gen)
    attach(layer, QuantizedTensor.from_ints(q, torch.full((q.shape[0],), step), bits))
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.zero_()


def test_quantised_lif_layers_fire_at_ties_in_snntorch_as_with_us(plugin_host):
    lif = {"id": "wb_core.lif", "params": {"tau": 2.0, "v_th": 1.0}}
    graph = Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("h1", "wb_core.spiking_linear", {"out_features": 32, "neuron": lif}),
        Node("h2", "wb_core.spiking_linear", {"out_features": 16, "neuron": lif}),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])
    session = Session(Project("ties", graph), plugin_host.registry)
    model = session.build().eval()
    assert to_nir(model, session.project).nodes["h1.lif"].v_threshold[0] == 1.0  # float weights
    for i, node in enumerate(("h1", "h2")):
        quantise(model.layers[node].fc, seed=i)
    exported = to_nir(model, session.project)
    for node in ("h1.lif", "h2.lif"):
        assert np.all(exported.nodes[node].v_threshold == BELOW_ONE)

    x = (torch.rand(8, 16, 1, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    neurons = [model.layers[node].neuron for node in ("h1", "h2")]
    for neuron in neurons:
        neuron.record_membrane = True
    ours = {}
    for node in ("h1", "h2"):
        model.layers[node].register_forward_hook(
            lambda m, a, out, node=node: ours.__setitem__(node, out))
    net = import_from_nir(exported)
    theirs = {"h1": [], "h2": []}
    net.h1_lif.register_forward_hook(lambda m, a, out: theirs["h1"].append(out))
    net.h2_lif.register_forward_hook(lambda m, a, out: theirs["h2"].append(out))
    with torch.no_grad():
        out_ours = model(x)
        out_theirs = snntorch_steps(net, x)
    # exact ties do happen: potentials are multiples of 1/8 halved at each step
    assert sum(int((n.last_membrane == 1.0).sum()) for n in neurons) > 0
    for node in ("h1", "h2"):
        steps = torch.stack(theirs[node]).reshape(x.shape[1], x.shape[0], -1).transpose(0, 1)
        assert torch.equal(steps, ours[node]), node  # every spike, ties included
    assert torch.allclose(out_theirs, out_ours, atol=1e-5, rtol=0)


def test_a_quantised_if_node_fires_at_ties_like_nir_euler_and_comes_back(plugin_host):
    graph = Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 10, "bias": False}),
        Node("spikes", "wb_core.if", {"v_th": 1.0}),
    ])
    session = Session(Project("if_ties", graph), plugin_host.registry)
    model = session.build().eval()
    quantise(model.layers["fc"], seed=3)
    exported = to_nir(model, session.project)
    node = exported.nodes["spikes"]
    assert np.all(node.v_threshold == BELOW_ONE)
    x = (torch.rand(8, 16, 1, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.5).float()
    with torch.no_grad():
        current = model.layers["fc"](x.flatten(2)).numpy().astype(np.float64)
        ours = model(x).numpy()
    # NIR's IF in float64: v += r·x, fires at v > v_threshold
    want = nir_euler(node, current, 1e-4)
    sums = np.cumsum(current, axis=0)  # the potential until the first spike
    assert (sums == 1.0).any()  # exact ties
    assert np.array_equal(ours, want)
    # our importer reads it back (as one block) with the neuron that was exported: v_th = 1
    back, _ = from_nir(exported, plugin_host.registry, (1, 8, 8))
    assert back.node("fc").params["neuron"] == {"id": "wb_core.if", "params": {}}


# -- files from snnTorch, unsupported nodes ---------------------------------------------------


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
def test_imports_a_network_written_by_snntorch(plugin_host, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32),
        snn.Leaky(beta=torch.full((32,), 0.5), threshold=torch.ones(32), init_hidden=True,
                  reset_mechanism="zero"),
        torch.nn.Linear(32, 10),
        snn.Leaky(beta=torch.full((10,), 0.75), threshold=torch.ones(10), init_hidden=True,
                  reset_mechanism="zero", output=True),
    )
    with torch.no_grad():
        net[1].weight.mul_(4.0)  # make the layers fire on 0..1 pixels
        net[3].weight.mul_(4.0)
    nir.write(tmp_path / "snn.nir", export_to_nir(net, torch.rand(1, 1, 8, 8), ignore_dims=[0]))

    spec = plugin_host.registry.get("wb_nir.nir")
    assert spec.formats == ("nir",)
    folder = import_nir(plugin_host, tmp_path / "snn.nir", tmp_path / "proj")
    session = Session(load_project(folder), plugin_host.registry)
    graph = session.project.graph
    assert [n.spec for n in graph.nodes] == ["wb_core.flatten", "wb_core.spiking_linear",
                                             "wb_core.spiking_linear"]
    lif_b = plugin_host.registry.get("wb_core.lif_b")
    for node, lam in zip(graph.nodes[1:], (0.5, 0.75)):
        neuron = checked(plugin_host, node)["neuron"]
        assert neuron["id"] == "wb_core.lif_b"  # beta = lam, reset to zero, fires at u > theta
        assert lif_b.check_params(neuron["params"]) == {**lif_b.defaults(), "lam": lam}
    model = session.build()
    x = encoded_test_batch(session)
    with torch.no_grad():
        ours = model(x)
        snn_utils.reset(net)
        theirs = torch.stack([net(x[t])[0] for t in range(x.shape[0])])  # batched steps
    assert ours.sum() > 0
    assert torch.equal(ours, theirs)


def test_unsupported_nir_nodes_are_named(plugin_host, backend, tmp_path):
    n = 10
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([64])}),
        "dense": nir.Affine(weight=np.zeros((n, 64), np.float32), bias=np.zeros(n, np.float32)),
        "syn": nir.CubaLIF(tau_syn=ones(2e-4, n), tau_mem=ones(2e-4, n), r=ones(1.0, n),
                           v_leak=ones(0.0, n), v_threshold=ones(1.0, n)),
        "gain": nir.Scale(scale=ones(2.0, n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }, edges=[("input", "dense"), ("dense", "syn"), ("syn", "gain"), ("gain", "output")])
    nir.write(tmp_path / "bad.nir", graph)
    finished = catalog.import_file(plugin_host.registry, path=tmp_path / "bad.nir",
                                   out=tmp_path / "proj").result()
    assert finished.status == "failed" and finished.error_kind == "input"
    assert "node 'syn' (CubaLIF)" in finished.error and "node 'gain' (Scale)" in finished.error
    assert not (tmp_path / "proj").exists()

    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    finished = catalog.import_file(plugin_host.registry, path=tmp_path / "junk.nir",
                                   out=tmp_path / "proj").result()
    assert finished.status == "failed" and "not a readable NIR file" in finished.error


# -- the backend through the deploy run ----------------------------------------------------------


def test_backend_deploy_writes_the_file_and_runs_it(mlp, plugin_host, tmp_path):
    spec = plugin_host.registry.get("wb_nir.nir")
    events = list(catalog.deploy(mlp, backend=spec.id, out=tmp_path / "out", limit=40))
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "ok", last.error
    summary = last.summary
    assert summary["target"] == "nir-file" and summary["fit"] == []
    report = summary["report"]
    assert (tmp_path / "out" / "digits_mlp.nir").stat().st_size == report["bytes"] > 0
    assert report["nodes"]["LIF"] == 2
    live = summary["live"]
    assert live["samples"] == 40 and live["agreement_with_original"] == 1.0
    assert live["max_abs_output_difference"] < 1e-4  # batch-size rounding of the matmuls
    assert live["accuracy"] == pytest.approx(summary["estimate"]["accuracy"])
    energy = [e for e in events if isinstance(e, EnergySample) and e.report.get("live")]
    assert [e.report["samples"] for e in energy] == [10, 20, 30, 40]
    assert energy[-1].report["kind"] == "estimate"
    assert energy[-1].report["mean_pj"] == pytest.approx(
        summary["estimate"]["pj_per_sample"], rel=1e-6)
