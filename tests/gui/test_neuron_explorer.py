"""The neuron explorer (issue #12): a neuron picked in the palette or the editor shows its step
and ramp responses and its f–I curve, and an edit in the inspector redraws them."""

from __future__ import annotations

import csv

import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDoubleSpinBox

from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Project
from workbench.core.model.specs import NeuronSpec
from workbench.gui.document import ProjectDocument
from workbench.gui.views.neuron_explorer import EMPTY_HINT, NeuronExplorerView
from workbench.testing.fixtures import tiny_graph

pytestmark = pytest.mark.gui


def lif_project() -> Project:
    return Project("lif net", Graph.chain([
        Node("flat", "wb_core.flatten"),
        Node("fc", "wb_core.linear", {"out_features": 8}),
        Node("lif", "wb_core.lif"),
        Node("out", "wb_core.linear", {"out_features": 10}),
    ]), time_steps=2)


def _type_into(qtbot, spin: QDoubleSpinBox, text: str) -> None:
    """Replace the spin box's text and press Enter, as a user does."""
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def test_raising_the_threshold_in_the_inspector_moves_the_f_i_onset_up(make_main_window, qtbot):
    window = make_main_window(lif_project())
    window.docks["neuron_explorer"].raise_()  # the user opens the explorer's tab
    explorer = window.neuron_explorer
    assert explorer.hint_text() == EMPTY_HINT

    window.editor.select_node("lif")
    qtbot.waitUntil(lambda: explorer.onset_current is not None, timeout=5000)
    before = explorer.onset_current
    assert 1.0 <= before < 1.1  # LIF (A) at V_th = 1 fires from a constant input of 1 up
    assert "node 'lif'" in explorer.title_text() and explorer.hint_text() == ""

    spin = window.inspector.findChild(QDoubleSpinBox, "param_v_th")
    assert spin is not None and spin.value() == 1.0
    _type_into(qtbot, spin, "1.5")
    assert window.doc.project.graph.node("lif").params["v_th"] == 1.5
    qtbot.waitUntil(lambda: explorer.onset_current != before, timeout=5000)
    assert 1.5 <= explorer.onset_current < 1.6
    assert "threshold 1.5" in explorer.readout_text()
    assert explorer.step_plot.threshold.value() == 1.5  # the line moved with it

    # undo is an edit too: the explorer follows it back
    window.act_undo.trigger()
    qtbot.waitUntil(lambda: explorer.onset_current == before, timeout=5000)

    # a neuron picked in the palette is shown with its defaults
    tree = window.palette.tree
    item = window.palette.item_for("wb_q_snn.qlif")
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)  # as wide as the longest name: click near its start
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(rect.left() + 10, rect.center().y()))
    assert tree.currentItem() is item
    qtbot.waitUntil(lambda: explorer.response.spec_id == "wb_q_snn.qlif", timeout=5000)
    assert "palette" in explorer.title_text()
    # LIF (B) fires from θ(1 − λ) = 0.5 up; Q-SNN's tanh-squashed state needs a bit more
    assert 0.5 < explorer.onset_current < 1.0
    x, y = explorer.fi_curve.getData()
    assert len(x) == len(y) > 10 and y[-1] > 0
    assert len(explorer.step_plot.spikes.data) > 0  # spike markers on the step response

    tree.setCurrentItem(window.palette.item_for("wb_core.linear"))  # not a neuron: kept
    qtbot.wait(150)
    assert explorer.response.spec_id == "wb_q_snn.qlif"


class _NeedsImages(torch.nn.Module):
    def forward(self, x):
        raise ValueError(f"expects [T, B, C, H, W], got {list(x.shape)}\nmore detail")


def test_a_neuron_that_cannot_run_alone_shows_one_line(plugin_host, qtbot):
    plugin_host.registry.add("toy", NeuronSpec(id="toy.images", display_name="Image neuron",
                                               factory=_NeedsImages))
    doc = ProjectDocument(lif_project(), plugin_host.registry)
    explorer = NeuronExplorerView(doc)
    qtbot.addWidget(explorer)
    explorer.show()
    explorer.show_spec("toy.images")
    qtbot.waitUntil(lambda: explorer.hint_text() != EMPTY_HINT, timeout=5000)
    hint = explorer.hint_text()
    assert hint.startswith("Image neuron: cannot be run on its own") and "\n" not in hint
    assert "expects [T, B, C, H, W]" in hint and explorer.onset_current is None


def test_a_spiking_blocks_neuron_is_explored_and_a_hidden_explorer_waits(plugin_host, qtbot,
                                                                        tmp_path):
    doc = ProjectDocument(Project("tiny", tiny_graph(hidden=8)), plugin_host.registry)
    explorer = NeuronExplorerView(doc)
    qtbot.addWidget(explorer)
    explorer.show_node("hidden")  # a spiking linear block: its neuron choice is explored
    qtbot.wait(150)
    assert explorer.response is None  # hidden behind another tab: nothing computed yet
    explorer.show()
    qtbot.waitUntil(lambda: explorer.response is not None, timeout=5000)
    assert explorer.response.spec_id == "wb_core.lif"
    assert "node 'hidden', its neuron" in explorer.title_text()

    doc.set_node_param("hidden", "neuron", {"id": "wb_core.if", "params": {"v_th": 2.0}})
    qtbot.waitUntil(lambda: explorer.response.spec_id == "wb_core.if", timeout=5000)
    assert explorer.response.threshold == 2.0
    explorer.show_node("flat")  # a node without a neuron leaves the explorer as it is
    qtbot.wait(150)
    assert explorer.response.spec_id == "wb_core.if"

    with open(explorer.export_csv(tmp_path / "if.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    fi = [r for r in rows if r["series"] == "f-I (spikes/step)"]
    assert len(fi) == len(explorer.response.currents)
    assert float(fi[-1]["input"]) == pytest.approx(6.0)  # 3 × the threshold of 2
    assert {r["series"] for r in rows} == {"step", "ramp", "f-I (spikes/step)"}
