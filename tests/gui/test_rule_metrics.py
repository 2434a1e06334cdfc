"""A learning rule's own metrics (``backward_events``…) reach the training panel's curves."""

from __future__ import annotations

import pytest

from workbench.core.runs.events import MetricSample
from workbench.gui.views.metrics import MetricsView


def test_extra_metrics_get_their_own_plot_and_summary(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    view.add_sample(MetricSample("r", 1, 5, {"loss": 1.0, "lr": 0.1, "backward_events": 30.0}))
    view.flush()
    assert view.extra_keys() == []  # per-batch values of a rule metric are not drawn
    assert view.extra_plot is None
    epoch = {"train_loss": 0.9, "train_accuracy": 0.5, "test_accuracy": 0.6, "lr": 0.1,
             "backward_events": 1234.0}
    view.add_sample(MetricSample("r", 1, 10, epoch, epoch_end=True))
    view.add_sample(MetricSample("r", 2, 20, {**epoch, "backward_events": 1500.0},
                                 epoch_end=True))
    view.flush()
    assert view.extra_keys() == ["backward_events"]
    assert view.extra_plot is not None and view.extra_plot.isVisible()
    steps, values = view.series()["backward_events"]
    assert list(steps) == [10, 20] and list(values) == [1234.0, 1500.0]
    assert "backward events 1500" in view.title_label.text()
    view.clear()
    assert view.extra_keys() == [] and view.extra_plot is None


def test_the_rule_s_metric_families_get_their_own_axis_one_at_a_time(qtbot):
    view = MetricsView()
    qtbot.addWidget(view)
    view.show()
    for epoch, events in ((1, 900.0), (2, 800.0)):
        values = {"train_loss": 0.9, "train_accuracy": 0.5, "test_accuracy": 0.6, "lr": 0.1,
                  "backward_events": events, "dense_backward_events": 3000.0,
                  "silent_fraction.hidden1": 0.1, "silent_fraction.hidden2": 0.4,
                  "grad_norm.hidden1": 0.02, "grad_norm.hidden2": 0.5}
        view.add_sample(MetricSample("r", epoch, 10 * epoch, values, epoch_end=True))
    view.flush()
    box = view.family_box
    assert box.isVisible()
    assert [box.itemText(i) for i in range(box.count())] == [
        "backward events", "silent fraction", "gradient norm"]
    assert view.shown_family() == "backward events"

    def drawn() -> dict[str, str]:
        legend = view.extra_plot.legend
        return {label.text: sample.item.name() for sample, label in legend.items}

    assert drawn() == {"backward": "backward", "dense": "dense"}
    assert view.extra_plot.getAxis("left").labelText == "events per epoch"
    box.setCurrentText("gradient norm")  # what picking it in the chooser does
    assert view.shown_family() == "gradient norm"
    assert set(drawn()) == {"hidden1", "hidden2"}
    assert view.extra_plot.getAxis("left").labelText == "gradient norm"
    assert view.extra_plot.ctrl.logYCheck.isChecked()  # norms span orders of magnitude
    box.setCurrentText("silent fraction")
    assert set(drawn()) == {"hidden1", "hidden2"}
    assert not view.extra_plot.ctrl.logYCheck.isChecked()
    view.clear()
    assert not box.isVisible() and box.count() == 0



def test_the_step_axes_keep_the_whole_run_when_the_rule_s_plot_appears(make_main_window,
                                                                        qtbot, tmp_path):
    """Train from the window: the rule's plot, added at the first epoch's end, shares the step
    axis. It must take the run's span, not push its first point's narrow range onto the loss
    and accuracy plots (which then showed the first epoch only, for the whole run)."""
    from workbench.core.persistence.project_files import load_project
    from workbench.testing.fixtures import make_tiny_project

    make_tiny_project(tmp_path / "tiny", epochs=3)
    window = make_main_window(load_project(tmp_path / "tiny"))
    view = window.training.metrics
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        window.training.train_button.click()
    qtbot.wait(700)  # the curves' redraw timer (2 Hz) and a paint
    last_step = int(view.series()["train_loss"][0][-1])
    assert view.extra_plot is not None and last_step > 40
    for plot in (view.loss_plot, view.accuracy_plot, view.extra_plot):
        low, high = plot.viewRange()[0]
        assert low <= 0 and high >= last_step, (low, high, last_step)


def test_a_flat_rule_metric_gets_a_readable_axis(qtbot):
    """Backward events equal to the dense count at every epoch (a surrogate-gradient rule): the
    axis spans ±10 % around the value instead of ±0.5, so its ticks do not all read the same."""
    view = MetricsView()
    qtbot.addWidget(view)
    for epoch in (1, 2):
        view.add_sample(MetricSample("r", epoch, 10 * epoch, {
            "train_loss": 0.9, "train_accuracy": 0.5, "test_accuracy": 0.6,
            "backward_events": 1.76579e7, "dense_backward_events": 1.76579e7}, epoch_end=True))
    view.flush()
    low, high = view.extra_plot.viewRange()[1]
    assert low == pytest.approx(0.9 * 1.76579e7) and high == pytest.approx(1.1 * 1.76579e7)
    view.add_sample(MetricSample("r", 3, 30, {
        "train_loss": 0.9, "train_accuracy": 0.5, "test_accuracy": 0.6,
        "backward_events": 5e6, "dense_backward_events": 1.76579e7}, epoch_end=True))
    view.flush()
    assert view.extra_plot.getViewBox().state["autoRange"][1]  # varied values: fitted again
