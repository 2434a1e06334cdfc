"""STD-ED in its dynamic-threshold reading (wb_event_learning.std_ed): the closed-form firing
time against a fine-step simulation, its analytical derivatives against autograd and finite
differences, the event-driven bookkeeping, the energy ledger and a run through a Session."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from wb_event_learning.std_ed import (
    STDEDLinear,
    STDEDReadout,
    STDEDTrainer,
    firing_times,
    std_ed_linear,
)

from workbench.core.build.energy import EnergyMeter
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import Component
from workbench.core.persistence.project_files import load_project, save_project
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import PluginHost
from workbench.testing.fixtures import make_tiny_project

DT = 1e-4
INF = math.inf


def _random_times(batch: int, features: int, *, silent: float = 0.3, seed: int = 0):
    """Input times in [0, 1], a share ``silent`` of them never fired (inf)."""
    g = torch.Generator().manual_seed(seed)
    times = torch.rand(1, batch, features, generator=g, dtype=torch.float64)
    never = torch.rand(1, batch, features, generator=g, dtype=torch.float64) < silent
    return times.masked_fill(never, INF)


def _layer(in_features: int, out_features: int, *, scale: float, seed: int = 0) -> STDEDLinear:
    layer = STDEDLinear(in_features, out_features).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=g,
                                       dtype=torch.float64) * scale + 0.1)
    return layer


def _simulated_times(times: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """First step of the window [1, 2] where V(t) = Σ w max(0, t − t_i) >= θ(t) = 2 − t,
    stepping dt; inf where it never gets there. Output shifted to [0, 1] like the layer's."""
    grid = 1.0 + torch.arange(round(1.0 / DT) + 1, dtype=torch.float64) * DT
    elapsed = (grid.view(1, -1, 1) - times[0].unsqueeze(1)).clamp(min=0.0)  # [B, steps, in]
    above = elapsed @ weight.t() >= (2.0 - grid).view(1, -1, 1)  # [B, steps, out]
    first = torch.where(above.any(1), grid[above.to(torch.int8).argmax(1)],
                        torch.full(above.shape[::2], INF, dtype=torch.float64))
    return (first - 1.0).unsqueeze(0)


def test_the_closed_form_fires_where_a_fine_step_simulation_crosses_the_falling_threshold():
    times = _random_times(24, 8)
    out_parts, sim_parts = [], []
    for seed, scale in enumerate((0.3, 0.8, 1.5)):  # weak to strong: all three branches
        layer = _layer(8, 20, scale=scale, seed=seed)
        with torch.no_grad():
            out_parts.append(layer(times))
        sim_parts.append(_simulated_times(times, layer.weight.detach()))
    out, sim = torch.cat(out_parts, -1), torch.cat(sim_parts, -1)

    at_start = out == 0.0
    silent = torch.isinf(out)
    inside = ~at_start & ~silent
    assert at_start.sum() > 10 and silent.sum() > 10 and inside.sum() > 10
    assert torch.equal(torch.isinf(sim), silent)
    assert torch.equal(sim[at_start], out[at_start])  # both at the window's first instant
    assert ((out[inside] > 0) & (out[inside] <= 1)).all()
    assert (out[inside] - sim[inside]).abs().max() <= DT  # the grid lands within one step


def _derivative_case():
    """One sample, a layer whose neurons fire inside the window, at its start and never."""
    times = torch.tensor([[[0.1, INF, 0.6, 0.3, INF, 0.9]]], dtype=torch.float64)
    layer = _layer(6, 12, scale=0.7, seed=1)  # 4 inside, 4 at the start, 4 silent
    out = layer(times).detach()
    inside = torch.isfinite(out) & (out > 0)
    assert inside.sum() >= 3 and (out == 0).any() and torch.isinf(out).any()
    return times, layer, out[0, 0], inside[0, 0]


def test_autograd_gives_the_analytical_derivatives_and_zero_off_the_events():
    times, layer, out, inside = _derivative_case()
    weight = layer.weight.detach()
    d_times, d_weight = torch.autograd.functional.jacobian(_forward, (times, weight))
    d_times, d_weight = d_times[0, 0, :, 0, 0], d_weight[0, 0]  # [out, in], [out, out, in]
    fired = torch.isfinite(times[0, 0])
    t_in = torch.where(fired, times[0, 0], torch.zeros_like(times[0, 0]))
    t_out = out + 1.0  # back in the window [1, 2]
    denom = 1.0 + weight @ fired.double()
    expected_t = torch.where(inside[:, None] & fired[None], weight / denom[:, None], 0.0)
    expected_w = torch.where(inside[:, None] & fired[None],
                             (t_in[None] - t_out[:, None]) / denom[:, None], 0.0)
    assert torch.allclose(d_times, expected_t, rtol=1e-12, atol=0)
    own = d_weight[torch.arange(12), torch.arange(12)]  # dt_j / dw_j., the neuron's own row
    assert torch.allclose(own, expected_w, rtol=1e-12, atol=0)
    # exactly zero: inputs that never fired, neurons at the window start or silent, other rows
    assert (d_times[:, ~fired] == 0).all() and (d_times[~inside] == 0).all()
    assert (own[:, ~fired] == 0).all() and (own[~inside] == 0).all()
    off_diagonal = ~torch.eye(12, dtype=torch.bool)
    assert (d_weight[off_diagonal] == 0).all()


def _forward(times: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The layer's output (times shifted back to [0, 1]) as a function of both inputs."""
    return firing_times(times, weight) - 1.0


def test_the_analytical_derivatives_match_finite_differences():
    times, layer, _out, inside = _derivative_case()
    weight = layer.weight.detach().clone().requires_grad_(True)
    t = times.clone().requires_grad_(True)
    coeffs = torch.linspace(0.5, 1.5, 12, dtype=torch.float64) * inside
    (torch.where(inside, _forward(t, weight)[0, 0], 0.0) * coeffs).sum().backward()

    def objective(tt: torch.Tensor, ww: torch.Tensor) -> float:
        now = _forward(tt, ww)[0, 0]
        assert torch.equal(torch.isfinite(now) & (now > 0), inside)  # no branch was crossed
        return float((torch.where(inside, now, 0.0) * coeffs).sum())

    eps = 1e-6
    for index in torch.isfinite(times).nonzero().tolist():
        up, down = times.clone(), times.clone()
        up[tuple(index)] += eps
        down[tuple(index)] -= eps
        numeric = (objective(up, weight.detach()) - objective(down, weight.detach())) / (2 * eps)
        assert t.grad[tuple(index)].item() == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    for j in range(12):
        for i in range(6):
            up, down = weight.detach().clone(), weight.detach().clone()
            up[j, i] += eps
            down[j, i] -= eps
            numeric = (objective(times, up) - objective(times, down)) / (2 * eps)
            assert weight.grad[j, i].item() == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    assert (t.grad[~torch.isfinite(times)] == 0).all()


def _network(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(*[
        torch.nn.Flatten(2), STDEDLinear(16, 24), STDEDLinear(24, 20), STDEDReadout(20, 4)])


def test_non_zero_local_derivatives_occur_only_at_spike_events():
    model = _network()
    hidden = [model[1], model[2]]
    for sample in range(4):
        x = _random_times(1, 16, seed=sample).view(1, 1, 4, 4).float()
        model.zero_grad()
        outs: list[tuple[torch.Tensor, torch.Tensor]] = []

        def keep(module, args, out, seen=outs):
            seen.append((args[0], out))

        handles = [m.register_forward_hook(keep) for m in hidden]
        logits = model(x)
        for handle in handles:
            handle.remove()
        torch.nn.functional.cross_entropy(logits[0], torch.tensor([sample % 4])).backward()
        for layer, (inputs, output) in zip(hidden, outs, strict=True):
            fired_inside = torch.isfinite(output[0, 0]) & (output[0, 0] > 0)
            input_fired = torch.isfinite(inputs[0, 0])
            touched = layer.weight.grad != 0
            # a weight learns only where its input spiked and its neuron fired inside the window
            assert touched.any()
            assert not (touched & ~(fired_inside[:, None] & input_fired[None])).any()


def test_backward_events_are_the_spikes_and_the_metrics_name_every_layer():
    model = _network()
    trainer = STDEDTrainer(model, epochs=1, steps_per_epoch=1, lr=1e-3)
    x = _random_times(8, 16).view(1, 8, 4, 4).float()
    with torch.no_grad():
        first = model[1](model[0](x))
        second = model[2](first)
    spikes = int(torch.isfinite(first).sum() + torch.isfinite(second).sum())
    metrics = trainer.train_step(x, torch.arange(8) % 4)
    assert metrics["backward_events"] == spikes
    assert metrics["dense_backward_events"] == 8 * (24 + 20)
    assert set(metrics) >= {"silent_fraction.1", "silent_fraction.2", "grad_norm.1",
                            "grad_norm.2", "grad_norm.3"}
    silent = float((~torch.isfinite(second[0]).any(0)).double().mean())
    assert metrics["silent_fraction.2"] == pytest.approx(silent)
    assert trainer.metric_reductions["backward_events"] == "sum"
    assert trainer.metric_reductions["dense_backward_events"] == "sum"


def test_a_layer_silent_for_a_whole_batch_is_named_in_a_warning(caplog):
    model = _network()
    with torch.no_grad():
        model[2].weight.fill_(-1.0)  # V(t) only falls: the second layer never fires
    trainer = STDEDTrainer(model, epochs=1, steps_per_epoch=2, lr=1e-3)
    x = _random_times(4, 16).view(1, 4, 4, 4).float()
    with caplog.at_level(logging.WARNING, logger="wb_event_learning.std_ed"):
        metrics = trainer.train_step(x, torch.arange(4))
        trainer.train_step(x, torch.arange(4))
    assert metrics["silent_fraction.2"] == 1.0 and metrics["backward_events"] > 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "layer 2" in warnings[0].getMessage()  # once per silent spell


def test_the_ledger_counts_fired_input_times_fan_out():
    layer, readout = STDEDLinear(5, 3), STDEDReadout(3, 2)
    x = torch.tensor([[[0.0, INF, 0.3, INF, 1.0], [INF] * 5]])  # [1, B=2, 5]: 3 fired inputs
    model = torch.nn.Sequential(layer, readout)
    with EnergyMeter(model) as meter:
        hidden = layer(x)
        readout(hidden)
    assert meter._layers["0"].sops == 3 * 3 and meter._layers["0"].macs == 0
    assert meter._layers["1"].sops == int(torch.isfinite(hidden).sum()) * 2
    assert meter._layers["1"].macs == 0


def test_a_layer_fed_an_image_asks_for_a_flatten():
    with pytest.raises(ValueError, match="flatten"):
        std_ed_linear([(1, 8, 8)], out_features=4)


STD_ED_PLUGIN = """
    from workbench.pluginhost import SPIKE_TIMES, BlockSpec, LearningRuleSpec, ParamSpec, hookimpl


    @hookimpl
    def wb_blocks():
        return [
            BlockSpec(id="stded.linear", display_name="STD-ED linear", category="spiking",
                      factory="wb_event_learning.std_ed:std_ed_linear", spike_code=SPIKE_TIMES,
                      params=(ParamSpec("out_features", 256, "int", low=1),)),
            BlockSpec(id="stded.readout", display_name="STD-ED read-out", category="readout",
                      factory="wb_event_learning.std_ed:std_ed_readout", spike_code=SPIKE_TIMES,
                      params=(ParamSpec("classes", 10, "int", low=1),)),
        ]


    @hookimpl
    def wb_learning_rules():
        return [LearningRuleSpec(id="stded.rule", display_name="STD-ED",
                                 factory="wb_event_learning.std_ed:STDEDTrainer",
                                 spike_code=SPIKE_TIMES,
                                 params=(ParamSpec("lr", 2e-3, low=1e-7, high=10.0),))]
"""


def test_a_project_trains_through_a_session_and_reports_the_event_metrics(tmp_path, plugin_module):
    name = plugin_module("stded", STD_ED_PLUGIN)
    host = PluginHost(strict=True)
    host.load(modules=[name])
    assert not host.report.failures
    project = make_tiny_project(tmp_path / "p")
    project.encoder = Component("wb_core.ttfs", {})
    project.training.rule = Component("stded.rule", {})
    project.graph = Graph.chain([Node("flat", "wb_core.flatten"),
                                 Node("hidden", "stded.linear", {"out_features": 32}),
                                 Node("out", "stded.readout", {"classes": 10})])
    save_project(project, tmp_path / "p")
    session = Session(load_project(tmp_path / "p"), host.registry)
    finished = session.train(epochs=1).result()
    assert finished.status == "ok", finished.error
    metrics = finished.summary["metrics"]
    assert {"backward_events", "dense_backward_events", "silent_fraction.hidden",
            "grad_norm.hidden", "grad_norm.out"} <= set(metrics)
    assert 0 < metrics["backward_events"] <= metrics["dense_backward_events"]
    assert finished.summary["test_accuracy"] > 0.3  # chance: 0.1
