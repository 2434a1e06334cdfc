""""The first layer" is every conv/linear layer the network input reaches itself (the core's
``trace_layers``), and QP-SNN, Q-SNN and BESTformer's ``binarize`` all keep it: with a GL-SPS
embedding both convs of its first stage read the image, so both stay at full precision / 8 bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component, Project, Training
from workbench.core.runs import catalog
from workbench.core.runs.events import RunFinished
from workbench.core.runs.session import Session
from workbench.pluginhost import trace_layers


class TwoBranches(nn.Module):
    """Two convs read the input, a third their sum, then pool and a linear head; ``spare`` is
    never called."""

    def __init__(self) -> None:
        super().__init__()
        self.local = nn.Conv2d(1, 4, 3, padding=1)
        self.dilated = nn.Conv2d(1, 4, 3, padding=2, dilation=2)
        self.mix = nn.Conv2d(4, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 3)
        self.spare = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(self.local(x) + self.dilated(x))
        return self.head(self.pool(y).flatten(1))


class PoolFirst(nn.Module):
    """No layer reads the input itself: it is pooled first."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.head = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(self.pool(x)).flatten(1))


def test_both_branches_that_read_the_input_are_first():
    model = TwoBranches().train()
    trace = trace_layers(model, torch.rand(2, 1, 8, 8))
    assert trace.order == ["local", "dilated", "mix", "head"]
    assert trace.first == ["local", "dilated"]
    assert trace.last == "head" and trace.ends == ["local", "dilated", "head"]
    assert trace.unused == ["spare"]
    assert trace.calls == ["local", "dilated", "mix", "pool", "head"]
    assert model.training  # the mode is restored


def test_without_a_layer_on_the_input_the_first_one_called_stands_in():
    trace = trace_layers(PoolFirst(), torch.rand(2, 1, 8, 8))
    assert trace.first == ["conv"] and trace.ends == ["conv", "head"]


def test_a_flattened_view_of_the_input_counts_as_the_input():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Linear(8, 3))
    assert trace_layers(model, torch.rand(2, 1, 8, 8)).first == ["1"]


# -- the three compression methods on a GL-SPS network --------------------------------------------
FIRST_STAGE = ["embed.stages.0.local_conv", "embed.stages.0.global_conv"]


@pytest.fixture
def gl_sps_session(plugin_host):
    graph = Graph.chain([
        Node("embed", "wb_snn_vit.gl_sps", {"embed_dim": 8, "stages": 2, "pool_stages": 1}),
        Node("tokens", "wb_snn_vit.token_mean"),
        Node("fc", "wb_core.linear", {"out_features": 10}),
    ])
    project = Project("gl_sps", graph, time_steps=2,
                      training=Training(Component("wb_core.bptt", {}), epochs=1,
                                        batch_size=64, seed=0))
    session = Session(project, plugin_host.registry)
    torch.manual_seed(0)
    session.build(load_saved_weights=False)
    session.weights_loaded = True  # an in-memory network stands for a trained one
    return session


def compress(session: Session, method: str, params: dict) -> dict:
    last = None
    for event in catalog.compress(session, method=method, params=params, limit=1):
        if isinstance(event, RunFinished):
            last = event
    assert last is not None and last.status == "ok", last and last.error
    return last.summary


def test_qp_snn_keeps_both_first_stage_convs_at_full_precision(gl_sps_session):
    summary = compress(gl_sps_session, "wb_qp_snn.rescaw", {"bits": 4, "finetune_epochs": 0})
    assert summary["report"]["full_precision"] == sorted([*FIRST_STAGE, "fc"])
    bits = summary["after"]["layer_bits"]
    assert all(bits[name] is None for name in FIRST_STAGE)
    assert bits["embed.stages.1.global_conv"] == 4 and bits["embed.rpe_conv"] == 4


def test_q_snn_keeps_both_first_stage_convs_at_eight_bits(gl_sps_session):
    summary = compress(gl_sps_session, "wb_q_snn.q_snn", {"finetune_epochs": 0})
    report = summary["report"]
    assert report["eight_bit"] == [*FIRST_STAGE, "fc"]
    assert all(report["layer_bits"][name] >= 8 for name in FIRST_STAGE)
    assert report["layer_bits"]["embed.stages.1.local_conv"] == 1


def test_bestformer_binarize_keeps_both_first_stage_convs(gl_sps_session):
    summary = compress(gl_sps_session, "wb_bestformer.binarize", {"finetune_epochs": 0})
    report = summary["report"]
    assert report["full_precision_layers"] == [*FIRST_STAGE, "fc"]
    assert "embed.stages.1.local_conv" in report["binarized_layers"]
