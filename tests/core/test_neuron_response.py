"""A neuron on its own (the neuron explorer's numbers): f–I curves, step and ramp responses,
measured on the real module each neuron spec builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.build.neuron_response import (
    FI_POINTS,
    RANGE_FACTOR,
    NeuronDriveError,
    neuron_response,
)
from workbench.core.model.errors import ProjectError
from workbench.core.model.specs import NeuronSpec, ParamSpec


def test_lif_f_i_curve_is_monotone_zero_below_its_onset_and_starts_at_the_threshold(plugin_host):
    spec = plugin_host.registry.get("wb_core.lif")
    response = neuron_response(spec, {"v_th": 1.0, "tau": 2.0})
    rates, currents = response.rates, response.currents
    assert response.rate_unit == "spikes/step" and rates.shape == currents.shape == (FI_POINTS,)
    assert currents[0] == 0 and currents[-1] == pytest.approx(RANGE_FACTOR * 1.0)
    assert np.all(np.diff(rates) >= 0)
    onset = response.onset_current
    # LIF (A) settles at H = X: it fires for a constant X at the threshold or above, never below
    grid = currents[1] - currents[0]
    assert 1.0 <= onset < 1.0 + grid
    assert np.all(rates[currents < onset] == 0) and np.all(rates[currents >= onset] > 0)
    assert rates[-1] == 1.0  # three thresholds in fire at every step

    raised = neuron_response(spec, {"v_th": 1.5, "tau": 2.0})
    assert raised.onset_current > onset and raised.threshold == 1.5


def test_the_step_and_the_ramp_show_the_membrane_and_the_spikes(plugin_host):
    response = neuron_response(plugin_host.registry.get("wb_core.lif"))
    step, ramp = response.step, response.ramp
    assert step.current[0] == 0 and step.current[-1] > response.threshold  # switched on
    assert step.membrane is not None and step.membrane.shape == step.current.shape
    spikes = step.spike_steps
    assert spikes.size > 0 and spikes[0] > np.flatnonzero(step.current)[0]
    # the membrane shown is the charged potential: at or over the threshold where it fired
    assert np.all(step.membrane[spikes] >= response.threshold)
    assert np.all(step.membrane[step.spikes == 0] < response.threshold)
    assert np.all(np.diff(ramp.current) > 0) and ramp.spike_steps.size > 0
    # LIF (A)'s potential never exceeds the largest input so far: the ramp fires once past V_th
    assert ramp.current[ramp.spike_steps[0]] >= response.threshold


def test_every_installed_neuron_yields_a_curve_quantised_ones_too(plugin_host):
    neurons = list(plugin_host.registry.of_kind("neuron"))
    assert "wb_q_snn.qlif" in {s.id for s in neurons}
    for spec in neurons:
        response = neuron_response(spec)
        assert response.onset_current is not None, spec.id
        grid = response.currents[1]  # onsets lie at or below the threshold (module doc)
        assert response.onset_current < response.threshold + grid, spec.id
        assert np.all(np.diff(response.rates) >= 0), spec.id
        assert response.step.membrane is not None, spec.id


class _TernaryNeuron(torch.nn.Module):
    """Integrate-and-fire whose spikes alternate +1 and −1 (an on/off pair of events)."""

    def __init__(self, v_th: float = 1.0) -> None:
        super().__init__()
        self.v_th = v_th

    def initial_state(self, x):
        return (torch.zeros_like(x), torch.ones_like(x))

    def step(self, x, state):
        v, sign = state
        v = v + x
        fired = (v >= self.v_th).float()
        s = fired * sign
        return s, (v * (1 - fired), sign * (1 - 2 * fired))

    def forward(self, x):
        state = self.initial_state(x[0])
        out = []
        for t in range(x.shape[0]):
            s, state = self.step(x[t], state)
            out.append(s)
        return torch.stack(out)


def test_a_ternary_neuron_counts_negative_spikes_too():
    spec = NeuronSpec(id="toy.ternary", display_name="Ternary toy", factory=_TernaryNeuron,
                      params=(ParamSpec("v_th", 1.0, low=1e-6),))
    response = neuron_response(spec)
    top = response.rates[-1]
    assert top == 1.0  # +1, −1, +1, … at every step: |s| counts each
    assert response.step.membrane is None  # it records none: the explorer shows spikes only
    assert (response.step.spikes < 0).any() and response.onset_current is not None


def test_a_neuron_with_a_time_step_gets_its_rate_in_hertz():
    def factory(v_th: float = 1.0, dt: float = 1.0):
        return _TernaryNeuron(v_th)

    spec = NeuronSpec(id="toy.timed", display_name="Timed toy", factory=factory,
                      params=(ParamSpec("v_th", 1.0), ParamSpec("dt", 1.0, unit="ms")))
    response = neuron_response(spec, {"dt": 0.5})
    assert response.rate_unit == "Hz" and response.rates[-1] == pytest.approx(2000.0)


def test_a_neuron_that_cannot_run_alone_says_so_in_one_line():
    class NeedsImages(torch.nn.Module):
        def forward(self, x):
            if x.dim() != 5:
                raise ValueError("expects [T, B, C, H, W]\n  (traceback-like detail)")
            return x

    spec = NeuronSpec(id="toy.images", display_name="Image-only toy",
                      factory=lambda: NeedsImages())
    with pytest.raises(NeuronDriveError) as caught:
        neuron_response(spec)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("Image-only toy: ")
    assert "expects [T, B, C, H, W]" in text

    with pytest.raises(ProjectError, match="v_th"):  # a bad value names its field
        neuron_response(NeuronSpec(id="toy.t", display_name="T", factory=_TernaryNeuron,
                                   params=(ParamSpec("v_th", 1.0, low=1e-6),)), {"v_th": -1.0})
