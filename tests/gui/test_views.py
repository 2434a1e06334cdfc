"""The plot views, checked through what a user sees (their view-model API), not pixels."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

# the headless CI job has no Qt; it does not collect tests/gui, but a stray run should skip
pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.build.probes import ProbeRecord
from workbench.core.runs.buffers import LatestBuffer
from workbench.core.runs.events import MetricSample
from workbench.gui.views import (
    EnergyView,
    FiringRateView,
    MembraneView,
    MetricsView,
    SpikeRasterView,
    apply_plot_theme,
    export_plot,
    write_csv,
)

pytestmark = pytest.mark.gui

T = 20


def make_records(seed: int = 0, *, membranes: bool = True) -> dict[str, ProbeRecord]:
    """Two layers as a probe records them: ``[T, samples=1, ...]``, the second one conv-shaped."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"lif1": (T, 1, 10), "conv2.neuron": (T, 1, 2, 3, 2)}
    records = {}
    for name, shape in shapes.items():
        spikes = torch.bernoulli(torch.full(shape, 0.3), generator=gen)
        membrane = torch.rand(shape, generator=gen) if membranes else None
        records[name] = ProbeRecord(spikes=spikes, membrane=membrane)
    return records


def total_spikes(records: dict[str, ProbeRecord], layer: str | None = None) -> int:
    names = [layer] if layer else list(records)
    return sum(int(records[name].spikes[:, 0].count_nonzero()) for name in names)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def assert_exports(view, tmp_path, header: list[str]) -> list[list[str]]:
    """PNG and SVG are written and non-empty; the CSV starts with ``header``."""
    for suffix in ("png", "svg"):
        path = tmp_path / f"view.{suffix}"
        view.export_image(path)
        assert path.stat().st_size > 0
    assert (tmp_path / "view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "view.svg").read_bytes()
    rows = read_csv(view.export_csv(tmp_path / "view.csv"))
    assert rows[0] == header
    return rows[1:]


# -- raster ----------------------------------------------------------------------------------
def test_raster_counts_every_spike_of_every_layer(qtbot):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    assert view.spike_count() == 0
    assert view.hint_text()  # empty state
    records = make_records()
    view.set_records(records)
    assert view.spike_count() == total_spikes(records)
    assert view.mode() == "ticks"
    assert view.layers() == ["lif1", "conv2.neuron"]
    assert view.hint_text() == ""
    items = [view.layer_combo.itemText(i) for i in range(view.layer_combo.count())]
    assert items == ["All layers", "lif1", "conv2.neuron"]


def test_raster_layer_combo_filters(qtbot):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    records = make_records()
    view.set_records(records)
    view.layer_combo.setCurrentText("conv2.neuron")
    assert view.spike_count() == total_spikes(records, "conv2.neuron")
    assert view.layers() == ["conv2.neuron"]
    # a new probe keeps the user's choice
    newer = make_records(seed=1)
    view.set_records(newer)
    assert view.layer_combo.currentText() == "conv2.neuron"
    assert view.spike_count() == total_spikes(newer, "conv2.neuron")
    view.layer_combo.setCurrentText("All layers")
    assert view.spike_count() == total_spikes(newer)


def test_raster_ticks_are_one_pairs_curve(qtbot):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    view.set_spikes(np.array([0, 3, 5]), np.array([1, 2, 0]), n_steps=10, n_neurons=4)
    curve = view._curve
    assert curve.opts["connect"] == "pairs"
    x, y = curve.getData()
    assert list(x) == pytest.approx([0, 0.8, 3, 3.8, 5, 5.8])
    assert list(y) == pytest.approx([1.5, 1.5, 2.5, 2.5, 0.5, 0.5])


def test_raster_switches_to_image_past_dense_threshold(qtbot):
    view = SpikeRasterView(dense_threshold=100)
    qtbot.addWidget(view)
    rng = np.random.default_rng(0)
    view.set_spikes(rng.integers(0, 50, 100), rng.integers(0, 20, 100), 50, 20)
    assert view.mode() == "ticks"
    view.set_spikes(rng.integers(0, 50, 101), rng.integers(0, 20, 101), 50, 20)
    assert view.mode() == "image"
    assert view.spike_count() == 101
    image = view._image.image
    assert image.dtype == np.uint8
    assert image.shape == (20, 50)
    view.set_spikes(np.array([1]), np.array([1]), 50, 20)
    assert view.mode() == "ticks"


def test_raster_perf_sanity_half_a_million_spikes(qtbot):
    """Not timed: 500k spikes must draw as an image (binned when huge) without blowing up."""
    view = SpikeRasterView()
    qtbot.addWidget(view)
    rng = np.random.default_rng(1)
    n = 500_000
    view.set_spikes(rng.integers(0, 1000, n), rng.integers(0, 10_000, n), 1000, 10_000)
    assert view.mode() == "image"
    assert view.spike_count() == n
    assert max(view._image.image.shape) <= 4096
    view.set_spikes(rng.integers(0, 1000, 150_000), rng.integers(0, 10_000, 150_000), 1000,
                    10_000)
    assert view.mode() == "ticks"


def test_raster_attach_picks_up_buffer_puts(qtbot):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    buffer = LatestBuffer()
    view.attach(buffer, fps=100)
    records = make_records()
    buffer.put({"records": records, "label": 3, "predicted": 5, "index": 7}, "run-1")
    qtbot.waitUntil(lambda: view.spike_count() == total_spikes(records), timeout=2000)
    assert "label 3" in view.title_text()
    assert "predicted 5" in view.title_text()
    assert "#7" in view.title_text()
    newer = make_records(seed=2)
    buffer.put({"records": newer, "label": 1, "predicted": 1, "index": 7}, "run-1")
    qtbot.waitUntil(lambda: view.spike_count() == total_spikes(newer), timeout=2000)
    buffer.clear()
    qtbot.waitUntil(lambda: view.spike_count() == 0, timeout=2000)
    view.detach()
    buffer.put({"records": records}, "run-2")
    qtbot.wait(50)
    assert view.spike_count() == 0


def test_raster_exports(qtbot, tmp_path):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    records = make_records()
    view.set_records(records)
    rows = assert_exports(view, tmp_path, ["layer", "neuron", "time_step"])
    assert len(rows) == total_spikes(records)
    conv = [r for r in rows if r[0] == "conv2.neuron"]
    assert len(conv) == total_spikes(records, "conv2.neuron")
    assert all(0 <= int(r[1]) < 12 and 0 <= int(r[2]) < T for r in conv)
    # a local index maps back to a spike of the record
    flat = records["conv2.neuron"].spikes[:, 0].reshape(T, -1)
    assert all(flat[int(r[2]), int(r[1])] == 1 for r in conv)


# -- membrane --------------------------------------------------------------------------------
def test_membrane_curves_follow_the_neuron_text(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    assert view.curve_count() == 0
    assert view.hint_text()
    view.set_records(make_records())
    assert view.layer_combo.currentText() == "lif1"
    assert view.curve_count() == 5  # the default "0-4"
    view.neuron_edit.setText("0-2, 7")
    assert view.neurons() == [0, 1, 2, 7]
    assert view.curve_count() == 4
    assert view.neuron_hint_text() == ""
    view.set_neurons([1, 2, 3, 9])
    assert view.neuron_edit.text() == "1-3, 9"
    assert view.curve_count() == 4
    # indices past the layer are left out, with a note
    view.neuron_edit.setText("8-12")
    assert view.curve_count() == 2
    assert "10 neurons" in view.neuron_hint_text()


def test_membrane_bad_text_shows_a_hint_and_keeps_the_curves(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    view.set_records(make_records())
    view.neuron_edit.setText("1, 3")
    for bad in ("3-", "a", "5-2", "-1", "1-2-3"):
        view.neuron_edit.setText(bad)  # must not raise
        assert view.neuron_hint_text(), bad
        assert view.curve_count() == 2
    # a new probe while the text is still bad keeps the hint
    view.set_records(make_records(seed=3))
    assert view.neuron_hint_text()
    view.neuron_edit.setText("4")
    assert view.neuron_hint_text() == ""
    assert view.curve_count() == 1


def test_membrane_without_membranes_shows_the_hint(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    view.set_records(make_records(membranes=False))
    assert "no membrane recorded" in view.hint_text().lower()
    assert view.curve_count() == 0
    view.set_records(make_records())
    assert view.hint_text() == ""
    assert view.curve_count() == 5


def test_membrane_threshold_and_layer_choice(qtbot):
    view = MembraneView()
    qtbot.addWidget(view)
    records = make_records()
    view.set_records(records)
    view.set_threshold(1.0)
    assert view.threshold() == 1.0
    assert view._threshold_line.isVisible()
    assert view._threshold_line.value() == 1.0
    view.layer_combo.setCurrentText("conv2.neuron")
    view.neuron_edit.setText("11")
    assert view.curve_count() == 1
    _x, y = view._curves[0].getData()
    expected = records["conv2.neuron"].membrane[:, 0].reshape(T, -1)[:, 11].numpy()
    assert np.allclose(y, expected)
    view.set_threshold(None)
    assert view.threshold() is None
    assert not view._threshold_line.isVisible()


def test_membrane_exports(qtbot, tmp_path):
    view = MembraneView()
    qtbot.addWidget(view)
    records = make_records()
    view.set_records(records)
    view.neuron_edit.setText("2, 4")
    rows = assert_exports(view, tmp_path, ["layer", "neuron", "t", "v"])
    assert len(rows) == 2 * T
    assert {r[1] for r in rows} == {"2", "4"}
    first = next(r for r in rows if r[1] == "4" and r[2] == "3")
    assert float(first[3]) == pytest.approx(float(records["lif1"].membrane[3, 0, 4]))


# -- firing rates ----------------------------------------------------------------------------
def test_rates_histogram_counts_every_neuron(qtbot):
    view = FiringRateView()
    qtbot.addWidget(view)
    assert view.histogram()[1].sum() == 0
    assert view.hint_text()
    records = make_records()
    view.set_records(records)
    edges, counts = view.histogram()
    assert len(edges) == 21
    assert edges[0] == 0
    assert edges[-1] == 1
    assert counts.sum() == 10 + 12
    view.layer_combo.setCurrentText("lif1")
    edges, counts = view.histogram()
    assert counts.sum() == 10
    rates = records["lif1"].spikes.mean(dim=(0, 1)).numpy()
    assert view.mean_rate() == pytest.approx(float(rates.mean()))
    assert f"{rates.mean():.3f}" in view.plot_title()


def test_rates_extremes_land_in_the_first_and_last_bins(qtbot):
    view = FiringRateView()
    qtbot.addWidget(view)
    view.set_rates({"a": np.array([0.0, 0.0, 1.0, 0.5])})
    _edges, counts = view.histogram()
    assert counts[0] == 2
    assert counts[-1] == 1
    assert counts[10] == 1


def test_rates_exports(qtbot, tmp_path):
    view = FiringRateView()
    qtbot.addWidget(view)
    view.set_records(make_records())
    rows = assert_exports(view, tmp_path, ["layer", "neuron", "rate"])
    assert len(rows) == 22
    assert all(0 <= float(r[2]) <= 1 for r in rows)


# -- metrics ---------------------------------------------------------------------------------
def feed_epoch(view: MetricsView, epoch: int, first_step: int, batches: int = 5) -> int:
    step = first_step
    for _ in range(batches):
        step += 1
        view.add_sample(MetricSample("run", epoch, step, {"loss": 1.0 / step, "lr": 0.01}))
    view.add_sample(MetricSample("run", epoch, step, {
        "train_loss": 0.5, "train_accuracy": 0.6 + epoch / 10, "test_accuracy": 0.55,
        "lr": 0.01}, epoch_end=True))
    return step


def test_metrics_point_count_grows_and_clear_empties(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    assert view.point_count() == 0
    assert view.hint_text()
    step = feed_epoch(view, 0, 0)
    assert view.point_count() == 5 + 3
    feed_epoch(view, 1, step)
    assert view.point_count() == 2 * (5 + 3)
    series = view.series()
    assert set(series) == {"loss", "train_loss", "train_accuracy", "test_accuracy"}
    steps, values = series["train_accuracy"]
    assert list(steps) == [5, 10]
    assert values == pytest.approx([0.6, 0.7])
    # accuracy is drawn in percent
    assert view._curves["train_accuracy"].yData == pytest.approx([60, 70])
    assert "epoch 1" in view.title_label.text()
    view.clear()
    assert view.point_count() == 0
    assert view.series() == {}
    assert view.hint_text()


def test_metrics_redraw_on_the_timer(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    view.add_sample(MetricSample("run", 0, 1, {"loss": 2.0}))
    qtbot.waitUntil(lambda: "loss" in view._curves
                    and view._curves["loss"].getData()[0] is not None, timeout=2000)


def test_metrics_exports(qtbot, tmp_path):
    view = MetricsView()
    qtbot.addWidget(view)
    feed_epoch(view, 0, 0)
    rows = assert_exports(view, tmp_path, ["series", "epoch", "step", "value"])
    assert len(rows) == 8
    assert ["test_accuracy", "0", "5", "0.55"] in rows


# -- energy ----------------------------------------------------------------------------------
def real_report() -> dict:
    """A report of the real ledger: a spike-input layer, then a real-input one."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    spikes = torch.bernoulli(torch.full((2, 2, 4), 0.5))
    with EnergyMeter(model) as meter:
        model(spikes)
    table = CostTable("horowitz45", "Horowitz 45 nm", 4.6, 0.9, "Horowitz, ISSCC 2014")
    return meter.report(table).to_dict()


def test_energy_bars_are_the_reports_picojoules(qtbot):
    view = EnergyView()
    qtbot.addWidget(view)
    report = real_report()
    view.set_report(report)
    assert view.bar_values() == pytest.approx([layer["pj"] for layer in report["layers"]])
    ticks = view.plot_widget.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [name for _x, name in ticks] == [layer["name"] for layer in report["layers"]]
    assert "SOPs" in view.totals_text()
    assert "MACs" in view.totals_text()
    assert view.hint_text() == ""


def test_energy_provenance_is_always_shown(qtbot):
    view = EnergyView()
    qtbot.addWidget(view)
    view.set_report(real_report())
    assert view.provenance_text().startswith("Estimate")
    assert "Horowitz 45 nm" in view.provenance_text()
    assert "Horowitz, ISSCC 2014" in view.provenance_label.toolTip()
    assert "Horowitz, ISSCC 2014" in view.source_text()
    measured = {**real_report(), "kind": "measurement", "backend": "speck"}
    view.set_report(measured)
    assert view.provenance_text() == "Measurement — speck"


def test_energy_empty_report_shows_the_hint(qtbot):
    view = EnergyView()
    qtbot.addWidget(view)
    assert view.hint_text() == "Run an evaluation to fill the ledger"
    view.set_report(real_report())
    view.set_report(None)
    assert view.hint_text() == "Run an evaluation to fill the ledger"
    assert view.bar_values() == []


def test_energy_table_changed_is_emitted_on_a_pick_only(qtbot):
    view = EnergyView()
    qtbot.addWidget(view)
    with qtbot.assertNotEmitted(view.table_changed):
        view.set_tables([("horowitz45", "Horowitz 45 nm"), ("loihi", "Loihi")], "horowitz45")
    assert view.current_table() == "horowitz45"
    with qtbot.waitSignal(view.table_changed, timeout=1000) as blocker:
        view.table_combo.setCurrentIndex(1)
    assert blocker.args == ["loihi"]
    view.set_report(real_report())  # priced with the other table: the view says so
    assert "re-evaluate" in view.source_text()


def test_energy_exports(qtbot, tmp_path):
    view = EnergyView()
    qtbot.addWidget(view)
    report = real_report()
    view.set_report(report)
    rows = assert_exports(view, tmp_path, ["layer", "input", "macs", "sops", "pj", "firing_rate",
                                           "priced_at"])
    assert [r[0] for r in rows] == [layer["name"] for layer in report["layers"]]
    assert [r[1] for r in rows] == ["spikes", "real"]
    assert [float(r[4]) for r in rows] == pytest.approx(view.bar_values())


# -- export helpers and theme -----------------------------------------------------------------
def test_export_errors_name_the_path(qtbot, tmp_path):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    missing = tmp_path / "no" / "such" / "dir"
    for name in ("x.png", "x.svg", "x.csv"):
        with pytest.raises(OSError, match="no/such/dir") as info:
            view.export(missing / name)
        assert info.value.filename == str(missing / name)
    with pytest.raises(ValueError, match=r"\.bmp"):
        export_plot(view.plot_widget, tmp_path / "x.bmp")
    path = write_csv(tmp_path / "x.csv", ["a", "b"], [(1, 2)])
    assert read_csv(path) == [["a", "b"], ["1", "2"]]


def test_export_action_exists_on_every_view(qtbot):
    for cls in (SpikeRasterView, MembraneView, FiringRateView, MetricsView, EnergyView):
        view = cls()
        qtbot.addWidget(view)
        assert view.export_action.text() == "Export…"
        assert view.export_action in view.actions()
        # the plot's right-click menu offers the same action instead of pyqtgraph's dialog
        assert view.plot_widget.scene().contextMenu == [view.export_action]


def test_export_action_asks_for_a_file_and_writes_it(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    view = FiringRateView()
    qtbot.addWidget(view)
    view.set_records(make_records())
    target = tmp_path / "rates"  # no suffix: the chosen filter supplies it
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(target), "CSV data (*.csv)"))
    view.export_action.trigger()
    assert read_csv(tmp_path / "rates.csv")[0] == ["layer", "neuron", "rate"]


def test_apply_plot_theme_restyles_existing_plots(qtbot):
    import pyqtgraph as pg

    views = [SpikeRasterView(), MetricsView()]
    for view in views:
        qtbot.addWidget(view)
    try:
        apply_plot_theme(False, views)
        assert pg.getConfigOption("background") == "w"
        assert views[0].plot_widget.backgroundBrush().color().name() == "#ffffff"
        apply_plot_theme(True, views)
        assert views[1].plot_widget.backgroundBrush().color().name() == "#000000"
    finally:
        pg.setConfigOptions(background="k", foreground="d")
