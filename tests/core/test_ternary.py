"""Ternary spikes {−1, 0, +1} through the core: the energy ledger and the probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.build.probes import SpikeProbe
from workbench.core.runs.probe import ProbeResult, probe_arrays, probe_summary

TABLE = CostTable("t", "test", e_mac_pj=4.6, e_ac_pj=0.9, source="test")


class TernaryNeuron(nn.Module):
    """Fires +1 above 0.5 and −1 below −0.5 (the neuron contract: step and initial_state)."""

    def initial_state(self, x):
        return None

    def step(self, x, state):
        return (x > 0.5).float() - (x < -0.5).float(), state

    def forward(self, x):
        return self.step(x, None)[0]


class TimeConv1d(nn.Conv1d):
    def forward(self, x):  # [T, B, C, L] -> [T, B, C', L']
        return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def ternary(shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(-1, 2, size=shape)).float()


@pytest.mark.parametrize("counting", ["exact", "rate"])
def test_a_ternary_input_is_spike_input_one_ac_per_non_zero(counting):
    x = ternary((3, 2, 4, 9))  # [T, B, C, L]
    assert x.lt(0).any() and x.gt(0).any()
    conv = TimeConv1d(4, 5, kernel_size=1)  # 1x1: every input entry drives 5 synapses
    with torch.no_grad(), EnergyMeter(conv, sop_counting=counting) as meter:
        conv(x)
    layer = meter.report(TABLE).layers[0]
    assert layer["input"] == "spikes" and layer["macs"] == 0
    assert layer["sops"] == pytest.approx(float(x.ne(0).sum()) * 5 / 2)
    assert layer["pj"] == pytest.approx(layer["sops"] * 0.9)
    assert layer["firing_rate"] == pytest.approx(float(x.ne(0).float().mean()))
    # the same magnitudes, all positive, cost exactly as much: |−1| is one accumulate
    with torch.no_grad(), EnergyMeter(conv, sop_counting=counting) as meter:
        conv(x.abs())
    assert meter.report(TABLE).layers[0]["sops"] == pytest.approx(layer["sops"])


def test_probes_keep_and_count_negative_spikes(tmp_path):
    model = nn.Sequential(nn.Linear(3, 6), TernaryNeuron())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0],
                                            [0, -1, 0], [0, 0, 1], [0, 0, -1]]))
        model[0].bias.zero_()
    x = ternary((5, 1, 3), seed=1)
    with torch.no_grad(), SpikeProbe(model, samples=1) as probe:
        model(x)
    record = probe.records["1"]
    assert set(record.spikes.unique().tolist()) == {-1.0, 0.0, 1.0}
    result = ProbeResult(index=0, label=0, predicted=0, input=x[:, 0], records=probe.records,
                         input_spikes=x)
    summary = probe_summary(result, weights_loaded=False)
    layer = summary["layers"]["1"]
    assert layer["negative"] == int(record.spikes.lt(0).sum()) > 0
    assert layer["spikes"] == layer["positive"] + layer["negative"]
    assert summary["input_spikes"]["negative"] == int(x.lt(0).sum())
    arrays = probe_arrays(result)
    path = tmp_path / "probe.npz"
    np.savez_compressed(path, **arrays)
    saved = np.load(path)
    assert saved["1/spikes"].dtype == np.int8 and saved["1/spikes"].min() == -1
    assert np.array_equal(saved["input_spikes"], x[:, 0].numpy().astype(np.int8))
