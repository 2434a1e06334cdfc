"""The Euler step ``dt`` a NIR file is read with: given (``--dt``, the backend's ``dt``), else the
one the file records, else 1e-4 with a warning; and a Norse network exported at dt = 1 imported
and run beside Norse itself (skipped where Norse is not installed: it is not a test dependency,
since its package requires torchvision)."""

from __future__ import annotations

import io
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from workbench.core.model.errors import WorkbenchError
from workbench.core.persistence.project_files import load_project
from workbench.core.runs import catalog
from workbench.core.runs.events import Log, RunFinished
from workbench.core.runs.session import Session

N_IN, N_HIDDEN, N_OUT = 64, 16, 10  # the embedded digits: 8x8 pixels, 10 classes


def norse_like_graph(metadata=None, neuron="LIF"):
    """Affine -> LIF -> Affine -> LIF as Norse's ``to_nir`` writes it (numbered nodes, tau =
    dt / tau_mem_inv with tau_mem_inv = 0.5, no dt in the file)."""
    rng = np.random.default_rng(0)

    def cells(n):
        if neuron == "IF":
            return nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
        return nir.LIF(tau=np.full(n, 2.0), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))

    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([N_IN])}),
        "0": nir.Affine(weight=rng.normal(size=(N_HIDDEN, N_IN)).astype(np.float32),
                        bias=np.zeros(N_HIDDEN, np.float32)),
        "1": cells(N_HIDDEN),
        "2": nir.Affine(weight=rng.normal(size=(N_OUT, N_HIDDEN)).astype(np.float32),
                        bias=np.zeros(N_OUT, np.float32)),
        "3": cells(N_OUT),
        "output": nir.Output(output_type={"output": np.array([N_OUT])}),
    }, edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "output")],
        metadata=metadata or {})


def import_events(host, path, out, params=None):
    """The import run's events (the last is its RunFinished, checked to be ok)."""
    events = list(catalog.import_file(host.registry, path=path, out=out, params=params))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "ok", events[-1].error
    return events


def warnings_of(events):
    return [e.message for e in events if isinstance(e, Log) and e.level == "warning"]


def neurons(host, folder: Path):
    """Each imported block's neuron choice, with every parameter (defaults filled in)."""
    project = load_project(folder)
    found = []
    for node in project.graph.nodes:
        if node.spec == "wb_core.spiking_linear":
            neuron = host.registry.get(node.spec).check_params(node.params)["neuron"]
            found.append((neuron["id"], host.registry.get(neuron["id"]).check_params(
                neuron["params"])))
    return found


def test_a_given_dt_is_used_to_read_the_time_constants(plugin_host, tmp_path):
    nir.write(tmp_path / "norse.nir", norse_like_graph())
    events = import_events(plugin_host, tmp_path / "norse.nir", tmp_path / "proj", {"dt": 1.0})
    assert warnings_of(events) == []
    # NIR's Euler step at dt = 1, tau = 2: a = 1 - dt/tau = 0.5, b = r·dt/tau = 0.5; our LIF B
    # steps u = lam·u + x with the membrane scaled by 1/b, so theta = v_threshold / b = 2.
    for spec_id, params in neurons(plugin_host, tmp_path / "proj"):
        assert spec_id == "wb_core.lif_b"
        assert (params["lam"], params["theta"]) == (0.5, 2.0)
    assert "dt = 1 s, as given" in load_project(tmp_path / "proj").description


def test_without_any_dt_the_default_is_assumed_and_said(plugin_host, tmp_path):
    nir.write(tmp_path / "norse.nir", norse_like_graph())
    events = import_events(plugin_host, tmp_path / "norse.nir", tmp_path / "proj")
    [warning] = warnings_of(events)
    assert "records no time step" in warning and "dt = 0.0001 s" in warning
    for spec_id, params in neurons(plugin_host, tmp_path / "proj"):
        # a = 1 - 1e-4/2, b = 1e-4/2: the neuron barely leaks and needs 2e4 to fire
        assert spec_id == "wb_core.lif_b"
        assert params["lam"] == pytest.approx(0.99995, rel=1e-7)
        assert params["theta"] == pytest.approx(20000.0, rel=1e-7)

    # an IF steps the same whatever dt is: nothing to warn about
    nir.write(tmp_path / "if.nir", norse_like_graph(neuron="IF"))
    assert warnings_of(import_events(plugin_host, tmp_path / "if.nir", tmp_path / "if")) == []


def test_the_files_dt_is_read_and_a_given_one_wins(plugin_host, tmp_path):
    nir.write(tmp_path / "dt1.nir", norse_like_graph({"dt": 1.0}))
    events = import_events(plugin_host, tmp_path / "dt1.nir", tmp_path / "from_file")
    assert warnings_of(events) == []
    assert {(p["lam"], p["theta"]) for _, p in neurons(plugin_host, tmp_path / "from_file")} \
        == {(0.5, 2.0)}
    import_events(plugin_host, tmp_path / "dt1.nir", tmp_path / "given", {"dt": 0.5})
    # dt = 0.5, tau = 2: a = 0.75, b = 0.25, theta = 1 / 0.25
    assert {(p["lam"], p["theta"]) for _, p in neurons(plugin_host, tmp_path / "given")} \
        == {(0.75, 4.0)}


def test_a_bad_dt_is_named_before_anything_runs(plugin_host, tmp_path):
    nir.write(tmp_path / "norse.nir", norse_like_graph())
    for bad, why in ((-1.0, "below the minimum"), (float("nan"), "finite")):
        with pytest.raises(WorkbenchError) as err:
            catalog.import_file(plugin_host.registry, path=tmp_path / "norse.nir",
                                out=tmp_path / "proj", params={"dt": bad})
        assert err.value.where == "dt" and why in err.value.message
    assert not (tmp_path / "proj").exists()


def test_import_nir_takes_dt_on_the_command_line(plugin_host, tmp_path, capsys):
    from workbench.cli import EXIT_INPUT, main

    nir.write(tmp_path / "norse.nir", norse_like_graph())
    code = main(["import-nir", str(tmp_path / "norse.nir"), str(tmp_path / "bad"), "--dt", "-1"],
                out=io.StringIO())
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == EXIT_INPUT and len(errors) == 1
    assert "--dt: -1.0 is below the minimum" in errors[0]
    code = main(["import-nir", str(tmp_path / "norse.nir"), str(tmp_path / "proj"), "--dt", "1"],
                out=io.StringIO())
    assert code == 0, capsys.readouterr().err
    assert {(p["lam"], p["theta"]) for _, p in neurons(plugin_host, tmp_path / "proj")} == \
        {(0.5, 2.0)}


# -- Norse ---------------------------------------------------------------------------------------
T, BATCH = 12, 8


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
def test_a_norse_network_exported_at_dt_1_runs_as_in_norse(plugin_host, tmp_path):
    """Spikes equal Norse's own run, all of them. Norse steps ``v + dt/tau·(i - v)``, we step
    ``lam·u + x`` on a membrane scaled by 1/b: equal in exact arithmetic, a few float32
    roundings apart in practice, which can flip a spike only where a potential lies within
    about 1e-6 of the threshold; the test checks that none lies within 1e-4 of it."""
    norse = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir as norse_to_nir

    torch.manual_seed(0)

    def cell(n):
        return norse.LIFBoxCell(norse.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 0.5), v_th=torch.ones(n), v_leak=torch.zeros(n)),
            dt=1.0)

    net = norse.SequentialState(torch.nn.Linear(N_IN, N_HIDDEN), cell(N_HIDDEN),
                                torch.nn.Linear(N_HIDDEN, N_OUT), cell(N_OUT))
    with torch.no_grad():
        net[0].weight.mul_(4.0)  # fire on 0..1 inputs
        net[2].weight.mul_(4.0)
    graph = norse_to_nir(net, torch.rand(N_IN), dt=1.0)
    nir.write(tmp_path / "norse.nir", graph)
    graph.metadata = {"dt": 1.0}  # Norse records no dt; a writer that does, as NIR allows
    nir.write(tmp_path / "norse_dt.nir", graph)

    x = torch.rand(T, BATCH, N_IN)
    hidden_theirs = []
    net[1].register_forward_hook(lambda m, a, out: hidden_theirs.append(out[0]))
    state, theirs = None, []
    with torch.no_grad():
        for t in range(T):
            out, state = net(x[t], state)
            theirs.append(out)
    theirs, hidden_theirs = torch.stack(theirs), torch.stack(hidden_theirs)
    assert hidden_theirs.sum() > 0 and theirs.sum() > 0

    for name, params in (("norse.nir", {"dt": 1.0}), ("norse_dt.nir", None)):
        out = tmp_path / name.replace(".nir", "")
        assert warnings_of(import_events(plugin_host, tmp_path / name, out, params)) == []
        hidden, ours, gap = run_imported(plugin_host, out, x.reshape(T, BATCH, 1, 8, 8))
        assert torch.equal(hidden, hidden_theirs), name
        assert torch.equal(ours, theirs), name
        assert gap > 1e-4, name


def run_imported(host, folder, x):
    """The imported project's hidden and output spikes on ``x``, and the smallest distance of a
    potential from its threshold."""
    session = Session(load_project(folder), host.registry)
    model = session.build().eval()
    blocks = [model.layers[n.id] for n in session.project.graph.nodes
              if n.spec == "wb_core.spiking_linear"]
    for block in blocks:
        block.neuron.record_membrane = True
    hidden = []
    blocks[0].register_forward_hook(lambda m, a, out: hidden.append(out))
    with torch.no_grad():
        out = model(x)
    gap = min(float((b.neuron.last_membrane - b.neuron.dynamics.v_th).abs().min())
              for b in blocks)
    return hidden[0], out, gap
