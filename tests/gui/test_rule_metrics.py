"""A learning rule's own metrics (``backward_events``…) reach the training panel's curves."""

from __future__ import annotations

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
