"""The spike raster with ternary spikes: −1 drawn as its own pairs curve, in its own colour,
with a legend; binary rasters look as before."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from workbench.core.build.probes import ProbeRecord
from workbench.gui.views.raster import SpikeRasterView


def ternary_records() -> dict[str, ProbeRecord]:
    spikes = torch.zeros(6, 1, 4)  # [T, samples, neurons]
    spikes[0, 0, 1] = 1
    spikes[2, 0, 3] = -1
    spikes[4, 0, 0] = -1
    spikes[5, 0, 2] = 1
    return {"input": ProbeRecord(spikes=spikes.to(torch.int8))}


def test_raster_draws_negative_spikes_in_a_second_colour(qtbot, tmp_path):
    view = SpikeRasterView()
    qtbot.addWidget(view)
    view.set_records(ternary_records())
    assert view.spike_count() == 4 and view.negative_count() == 2
    assert view.legend_visible()
    positive, negative = view._curve, view._negative_curve
    assert positive.opts["connect"] == negative.opts["connect"] == "pairs"
    assert positive.opts["pen"].color() != negative.opts["pen"].color()
    x, y = positive.getData()
    assert list(x) == pytest.approx([0, 0.8, 5, 5.8]) and list(y) == pytest.approx(
        [1.5, 1.5, 2.5, 2.5])
    x, y = negative.getData()
    assert list(x) == pytest.approx([2, 2.8, 4, 4.8]) and list(y) == pytest.approx(
        [3.5, 3.5, 0.5, 0.5])
    labels = [label.text for _sample, label in view._legend.items]
    assert labels == ["+1", "\u22121"]
    with open(view.export_csv(tmp_path / "raster.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["layer", "neuron", "time_step", "value"]
    assert sorted(rows[1:]) == sorted([["input", "1", "0", "1"], ["input", "3", "2", "-1"],
                                       ["input", "0", "4", "-1"], ["input", "2", "5", "1"]])

    # past the dense threshold: one image, value 2 where a −1 spike is
    dense = SpikeRasterView(dense_threshold=2)
    qtbot.addWidget(dense)
    dense.set_spikes(np.array([0, 2, 4]), np.array([1, 3, 0]), 6, 4,
                     values=np.array([1, -1, -1]))
    assert dense.mode() == "image"
    image = dense._image.image
    assert image[1, 0] == 1 and image[3, 2] == 2 and image[0, 4] == 2

    # a binary raster: no legend, nothing on the second curve
    view.set_spikes(np.array([0, 3]), np.array([1, 2]), n_steps=10, n_neurons=4)
    assert not view.legend_visible() and view.negative_count() == 0
    drawn = view._negative_curve.getData()[0]
    assert drawn is None or len(drawn) == 0
    assert not view._negative_curve.isVisible()
