"""The JapaneseVowels QT-SNN deployed from the Deploy panel, as a user does it (offscreen).

The example (TAE encoder: ternary spikes on the host; ``wb_qt_snn.qt_linear`` layers with
4-bit LSQ weights and ternary LIF neurons) is trained for one epoch through the core, once for
this module; each test opens its own copy the way the app opens a project folder
(``create_window``). The
integer simulator then runs it from the panel and must agree bit for bit with its torch
reference; the FPGA backend's fit check (no yosys, no nextpnr) must find it fits the iCE40
UP5K.
"""

from __future__ import annotations

import re
import shutil

import pytest
from PySide6.QtCore import Qt

from workbench.gui.app import create_window
from workbench.gui.settings import AppSettings
from workbench.testing.fixtures import close_window, train_example

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 60_000
SAMPLES = 40
LEFT = Qt.MouseButton.LeftButton
_SI = {"f": 1e-3, "p": 1.0, "n": 1e3, "µ": 1e6, "m": 1e9, "": 1e12}
_ENERGY = re.compile(r"^(\d+(?:\.\d+)?) ([fpnµm]?)J\b")


def picojoules(text: str) -> float:
    """The energy a label starts with ("1.15 nJ (estimate)") in pJ."""
    found = _ENERGY.match(text)
    assert found, f"no energy at the start of {text!r}"
    return float(found[1]) * _SI[found[2]]


def _click_and_wait(qtbot, window, button) -> str:
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(button, LEFT)
    return finished.args[1]


@pytest.fixture(scope="module")
def trained_vowels_qt_snn(tmp_path_factory):
    return train_example("vowels_qt_snn", tmp_path_factory.mktemp("trained") / "vowels_qt_snn",
                         epochs=1)


@pytest.fixture
def vowels_window(qtbot, tmp_path, trained_vowels_qt_snn):
    folder = shutil.copytree(trained_vowels_qt_snn, tmp_path / "vowels_qt_snn")
    window = create_window(folder, settings=AppSettings(), offer_recovery=False)
    window.ask_save_changes = lambda: "discard"
    window.show()
    qtbot.waitExposed(window)
    yield window
    close_window(window)


def test_the_vowels_qt_snn_deploys_bit_exact_to_the_simulator_from_the_panel(
        vowels_window, qtbot):
    window = vowels_window
    assert window.doc.project.name == "vowels_qt_snn"
    assert window.doc.project.encoder.id == "wb_qt_snn.tae"
    panel = window.show_deploy_panel()
    assert panel.select_backend("wb_sim.simulator")
    panel.samples_spin.setValue(SAMPLES)

    assert _click_and_wait(qtbot, window, panel.check_button) == "ok"
    assert panel.fit_label.text().startswith("✓ The network fits cpu")

    assert _click_and_wait(qtbot, window, panel.deploy_button) == "ok", \
        panel.status_label.text()
    assert panel.status_label.text().startswith("Deployed to cpu")
    assert all(status == "done" for _, status in panel.step_rows())
    # what the user reads: the integer simulator agreed bit for bit with the torch reference
    card = panel.summary_rows()
    assert card["Checked"] == f"bit-exact with the reference on {SAMPLES} samples"
    report = panel.report_rows()
    assert report["golden.bit_exact"] == "True" and report["golden.samples"] == str(SAMPLES)
    assert report["input_kind"] == "spikes"  # the TAE's ternary spikes, step by step
    # every test sample the spin box asked for ran, each with a positive energy figure
    assert panel.samples_done() == SAMPLES and panel.trace_points() == SAMPLES
    readout = panel.readout()
    assert readout["samples"] == f"{SAMPLES} / {SAMPLES}"
    accuracy = f"{100 * float(report['accuracy.integer']):.1f} %"
    assert readout["accuracy"] == accuracy
    assert card["Accuracy"] == f"{accuracy} on {SAMPLES} test samples"
    assert readout["provenance"].startswith("Estimate — wb_sim event counts")
    mean = picojoules(readout["mean"])
    assert mean > 0 and readout["mean"].endswith("(estimate)")
    assert picojoules(readout["total"]) == pytest.approx(SAMPLES * mean, rel=0.01)
    assert picojoules(card["Energy"]) == pytest.approx(mean, rel=0.01)
    assert "estimate" in readout["estimate"] and picojoules(readout["estimate"]) > 0


def test_the_fpga_fit_check_finds_the_vowels_qt_snn_fits_the_ice40(vowels_window, qtbot):
    window = vowels_window
    panel = window.show_deploy_panel()
    assert panel.select_backend("wb_fpga.fpga") and panel.select_target("ice40-up5k")
    assert _click_and_wait(qtbot, window, panel.check_button) == "ok"
    assert panel.fit_label.text().startswith("✓ The network fits ice40-up5k"), \
        panel.fit_rows()
    assert not [row for row in panel.fit_rows() if row.startswith("error")]
    assert panel.status_label.text() == "Fit checked"
    # a check only: no tool ran and nothing was written
    assert not panel.step_rows()
    assert not (window.doc.project.folder / "deploy").exists()
