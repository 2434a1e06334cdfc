"""Spike trains vs firing times: the encoder, the layers and the learning rule must agree.

A throw-away plugin contributes a layer that takes firing times (``spike_code="times"``) and a
rule that trains such networks; the real ``wb_core`` gives the spike-train side and the
``wb_core.ttfs`` encoder.
"""

from __future__ import annotations

import math

import pytest
import torch

from workbench.core.build.energy import EnergyMeter
from workbench.core.model.errors import CompileError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component
from workbench.core.model.readout import earliest_spike
from workbench.core.model.specs import BlockSpec
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost
from workbench.testing.fixtures import make_tiny_project

TIMES_PLUGIN = """
    import torch

    from workbench.pluginhost import SPIKE_TIMES, BlockSpec, LearningRuleSpec, ParamSpec, hookimpl


    class FirstInputTime(torch.nn.Linear):
        '''Fires at the earliest input time plus a delay per output (a toy TTFS layer).'''

        def spike_events(self, x):
            return torch.isfinite(x)

        def forward(self, x):
            first = x.min(-1, keepdim=True).values
            return first + self.weight.abs().sum(-1)


    def first_input_time(in_shapes, out_features=10):
        return FirstInputTime(in_shapes[0][-1], out_features)


    @hookimpl
    def wb_blocks():
        return [BlockSpec(id="times.first", display_name="First input time",
                          factory=first_input_time, spike_code=SPIKE_TIMES,
                          params=(ParamSpec("out_features", 10, "int", low=1),))]


    @hookimpl
    def wb_learning_rules():
        return [LearningRuleSpec(id="times.rule", display_name="Times rule",
                                 factory="wb_core.learning:BPTTTrainer", spike_code=SPIKE_TIMES,
                                 readout="workbench.pluginhost:earliest_spike")]
"""


@pytest.fixture
def host(plugin_module):
    name = plugin_module("times", TIMES_PLUGIN)
    host = PluginHost(strict=True)
    host.load(modules=[name])
    assert not host.report.failures
    return host


def _session(tmp_path, host, *, encoder: str, layer: str, rule: str = "wb_core.bptt"):
    project = make_tiny_project(tmp_path / "p")
    project.encoder = Component(encoder, {})
    project.training.rule = Component(rule, {})
    spec = {"spiking": "wb_core.spiking_linear", "times": "times.first"}[layer]
    project.graph = Graph.chain([Node("flat", "wb_core.flatten"),
                                 Node("first", spec, {"out_features": 10})])
    save_project(project, tmp_path / "p")
    return Session(load_project(tmp_path / "p"), host.registry)


def test_a_spike_train_layer_fed_firing_times_is_named_before_anything_is_built(tmp_path, host):
    session = _session(tmp_path, host, encoder="wb_core.ttfs", layer="spiking")
    report = session.validate()
    message = report.nodes["first"].error
    assert "wb_core.spiking_linear takes spike trains" in message
    assert "wb_core.ttfs emits spike times" in message
    assert not report.nodes["flat"].error  # a flatten moves either code
    with pytest.raises(CompileError) as caught:
        session.build()
    assert caught.value.node == "first" and "spike times" in caught.value.message
    assert session.model is None


def test_a_firing_time_layer_fed_a_rate_code_is_named(tmp_path, host):
    session = _session(tmp_path, host, encoder="wb_core.rate", layer="times")
    with pytest.raises(CompileError) as caught:
        session.build()
    assert caught.value.node == "first"
    assert "times.first takes spike times" in caught.value.message
    assert "wb_core.rate emits spike trains" in caught.value.message


def test_a_spike_train_rule_refuses_a_firing_time_network(tmp_path, host):
    session = _session(tmp_path, host, encoder="wb_core.ttfs", layer="times")
    finished = session.train(epochs=1).result()
    assert finished.status == "failed"
    assert "wb_core.bptt trains networks of spike trains" in finished.error
    assert "training.rule" in finished.error


def test_a_firing_time_network_trains_under_its_rule_and_reads_out_the_earliest(tmp_path, host):
    session = _session(tmp_path, host, encoder="wb_core.ttfs", layer="times", rule="times.rule")
    model = session.build()
    x = torch.rand(4, 8, 8)
    out = model(session.encoder()(x))
    assert out.shape == (1, 4, 10)
    scores = session.readout()(out)
    assert torch.equal(scores.argmax(-1), out[0].argmin(-1))


def test_the_ttfs_encoder_maps_brighter_to_earlier_and_dark_to_never():
    from wb_core.encoders import TTFSEncoder

    ttfs = TTFSEncoder(t_max=2.0)
    x = torch.tensor([[0.0, 0.25, 1.0, 1.5, -0.1]])
    t = ttfs.encode(x, steps=7)
    assert t.shape == (1, 1, 5) and ttfs.time_steps((5,), 7) == 1
    assert t[0, 0, 0] == math.inf and t[0, 0, 4] == math.inf
    assert t[0, 0, 1].item() == pytest.approx(1.5) and t[0, 0, 2] == 0 and t[0, 0, 3] == 0
    assert torch.allclose(ttfs.decode(t), torch.tensor([[0.0, 0.25, 1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="t_max"):
        TTFSEncoder(t_max=0)


def test_earliest_spike_ranks_by_time_and_keeps_silence_last_and_finite():
    times = torch.tensor([[[0.5, math.inf, 0.2], [math.inf, math.inf, 3.0]]])
    scores = earliest_spike(times)
    assert scores.argmax(-1).tolist() == [2, 2]
    assert torch.isfinite(scores).all()
    assert scores[0, 1] < scores[0, 0] and scores[1, 0] < scores[1, 2]
    assert torch.isfinite(torch.softmax(scores, -1)).all()


def test_the_ledger_counts_fired_inputs_of_a_time_layer_times_its_fan_out(plugin_module):
    plugin_module("times_layer", TIMES_PLUGIN)
    from times_layer import FirstInputTime

    layer = FirstInputTime(5, 3)
    x = torch.tensor([[[0.0, math.inf, 0.3, math.inf, 1.0], [math.inf] * 5]])  # [1, B=2, 5]
    with EnergyMeter(layer) as meter:
        layer(x)
    count = meter._layers[""]
    assert count.sops == 3 * 3  # three fired inputs (t = 0 is a firing time), fan-out 3
    assert count.macs == 0 and count.spike_input


def test_a_spec_with_an_unknown_spike_code_is_a_problem():
    spec = BlockSpec(id="x.y", display_name="Y", factory="m:f", spike_code="bursts")
    assert any("spike_code 'bursts'" in p for p in spec.problems())
    assert not BlockSpec(id="x.y", display_name="Y", factory="m:f").problems()
