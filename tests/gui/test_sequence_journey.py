"""The Core v2 contracts in the app, as a user meets them: a variable-length sequence dataset,
an encoder that sets T and emits ternary spikes, and a learning rule whose own metric
(``backward_events``) appears in the training panel."""

from __future__ import annotations

import json
import shutil

import pytest
from PySide6.QtCore import Qt

from workbench.core.persistence.project_files import load_project
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import toy_project_dir

pytestmark = pytest.mark.gui
RUN_TIMEOUT = 180_000


def test_train_and_probe_a_sequence_project_in_the_window(make_main_window, qtbot, tmp_path):
    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    window = make_main_window(load_project(folder), host=host)
    window.doc.set_setting("training.epochs", 2)

    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(window.training.train_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "ok", window.last_message

    # the rule's own metric: a curve in the training panel and a figure in its status line
    metrics = window.training.metrics
    metrics.flush()
    assert metrics.extra_keys()[0] == "backward_events"  # the rule's own, then BPTT's
    assert metrics.shown_family() == "backward events"
    steps, values = metrics.series()["backward_events"]
    assert len(values) == 2 and all(v > 0 for v in values)
    assert "backward events" in window.training.status.text() or \
        "backward events" in metrics.title_label.text()
    # ... and in the run's record on disk
    record = next((folder / "runs").glob("train-*.jsonl")).read_text().splitlines()
    epochs = [json.loads(line) for line in record if '"epoch_end": true' in line]
    assert [e["values"]["backward_events"] for e in epochs] == list(values)

    # evaluating: accuracy and the energy ledger, with the ternary input priced as accumulates
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT) as finished:
        qtbot.mouseClick(window.training.evaluate_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "ok", window.last_message
    assert "accuracy" in window.training.status.text()
    assert "SOPs" in window.energy.totals_text()

    # probing a sample: the encoder's ternary input spikes reach the raster (on its tab: a
    # view behind another tab is not redrawn)
    window.docks["raster"].raise_()
    window.probe_now(3)
    qtbot.waitUntil(lambda: window.raster.spike_count() > 0, timeout=10_000)
    window.raster.layer_combo.setCurrentIndex(0)  # all layers
    assert window.raster.negative_count() > 0 and window.raster.legend_visible()


def test_the_inspector_greys_out_t_when_the_encoder_sets_it(make_main_window, tmp_path):
    from PySide6.QtWidgets import QSpinBox

    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    window = make_main_window(load_project(folder), host=host)
    steps = window.inspector.fields["time_steps"]
    assert isinstance(steps, QSpinBox) and not steps.isEnabled()
    assert "sets T from the data" in steps.toolTip()
    window.doc.set_setting("encoder.id", "wb_core.direct")
    assert window.inspector.fields["time_steps"].isEnabled()


def test_changing_the_encoder_rebuilds_and_revalidates_the_network(make_main_window, qtbot,
                                                                   tmp_path):
    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    folder = shutil.copytree(toy_project_dir(), tmp_path / "toy")
    window = make_main_window(load_project(folder), host=host)
    assert window.doc.weights_match_graph
    with qtbot.waitSignal(window.doc.graph_edited, timeout=2_000):
        # the delta encoder feeds [C] per step; the direct one would feed [C, L]
        window.doc.set_setting("encoder.id", "wb_core.direct")
    assert not window.doc.weights_match_graph  # the saved weights no longer fit
    window.act_undo.trigger()
    assert window.doc.project.encoder.id == "toy_plugins.delta"
