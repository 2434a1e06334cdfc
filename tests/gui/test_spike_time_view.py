"""The Spike times tab: a time-to-first-spike network's firing times for the probed sample (a
sorted raster and a histogram per layer, the output race with its winner), and a one-line
message for a spike-train network.

The network comes from a toy plugin (``tests/fixtures/ttfs_toy_plugin.py``) fed by the real
``wb_core.ttfs`` encoder: flatten → 16 time neurons → 10 output time neurons, hidden neuron 0
and classes 2 and 7 silenced by their weights.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from workbench.core.persistence.project_files import load_project
from workbench.gui.views.spike_times import TRAINS_HINT
from workbench.testing.fixtures import make_tiny_project

pytestmark = pytest.mark.gui

SILENT_CLASSES = [2, 7]  # the toy project's silenced outputs (tests/conftest.py)


@pytest.fixture
def host(ttfs_toy):
    return ttfs_toy.host()


def ttfs_project(folder: Path, ttfs_toy, host):
    """The toy TTFS project (tests/conftest.py) with its silenced weights saved."""
    ttfs_toy.session(folder, host)
    return load_project(folder)


def expected_times(session, index):
    x, y = session.data().test.batch(np.array([index]))
    layers = session.model.layers
    with torch.no_grad():
        hidden = layers["hidden"](layers["flat"](session.encoder()(x)))
        out = layers["out"](hidden)
    return {"hidden": hidden[0, 0].numpy(), "out": out[0, 0].numpy()}, int(y[0])


def show_sample(window, qtbot, index):
    """The user picks test sample ``index`` and clicks Show."""
    window.sample_spin.setValue(index)
    [show] = [b for b in window.probes.bar.findChildren(QPushButton) if b.text() == "Show"]
    qtbot.mouseClick(show, Qt.MouseButton.LeftButton)


def test_the_spike_times_tab_shows_each_layers_times_and_the_output_race(make_main_window,
                                                                         qtbot, host, ttfs_toy,
                                                                         tmp_path):
    window = make_main_window(ttfs_project(tmp_path / "ttfs", ttfs_toy, host), host=host)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=10_000)
    window.docks["spike_times"].raise_()  # the user opens the Spike times tab
    qtbot.waitUntil(lambda: window._lazy["spike_times"].built is not None, timeout=3000)
    view = window.spike_times
    show_sample(window, qtbot, 5)
    qtbot.waitUntil(lambda: view.title_text().startswith("Sample #5"), timeout=5000)
    expected, label = expected_times(window.session, 5)

    assert view.hint_text() == ""
    assert view.layers() == ["hidden", "out"]
    view.set_layer("hidden")
    times, ranks = view.raster_points()
    hidden = expected["hidden"]
    assert np.allclose(times, np.sort(hidden[np.isfinite(hidden)]))  # one dot per fired neuron
    assert times.size == 15 and np.array_equal(ranks, np.arange(15))
    assert "15 of 16 neurons fired, 1 silent" in view.plot_title("raster")
    assert int(view.histogram()[1].sum()) == 15
    assert "t_max = 2" in view.raster_plot.getAxis("bottom").labelText

    view.set_layer("out")  # switching layers redraws the raster
    assert np.allclose(view.raster_points()[0], np.sort(expected["out"][np.isfinite(
        expected["out"])]))
    assert "8 of 10 neurons fired, 2 silent" in view.plot_title("raster")

    widths, kinds = view.race_bars()
    out = expected["out"]
    winner = int(np.argmin(out))
    assert len(widths) == 10 and kinds.count("winner") == 1
    assert kinds.index("winner") == winner == int(view.title_text().split("predicted ")[1])
    assert [k for k, kind in enumerate(kinds) if kind == "silent"] == SILENT_CLASSES
    fired = [k for k in range(10) if k not in SILENT_CLASSES]
    assert np.allclose(widths[fired], out[fired])
    assert all(widths[k] > out[fired].max() for k in SILENT_CLASSES)  # drawn to the right edge
    marks = view.race_marks()
    assert "winner" in marks[winner] and all("silent" in marks[k] for k in SILENT_CLASSES)
    assert "label" in marks[label]
    assert view.race_text() == (f"class {winner} fired first at t = {out[winner]:.3g} "
                                f"(label {label})")

    with open(view.export_csv(tmp_path / "times.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["layer", "neuron", "time"]
    hidden_rows = [r for r in rows[1:] if r[0] == "hidden"]
    assert len(hidden_rows) == 16 and hidden_rows[0][2] == ""  # silent: no time
    assert float(hidden_rows[3][2]) == pytest.approx(hidden[3])
    race_rows = [r for r in rows[1:] if r[0] == "output race"]
    assert [r[2] == "" for r in race_rows] == [k in SILENT_CLASSES for k in range(10)]
    assert float(race_rows[winner][2]) == pytest.approx(out[winner])
    assert math.isfinite(out[winner])


def test_a_spike_train_network_shows_one_line_instead(make_main_window, qtbot, tmp_path):
    window = make_main_window(make_tiny_project(tmp_path / "tiny"))
    window.docks["spike_times"].raise_()
    qtbot.waitUntil(lambda: window._lazy["spike_times"].built is not None, timeout=3000)
    view = window.spike_times
    show_sample(window, qtbot, 1)
    qtbot.waitUntil(lambda: view.title_text().startswith("Sample #1"), timeout=5000)
    assert view.hint_text() == TRAINS_HINT
    assert view.layers() == []


@pytest.mark.slow
def test_digits_stdbp_trained_one_epoch_shows_a_time_per_neuron_the_earliest_wins_and_deploys(
        make_main_window, qtbot, plugin_host, tmp_path):
    """The issue's check on the real plugin: ``digits_stdbp`` (ReL-PSP layers, STDBP) trained
    one epoch; every neuron has one time (or is silent) and the predicted class is the output
    that fired first."""
    from workbench.testing.fixtures import train_example

    folder = train_example("digits_stdbp", tmp_path / "digits_stdbp", epochs=1, host=plugin_host)
    window = make_main_window(load_project(folder), host=plugin_host)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=20_000)
    window.docks["spike_times"].raise_()
    qtbot.waitUntil(lambda: window._lazy["spike_times"].built is not None, timeout=3000)
    view = window.spike_times
    show_sample(window, qtbot, 4)
    qtbot.waitUntil(lambda: view.title_text().startswith("Sample #4"), timeout=10_000)
    assert view.layers() == ["hidden1", "hidden2", "out"]
    with open(view.export_csv(tmp_path / "times.csv"), newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    for layer, neurons in (("hidden1", 256), ("hidden2", 256), ("out", 10)):
        times = [r[2] for r in rows if r[0] == layer]
        assert len(times) == neurons  # one time per neuron ("" for a silent one)
        view.set_layer(layer)
        assert view.raster_points()[0].size == sum(t != "" for t in times)
    _widths, kinds = view.race_bars()
    out = np.array([float(r[2]) if r[2] else np.inf for r in rows if r[0] == "out"])
    predicted = int(view.title_text().split("predicted ")[1])
    assert kinds.index("winner") == predicted == int(np.argmin(out))
    assert np.isfinite(out[predicted])

    # the same trained network deployed from the Deploy panel to the integer simulator: a
    # priority queue of spike times, bit-exact with the dense closed form
    panel = window.show_deploy_panel()
    assert panel.select_backend("wb_sim.simulator")
    panel.samples_spin.setValue(24)
    with qtbot.waitSignal(window.controller.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(panel.deploy_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "ok", panel.status_label.text()
    assert panel.summary_rows()["Checked"] == "bit-exact with the reference on 24 samples"
    report = panel.report_rows()
    assert report["kind"] == "time-to-first-spike" and report["golden.bit_exact"] == "True"
    assert panel.samples_done() == 24
