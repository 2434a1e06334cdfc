"""File ▸ Import NIR…'s time-step field: a value reaches the import, blank means the file's (and
the warning for a file that records none is shown), text that is no number is refused."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QLineEdit

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 120_000


@pytest.fixture
def lif_file(tmp_path):
    """Affine -> LIF (tau = 2, threshold 1) with no dt recorded, as Norse writes one."""
    n = 10
    weight = np.random.default_rng(0).normal(size=(n, 64)).astype(np.float32)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([64])}),
        "0": nir.Affine(weight=weight, bias=np.zeros(n, np.float32)),
        "1": nir.LIF(tau=np.full(n, 2.0), r=np.ones(n), v_leak=np.zeros(n),
                     v_threshold=np.ones(n), v_reset=np.zeros(n)),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }, edges=[("input", "0"), ("0", "1"), ("1", "output")])
    nir.write(tmp_path / "lif.nir", graph)
    return tmp_path / "lif.nir"


def answer_with(monkeypatch, path, dt_text):
    """The import's file dialog picks ``path`` with ``dt_text`` typed into its dt field."""
    seen = {}

    def fake_exec(dialog):
        field = dialog.findChild(QLineEdit, "dt_field")
        seen["placed"] = field is not None and dialog.layout().indexOf(field) >= 0
        dialog.setDirectory(str(path.parent))
        dialog.selectFile(path.name)
        field.setText(dt_text)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(QFileDialog, "exec", fake_exec)
    return seen


def imported_neuron(window):
    registry = window.host.registry
    node = window.doc.project.graph.nodes[-1]
    neuron = registry.get(node.spec).check_params(node.params)["neuron"]
    return neuron["id"], registry.get(neuron["id"]).check_params(neuron["params"])


def test_the_dt_field_reaches_the_import(make_main_window, qtbot, monkeypatch, lif_file):
    window = make_main_window()
    seen = answer_with(monkeypatch, lif_file, "1")
    with qtbot.waitSignal(window.exchange.finished, timeout=RUN_TIMEOUT) as done:
        window.exchange.import_dialog()
    assert done.args == ["import", True] and seen["placed"]
    spec_id, params = imported_neuron(window)
    # dt = 1, tau = 2: lam = 1 - dt/tau, theta = v_threshold / (dt/tau)
    assert spec_id == "wb_core.lif_b" and (params["lam"], params["theta"]) == (0.5, 2.0)
    assert "warning" not in window.statusBar().currentMessage()


def test_a_blank_field_reads_the_files_dt_and_shows_the_warning(make_main_window, qtbot,
                                                                monkeypatch, lif_file):
    window = make_main_window()
    answer_with(monkeypatch, lif_file, "")
    with qtbot.waitSignal(window.exchange.finished, timeout=RUN_TIMEOUT) as done:
        window.exchange.import_dialog()
    assert done.args == ["import", True]
    _, params = imported_neuron(window)
    assert params["lam"] == pytest.approx(1 - 1e-4 / 2, rel=1e-7)  # the default dt, 1e-4
    message = window.statusBar().currentMessage()
    assert "warning: the file records no time step" in message and "0.0001" in message


def test_text_that_is_no_number_is_refused(make_main_window, monkeypatch, lif_file):
    window = make_main_window()
    answer_with(monkeypatch, lif_file, "1 ms")
    window.exchange.import_dialog()
    assert not window.controller.busy
    assert "time step dt" in window.last_message and "not a number" in window.last_message
