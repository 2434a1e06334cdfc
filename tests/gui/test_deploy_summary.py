"""The Deploy panel reads well: a summary card first, the report grouped, every fit problem in
full, and a bar that moves within a long step with an estimate of what is left.

A real FPGA deployment takes minutes (synthesis, place and route), too slow for a GUI test: the
panel is fed the summary of a real one instead, recorded from ``snn-workbench deploy`` of the
4-bit digits_mlp to the iCE40 UP5K (``tests/fixtures/fpga_deploy_summary.json``, paths made
relative). The integer-simulator deployment is driven for real in test_compress_deploy.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.runs.events import Progress, RunFinished, StepStarted
from workbench.gui.panels import deploy as deploy_module
from workbench.gui.panels.deploy import DeployPanel
from workbench.gui.run_controller import RunController
from workbench.gui.run_owner import RunContext

pytestmark = pytest.mark.gui
RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "fpga_deploy_summary.json"
NBSP = "\u00a0"


class NoBackends:
    """A registry without backends: the panel only shows the events it is given."""

    def of_kind(self, _kind):
        return []

    def get(self, _spec_id):
        return None


@pytest.fixture
def panel(qtbot):
    controller = RunController()
    made = DeployPanel(NoBackends(), controller, lambda run, state: run.id,
                       lambda: RunContext(None, None, "not needed"))
    qtbot.addWidget(made)
    made.resize(1400, 900)
    made.show()
    qtbot.waitExposed(made)
    return made


def _as_if_running(panel, kind="deploy", run_id="r"):
    panel._run_id, panel._run_kind = run_id, kind


def test_the_summary_card_leads_with_resources_fmax_latency_and_energy(panel, qtbot):
    summary = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert not panel.summary_card.isVisible() and panel.summary_rows() == {}
    _as_if_running(panel)
    panel.controller.run_event.emit(RunFinished("r", "ok", summary=summary))

    card = panel.summary_rows()
    assert card["LUTs"] == f"2{NBSP}676 / 5{NBSP}280 (51 %)"
    assert card["Block RAM"] == "16 / 30 (53 %)" and card["SPRAM"] == "4 / 4 (100 %)"
    assert card["Fmax"] == "24.3 MHz; clocked at 24.3 MHz"
    assert card["Latency"] == f"5{NBSP}106 cycles (mean; 4{NBSP}047–6{NBSP}497) = 210 µs"
    assert card["Throughput"] == f"4{NBSP}759 samples/s"
    assert card["Energy"] == "3.32 µJ per sample (estimate)"
    assert card["Accuracy"] == "93.3 % on 60 test samples"
    assert card["Checked"] == "bit-exact with the reference on 5 samples"
    # what is on screen: the card above the live plot, a bar per resource, the source named
    assert panel.summary_card.isVisible()
    card_bottom = panel.summary_card.mapTo(panel, panel.summary_card.rect().bottomLeft()).y()
    assert card_bottom <= panel.plot_widget.mapTo(panel, panel.plot_widget.rect().topLeft()).y()
    bar = panel.summary_card.bars["LUTs"]
    assert (bar.value(), bar.maximum()) == (2676, 5280)
    texts = [w.text() for w in panel.summary_card.findChildren(type(panel.fit_label))]
    assert any(t.startswith("Source: iCE40 UP5K core rail") and "ice40_power" in t
               for t in texts)
    assert not [t for t in texts if "e+0" in t]  # never "2.54e+03 µJ"

    # the details: a few groups, the headline's open, every value still there
    groups = panel.report_tree.groups()
    assert list(groups)[:3] == ["Resources", "Timing", "Energy"]
    assert all(groups[g] for g in ("Resources", "Timing", "Energy"))
    assert not groups["Files"] and not groups["Network"]
    assert len(groups) <= 8
    rows = panel.report_rows()
    assert len(rows) > 100 and rows["fmax_mhz"].startswith("24.33")
    assert rows["bitstream"].endswith("snn_core.bin")
    assert panel.details.currentWidget() is panel.report_tree

    panel.reset_for_project()  # another project: nothing of this deployment stays
    assert not panel.summary_card.isVisible() and panel.summary_rows() == {}
    assert panel.report_rows() == {} and panel.report_tree.topLevelItemCount() == 0


def test_every_fit_problem_is_shown_in_full_and_wraps(panel, qtbot):
    issues = [{"node": f"layer{i}", "severity": "error",
               "message": f"problem {i}: " + "a long explanation of what does not fit " * 6}
              for i in range(7)]
    issues.append({"node": "", "severity": "warning", "message": "spikes are estimated"})
    _as_if_running(panel, "check")
    panel.controller.run_event.emit(RunFinished("r", "ok", summary={"fit": issues}))

    assert "does not fit" in panel.fit_label.text() and "7 problem(s)" in panel.fit_label.text()
    assert len(panel.fit_rows()) == 8
    shown = panel.fit_problems.text()
    for issue in issues:
        assert issue["message"] in shown  # in full: no row cut off
    assert panel.fit_problems.isVisible() and panel.fit_problems.wordWrap()
    column = panel.fit_problems.parentWidget()
    scroll = column.parentWidget().parentWidget()  # the settings column's scroll area
    qtbot.waitUntil(lambda: panel.fit_problems.width() <= scroll.viewport().width())
    assert not scroll.horizontalScrollBar().isVisible()
    # the label grew to hold all eight problems (a list box showed four lines)
    line = panel.fit_problems.fontMetrics().height()
    assert panel.fit_problems.height() >= 8 * line


def test_a_long_step_moves_the_bar_and_says_what_is_left(panel, qtbot, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(deploy_module, "_now", lambda: clock[0])
    emit = panel.controller.run_event.emit
    _as_if_running(panel)
    emit(StepStarted("r", "simulating the core (Amaranth)"))
    emit(Progress("r", 2, 8, message="simulating the core (Amaranth): 10/50"))
    clock[0] += 20.0
    panel._show_eta()  # the panel's clock ticks every second
    # within the step: 2 steps done of 8, and a fifth of the third
    assert panel.progress.value() == 2200 and panel.progress.maximum() == 8000
    assert panel.eta_label.text() == ("simulating the core (Amaranth): 0:20 elapsed, about "
                                      "1:20 left (20 %)")
    emit(Progress("r", 2, 8, message="simulating the core (Amaranth): 40/50"))
    assert panel.progress.value() == 2800

    # a tool step has no counter: the first time, only the elapsed time, said honestly
    emit(StepStarted("r", "yosys: synthesising"))
    emit(Progress("r", 4, 8, message="yosys: synthesising (0 s)"))
    clock[0] += 30.0
    panel._show_eta()
    assert panel.eta_label.text() == ("yosys: synthesising: 0:30 elapsed (no estimate: the "
                                      "first time this step runs here)")
    assert panel.progress.value() == 4000
    emit(RunFinished("r", "ok", summary={}))
    assert panel.eta_label.text() == ""

    # the next deployment to the same target: the last duration is the estimate
    _as_if_running(panel, run_id="r2")
    emit(StepStarted("r2", "yosys: synthesising"))
    emit(Progress("r2", 4, 8, message="yosys: synthesising (0 s)"))
    clock[0] += 12.0
    panel._show_eta()
    assert panel.eta_label.text() == ("yosys: synthesising: 0:12 elapsed, about 0:18 left "
                                      "(it took 0:30 last time)")
    assert panel.progress.value() == 4400


def test_export_nir_of_an_untrained_project_says_so_before_asking_for_a_file(
        make_main_window, tmp_path, monkeypatch):
    from workbench.gui import exchange_actions
    from workbench.testing.fixtures import make_tiny_project

    asked = []
    monkeypatch.setattr(exchange_actions.QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: asked.append(args) or ("", ""))
    window = make_main_window(make_tiny_project(tmp_path / "tiny"))
    window.act_export_nir.trigger()
    assert "not trained" in window.last_message
    assert asked == [] and not window.controller.busy
