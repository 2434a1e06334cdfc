"""Plots as a researcher reads them (issue #12): threshold lines and spike markers on membranes,
whole time steps on time axes, a log-scale loss, usable plot sizes, a colour bar and a selection
count on attention maps, and a reopened project's last training curves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from workbench.core.build.probes import ProbeRecord
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.runs.events import MetricSample, RunFinished, RunStarted
from workbench.core.runs.records import recorded
from workbench.gui.views import MembraneView, MetricsView, SpikeRasterView
from workbench.gui.views.compare import VariantsView
from workbench.testing.fixtures import make_tiny_project

AttentionView = pytest.importorskip("wb_snn_vit._qt").AttentionView

pytestmark = pytest.mark.gui

T = 4


def four_step_records() -> dict[str, ProbeRecord]:
    """One layer of 3 neurons over T = 4: neuron 0 fires at t = 1, neuron 2 at t = 3."""
    spikes = torch.zeros(T, 1, 3)
    spikes[1, 0, 0] = spikes[3, 0, 2] = 1.0
    membrane = torch.full((T, 1, 3), 0.3)
    membrane[1, 0, 0], membrane[3, 0, 2] = 1.2, 0.9
    return {"lif1": ProbeRecord(spikes=spikes, membrane=membrane, threshold=0.8)}


def shown_ticks(plot_widget) -> list[float]:
    """Every tick value the bottom axis draws over the current view range."""
    plot = plot_widget.getPlotItem()
    low, high = plot.viewRange()[0]
    axis = plot.getAxis("bottom")
    return [value for _spacing, values in axis.tickValues(low, high, axis.width() or 400)
            for value in values]


def test_membrane_shows_the_layers_threshold_and_a_marker_per_spike(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    view.set_records(four_step_records())
    view.neuron_edit.setText("0-2")
    assert view.threshold() == pytest.approx(0.8)  # from the probe record: a dashed line
    assert view.spike_marks() == [(0, 1), (2, 3)]
    view.neuron_edit.setText("1")  # a neuron that never fires: no marker
    assert view.spike_marks() == []
    without = {"lif1": ProbeRecord(spikes=torch.zeros(T, 1, 3), membrane=torch.zeros(T, 1, 3))}
    view.set_records(without)  # a neuron with no fixed threshold: no line
    assert view.threshold() is None


def test_time_step_axes_tick_only_at_whole_steps(qtbot):
    raster, membrane = SpikeRasterView(), MembraneView()
    for view in (raster, membrane):
        qtbot.addWidget(view)
        view.resize(600, 300)
        view.show()
        view.set_records(four_step_records())
    qtbot.waitExposed(membrane)
    for view in (raster, membrane):
        plot = view.plot_widget.getPlotItem()
        qtbot.waitUntil(lambda plot=plot: plot.viewRange()[0][1] >= T - 1, timeout=2_000)
        ticks = shown_ticks(view.plot_widget)
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert {1.0, 2.0, 3.0} <= set(ticks)  # whole steps are still labelled
    axis = membrane.plot_widget.getPlotItem().getAxis("bottom")
    assert axis.tickStrings([0.0, 1.0, 2.0], 1.0, 1.0) == ["0", "1", "2"]


def test_loss_is_on_a_log_axis_and_a_zero_loss_does_not_break_it(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    assert view.loss_plot.getAxis("left").logMode
    for step, loss in enumerate([2.3, 0.5, 0.0, 0.01], start=1):
        view.add_sample(MetricSample("r", 1, step, {"loss": loss}))
    view.flush()
    assert view.series()["loss"][1].tolist() == [2.3, 0.5, 0.0, 0.01]  # the data keeps it
    drawn = view._curves["loss"].yData
    assert np.isfinite(drawn).sum() == 3  # the 0 has no place on a log axis: left out


def test_curves_and_variant_plots_keep_a_readable_height(qtbot, tmp_path):
    metrics = MetricsView()
    qtbot.addWidget(metrics)
    metrics.add_sample(MetricSample("r", 1, 5, {"train_loss": 1.0, "train_accuracy": 0.5,
                                                "test_accuracy": 0.4}, epoch_end=True))
    metrics.flush()
    metrics.resize(900, 10)  # as short as its layout allows
    metrics.show()
    qtbot.waitExposed(metrics)
    qtbot.waitUntil(lambda: metrics.accuracy_plot.geometry().height() >= 180, timeout=2_000)
    assert metrics.loss_plot.geometry().height() >= 180

    project = make_tiny_project(tmp_path / "tiny")
    variant = load_project(tmp_path / "tiny")
    save_project(variant, tmp_path / "tiny" / "variants" / "pruned")
    data = json.loads((tmp_path / "tiny/variants/pruned/project.json").read_text("utf-8"))
    data["name"] = "pruned"
    data["compression"] = [{"method": "prune", "params": {}, "after": {
        "accuracy": 0.9, "model_size_bytes": 1000.0, "total_pj_per_sample": 5e5}}]
    (tmp_path / "tiny/variants/pruned/project.json").write_text(json.dumps(data), "utf-8")
    variants = VariantsView()
    qtbot.addWidget(variants)
    variants.set_project(project)
    assert [row.name for row in variants.rows()] == ["tiny", "pruned"]
    variants.resize(1200, 10)
    variants.show()
    qtbot.waitExposed(variants)
    qtbot.waitUntil(lambda: variants.size_plot.geometry().height() >= 200, timeout=2_000)
    assert variants.energy_plot.geometry().height() >= 200


def test_a_long_layer_name_is_elided_in_the_middle_and_listed_whole(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    long = "bestformer.blocks.0.attention.input_neuron"
    record = four_step_records()["lif1"]
    view.set_records({long: record, "block1.attention.proj.neuron": record})
    view.show()
    combo = view.layer_combo
    combo.setCurrentText("block1.attention.proj.neuron")
    assert combo.shown_text() == "block1.attention.proj.neuron"  # 28 characters fit
    combo.setCurrentText(long)
    shown = combo.shown_text()
    assert "…" in shown and shown.startswith("best") and shown.endswith("neuron")
    assert long in combo.toolTip()
    widest = combo.view().fontMetrics().horizontalAdvance(long)
    assert combo.view().minimumWidth() > widest  # the drop-down list shows it whole


def test_attention_map_has_a_colour_bar_and_says_how_many_tokens_are_selected(qtbot):
    view = AttentionView()
    qtbot.addWidget(view)
    mask = torch.zeros(T, 1, 2, 16)  # [T, B, heads, tokens]
    mask[2, 0, 0, :5] = 1.0  # at t = 2 head 0 looks at 5 tokens, head 1 at 3
    mask[2, 0, 1, 4:7] = 1.0
    salience = torch.linspace(0.5, 2.5, T * 2 * 16).reshape(T, 1, 2, 16)
    attention = torch.full((T, 1, 2, 16, 16), 1 / 16)
    view.set_probe({"input": torch.rand(1, 8, 8), "maps": {
        "blocks.0.attn": {"kind": "sssa", "mask": mask, "salience": salience},
        "blocks.1.attn": {"kind": "ssa", "attention": attention}}})
    view.set_layer("blocks.0.attn")  # SSSA: a saccade mask and the salience
    assert view.colour_bar_range() == pytest.approx((0.5, 2.5))
    view.set_step(2)
    assert view.selected_counts() == [(5, 16), (3, 16)]
    assert view.selection_text().startswith("head 0: 5 of 16 tokens selected · "
                                            "head 1: 3 of 16 tokens selected")
    view.set_step(0)
    assert "head 0: 0 of 16 tokens selected" in view.selection_text()
    view.set_layer("blocks.1.attn")  # SSA selects nothing: no count, still a colour bar
    assert view.selection_text() == ""
    assert view.colour_bar_range() == pytest.approx(view.levels())


def _record_training(folder, run_id: str, epochs: int) -> None:
    """A training run's record as a run writes it (through ``recorded``), ``epochs`` long."""
    events = [RunStarted(run_id, "train", total=epochs * 2)]
    for epoch in range(1, epochs + 1):
        events.append(MetricSample(run_id, epoch, 2 * epoch - 1, {"loss": 2.0 / epoch}))
        events.append(MetricSample(run_id, epoch, 2 * epoch,
                                   {"train_loss": 2.0 / epoch, "train_accuracy": 0.2 * epoch,
                                    "test_accuracy": 0.25 * epoch}, epoch_end=True))
    events.append(RunFinished(run_id, "ok", summary={"epochs": epochs}))
    assert len(list(recorded(iter(events), folder))) == len(events)


def test_training_panel_shows_the_last_recorded_run_of_its_project(qtbot, tmp_path,
                                                                   plugin_host):
    from workbench.gui.document import ProjectDocument
    from workbench.gui.panels.training import TrainingPanel

    trained = make_tiny_project(tmp_path / "trained")
    _record_training(tmp_path / "trained", "train-20250101-090000-aaaaaa", epochs=2)
    _record_training(tmp_path / "trained", "train-20250102-030405-bbbbbb", epochs=3)
    untrained = make_tiny_project(tmp_path / "untrained")
    panel = TrainingPanel(ProjectDocument(trained, plugin_host.registry))
    qtbot.addWidget(panel)
    metrics = panel.metrics
    assert len(metrics.series()["test_accuracy"][0]) == 3  # the newer run: 3 epochs
    assert len(metrics.series()["train_loss"][0]) == 3
    assert metrics.note() == "From the last run, 2025-01-02 03:04"
    assert metrics.title_text().startswith("From the last run, 2025-01-02 03:04 · epoch 3")
    assert panel.status.text() == "Ready — last run: 3 epoch(s), test accuracy 75.0%"
    panel.set_document(ProjectDocument(untrained, plugin_host.registry))
    assert metrics.point_count() == 0 and metrics.note() == ""
    assert panel.status.text() == "Ready"


def test_switching_projects_in_the_window_restores_or_clears_the_curves(make_main_window,
                                                                        qtbot, tmp_path):
    make_tiny_project(tmp_path / "untrained")
    trained = make_tiny_project(tmp_path / "trained")
    trained.graph.nodes[1].params["neuron"] = {"id": "wb_core.lif", "params": {"v_th": 0.75}}
    save_project(trained, tmp_path / "trained")
    _record_training(tmp_path / "trained", "train-20250102-030405-bbbbbb", epochs=3)
    window = make_main_window(load_project(tmp_path / "untrained"))
    metrics = window.training.metrics
    assert metrics.point_count() == 0

    assert window.open_project(tmp_path / "trained")
    assert len(metrics.series()["test_accuracy"][0]) == 3  # points = the record's epochs
    assert metrics.note().startswith("From the last run")
    assert "test accuracy 75.0%" in window.training.status.text()
    # the probe of the opened project carries its neuron's threshold to the membrane plot
    window.docks["membrane"].raise_()
    qtbot.waitUntil(lambda: window.membrane.threshold() is not None, timeout=3_000)
    assert window.membrane.threshold() == pytest.approx(0.75)

    assert window.open_project(tmp_path / "untrained")
    assert metrics.point_count() == 0 and metrics.note() == ""
    assert "accuracy" not in window.training.status.text()  # not the other project's


def test_variant_point_names_stay_inside_their_plots(qtbot, tmp_path):
    """A point near the top of the accuracy range has its name below it, a point in the right
    half its name to its left: no name is cut at a plot's edge."""
    project = make_tiny_project(tmp_path / "tiny")
    for name, accuracy, size in (("low", 0.1, 1000.0), ("high", 0.9, 2000.0)):
        save_project(load_project(tmp_path / "tiny"), tmp_path / "tiny" / "variants" / name)
        path = tmp_path / "tiny" / "variants" / name / "project.json"
        data = json.loads(path.read_text("utf-8"))
        data["name"] = f"variant with a long name, {name}"
        data["compression"] = [{"method": "prune", "params": {}, "after": {
            "accuracy": accuracy, "model_size_bytes": size, "total_pj_per_sample": 5e5}}]
        path.write_text(json.dumps(data), "utf-8")
    variants = VariantsView()
    qtbot.addWidget(variants)
    variants.set_project(project)
    variants.resize(1200, 10)
    variants.show()
    qtbot.waitExposed(variants)
    qtbot.waitUntil(lambda: variants.size_plot.geometry().height() >= 200, timeout=2_000)
    labels = variants._labels
    assert len(labels) == 4  # two points on each plot

    def inside(plot, label) -> bool:
        return plot.getViewBox().sceneBoundingRect().contains(label.sceneBoundingRect())

    # a label follows its point once the view has laid itself out and painted
    qtbot.waitUntil(lambda: sum(inside(p, lab) for p, lab in labels) >= 2, timeout=2_000)
    qtbot.wait(100)
    assert [lab.toPlainText() for p, lab in labels if not inside(p, lab)] == []
