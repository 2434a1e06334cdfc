"""MPD-ED (``wb_event_learning``): the event-gated backward, the forward it keeps, the trainer
that swaps it in, and the backward metrics it shares with ``wb_core.bptt``."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
from collections import OrderedDict

import pytest
import torch
from torch import nn
from wb_core.blocks import SpikingBlock
from wb_core.learning import BPTTTrainer
from wb_core.neurons import NeuronState, SpikingNeuron, integrate_and_fire, lif, lif_b
from wb_event_learning.learning import MPDEDTrainer, UnsupportedNeuron
from wb_event_learning.mpd_ed import EventDrivenLIF

from workbench.cli import main
from workbench.core.model.errors import WorkbenchError
from workbench.core.persistence.examples import examples_dir

T, B, N = 6, 5, 7


def _inputs(seed: int = 0, dtype=torch.float32, shape=(T, B, N)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=dtype) * 1.6).requires_grad_()


NEURONS = {
    "lif_a_hard": lambda: lif(),
    "lif_a_soft_vreset": lambda: lif(v_reset=0.2, reset="soft"),
    "lif_b_hard": lambda: lif_b(),
    "lif_b_soft": lambda: lif_b(lam=0.8, theta=0.7, reset="soft"),
    "if_hard": lambda: integrate_and_fire(v_th=0.9, v_reset=-0.1),
}


@pytest.mark.parametrize("name", NEURONS)
def test_the_forward_is_the_wb_core_neurons_bit_for_bit(name):
    original = NEURONS[name]()
    twin = EventDrivenLIF.replacing(original, surrogate_width=0.5)
    original.record_membrane = twin.record_membrane = True
    for grad in (True, False):
        x = _inputs(1)
        with torch.set_grad_enabled(grad):
            a, b = original(x), twin(x)
        assert torch.equal(a, b) and a.sum() > 0
        assert torch.equal(original.last_membrane, twin.last_membrane)


def test_local_derivatives_are_non_zero_only_at_spike_events():
    neuron = EventDrivenLIF.replacing(lif_b(lam=0.6, theta=0.8), surrogate_width=1.0)
    neuron.record_membrane = True
    x = _inputs(2)
    spikes = neuron(x)
    charged = neuron.last_membrane
    assert 0 < spikes.sum() < spikes.numel()  # both spikes and silences to tell apart
    for t in range(T):
        # the gradient of step t's spikes on step t's input is b * dS/dH there (b = 1 in B)
        (local,) = torch.autograd.grad(spikes[t].sum(), x, retain_graph=True)
        local = local[t]
        assert bool(((local != 0) <= (spikes[t] == 1)).all())
        expected = spikes[t] * torch.clamp(1.0 - (charged[t] - 0.8).abs(), min=0.0)
        torch.testing.assert_close(local, expected.detach())
    (total,) = torch.autograd.grad(spikes.sum(), x)
    assert (total != 0).any()


def _masked_reference(x, *, a, b, c, theta_fn, v_reset, hard, at_zero, width):
    """LIF unrolled through autograd; the spike is a straight-through Heaviside whose
    derivative is ``S * g(H - theta)`` (the masked triangle); the reset is detached."""
    def primitive(u):  # d/du primitive(u) = g(u) = (1/w) max(0, 1 - |u|/w)
        u = u.clamp(-width, width)
        return (u - u.sign() * u * u / (2 * width)) / width

    v = torch.full_like(x[0], v_reset)
    count = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = a * v + b * x[t] + c
        theta = theta_fn(t, count)
        heaviside = ((h - theta >= 0) if at_zero else (h - theta > 0)).to(x.dtype)
        u = h - theta
        s = heaviside + heaviside * (primitive(u) - primitive(u).detach())
        s_const = s.detach()
        v = h * (1 - s_const) + v_reset * s_const if hard else h - theta * s_const
        count = count + s_const
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize(("name", "adaptive"), [("lif_b_hard", False), ("lif_b_soft", False),
                                                ("lif_a_soft_vreset", False),
                                                ("if_hard", True), ("lif_b_soft", True)])
def test_the_hand_backward_equals_autograd_of_a_masked_spike_in_float64(name, adaptive):
    neuron = NEURONS[name]()
    d = neuron.dynamics
    raises = (lambda t, count: d.v_th + 0.3 * count) if adaptive else (lambda t, count: d.v_th)
    threshold_fn = (lambda t, state: raises(t, state.spike_count)) if adaptive else None
    twin = EventDrivenLIF.replacing(neuron, surrogate_width=0.7, threshold_fn=threshold_fn)
    x = _inputs(3, torch.float64)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(4),
                          dtype=torch.float64)
    spikes = twin(x)
    (ours,) = torch.autograd.grad((spikes * weights).sum(), x)
    x_ref = x.detach().clone().requires_grad_()
    reference = _masked_reference(x_ref, a=d.a, b=d.b, c=d.c, theta_fn=raises,
                                  v_reset=d.v_reset, hard=d.hard_reset, at_zero=d.at_zero,
                                  width=0.7)
    assert torch.equal(spikes.detach(), reference.detach())
    (theirs,) = torch.autograd.grad((reference * weights).sum(), x_ref)
    assert (theirs != 0).any()
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_a_threshold_fn_changes_the_forward_as_it_says():
    # IF, hard reset to 0, constant input 0.5 (exact in binary): the potential climbs by 0.5 a
    # step. Constant threshold 1 fires every second step; a threshold that rises by 1 with each
    # spike fires after 2, then 4, then 6 steps.
    x = torch.full((12, 1, 1), 0.5)
    constant = EventDrivenLIF.replacing(integrate_and_fire(v_th=1.0))
    adaptive = EventDrivenLIF.replacing(
        integrate_and_fire(v_th=1.0),
        threshold_fn=lambda t, state: 1.0 + state.spike_count)
    fired = lambda s: torch.nonzero(s.flatten()).flatten().tolist()
    assert fired(constant(x)) == [1, 3, 5, 7, 9, 11]
    assert fired(adaptive(x)) == [1, 5, 11]
    # the hook sees the step index too: a threshold that drops at step 6 fires sooner there
    late = EventDrivenLIF.replacing(integrate_and_fire(v_th=1.0),
                                    threshold_fn=lambda t, state: 1.0 if t < 6 else 0.5)
    assert fired(late(x)) == [1, 3, 5, 6, 7, 8, 9, 10, 11]


def test_step_matches_the_sequence_forward():
    neuron = EventDrivenLIF.replacing(lif_b(lam=0.6, theta=0.8))
    x = _inputs(5)
    state = neuron.initial_state(x[0])
    stepped = []
    for t in range(T):
        s, state = neuron.step(x[t], state)
        stepped.append(s)
    assert isinstance(state, NeuronState)
    assert torch.equal(torch.stack(stepped), neuron(x))


def _network(neuron=lambda: lif_b(theta=0.5), hidden: int = 12) -> nn.Module:
    def block(n_in, n_out):
        return SpikingBlock(OrderedDict(fc=nn.Linear(n_in, n_out), neuron=neuron()))

    torch.manual_seed(0)
    net = nn.Module()
    net.layers = nn.ModuleDict(OrderedDict(
        hidden1=block(4, hidden), hidden2=block(hidden, hidden), fc=nn.Linear(hidden, 3)))

    def forward(x):
        for layer in net.layers.values():
            x = layer(x)
        return x

    net.forward = forward
    return net


def _spike_counts(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(spikes, T x samples x neurons) of a forward pass, counted independently."""
    seen = [0, 0]

    def count(_m, _a, out):
        seen[0] += int(out.sum())
        seen[1] += out.numel()

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, SpikingNeuron)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen[0], seen[1]


def test_backward_events_equal_the_spike_count_and_bptt_counts_every_pair():
    x = torch.rand(T, 16, 4) * 2
    y = torch.randint(0, 3, (16,))
    model = _network()
    spikes, dense = _spike_counts(model, x)
    assert 0 < spikes < dense
    trainer = MPDEDTrainer(model, epochs=1, steps_per_epoch=1, lr=1e-2)
    metrics = trainer.train_step(x, y)
    assert metrics["backward_events"] == spikes
    assert metrics["dense_backward_events"] == dense == T * 16 * 24
    assert trainer.metric_reductions["backward_events"] == "sum"
    assert trainer.metric_reductions["silent_fraction.hidden1"] == "mean"
    assert {"grad_norm.hidden1", "grad_norm.hidden2", "grad_norm.fc"} <= set(metrics)
    assert all(isinstance(v, float) and math.isfinite(v) for k, v in metrics.items()
               if k not in ("correct", "count"))
    # the network keeps its own neurons outside a step
    assert all(type(m) is SpikingNeuron for m in model.modules()
               if isinstance(m, SpikingNeuron))

    bptt = BPTTTrainer(_network(), epochs=1, steps_per_epoch=1, lr=1e-2).train_step(x, y)
    assert bptt["backward_events"] == bptt["dense_backward_events"] == dense
    assert set(bptt) == set(metrics)


def test_the_swapped_network_computes_what_the_original_did():
    x = torch.rand(T, 8, 4) * 2
    model = _network()
    with torch.no_grad():
        before = model(x)
    trainer = MPDEDTrainer(model, epochs=1, steps_per_epoch=1, lr=1e-2)
    with trainer.event_driven():
        assert sum(isinstance(m, EventDrivenLIF) for m in model.modules()) == 2
        with torch.no_grad():
            during = model(x)
    assert torch.equal(before, during)


def test_silent_layer_fraction_is_one_and_warns_naming_it(caplog):
    model = _network(lambda: lif_b(theta=1e3))  # nothing reaches this threshold
    trainer = MPDEDTrainer(model, epochs=1, steps_per_epoch=2, lr=1e-2)
    x, y = torch.rand(T, 8, 4), torch.randint(0, 3, (8,))
    with caplog.at_level(logging.WARNING, logger="wb_core.backward_metrics"):
        metrics = trainer.train_step(x, y)
        trainer.train_step(x, y)
    assert metrics["silent_fraction.hidden1"] == metrics["silent_fraction.hidden2"] == 1.0
    assert metrics["backward_events"] == 0.0
    assert metrics["grad_norm.hidden1"] == 0.0  # no spike, no gradient: event-driven
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per layer, not once per batch
    assert "hidden1" in warnings[0] and "hidden2" in warnings[1]


class _OtherNeuron(nn.Module):
    def initial_state(self, x):
        return NeuronState(v=torch.zeros_like(x))

    def step(self, x, state):
        return (x > 1).float(), state

    def forward(self, x):
        return (x > 1).float()


def test_a_neuron_it_cannot_handle_is_one_clear_error_naming_the_node():
    with pytest.raises(UnsupportedNeuron, match="hidden1.neuron.*_OtherNeuron") as info:
        MPDEDTrainer(_network(_OtherNeuron), epochs=1, steps_per_epoch=1)
    assert isinstance(info.value, WorkbenchError) and info.value.node == "hidden1"
    with pytest.raises(UnsupportedNeuron, match="no spiking neuron"):
        MPDEDTrainer(nn.Linear(4, 3), epochs=1, steps_per_epoch=1)


def test_the_rule_is_contributed_with_bptts_parameters(plugin_host):
    spec = plugin_host.registry.get("wb_event_learning.mpd_ed")
    names = [p.name for p in spec.params]
    assert {"optimizer", "lr", "schedule", "loss", "surrogate_width"} <= set(names)
    trainer = spec.create(_network(), epochs=1, steps_per_epoch=1, lr=0.01,
                          surrogate_width=2.0)
    assert isinstance(trainer, MPDEDTrainer) and trainer.lr == pytest.approx(0.01)


def test_mpd_ed_trains_digits_through_the_cli_with_its_metrics_in_json_and_record(tmp_path):
    folder = shutil.copytree(examples_dir() / "digits_mpd_ed", tmp_path / "digits_mpd_ed")
    out = io.StringIO()
    assert main(["train", str(folder), "--epochs", "1", "--json", "--no-save"], out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    summary = lines[-1]
    assert summary["status"] == "ok"
    metrics = summary["metrics"]
    keys = {"backward_events", "dense_backward_events", "silent_fraction.hidden1",
            "silent_fraction.hidden2", "grad_norm.hidden1", "grad_norm.hidden2",
            "grad_norm.fc"}
    assert keys <= set(metrics)
    assert 0 < metrics["backward_events"] < metrics["dense_backward_events"]
    assert summary["test_accuracy"] > 0.5  # learning (chance is 0.1), after one epoch
    (record,) = (folder / "runs").glob("*.jsonl")
    epochs = [json.loads(line) for line in record.read_text().splitlines()]
    epochs = [e for e in epochs if e.get("epoch_end")]
    assert len(epochs) == 1 and keys <= set(epochs[-1]["values"])


class _SignedSpikes(nn.Module):
    """A neuron module whose spikes are -1, 0 or +1 (as ternary neurons' are): the input's
    sign where its magnitude is above 0.5."""

    def initial_state(self, x):
        return None

    def step(self, x, state):
        return self(x), state

    def forward(self, x):
        return torch.where(x.abs() > 0.5, x.sign(), torch.zeros_like(x))


@pytest.mark.parametrize("signed", [False, True], ids=["0/1 spikes", "signed spikes"])
def test_silent_fraction_counts_neurons_without_any_spike(signed):
    """A neuron is silent when it gave no spike at any step for any sample; one whose only
    spikes are -1 is not (the 0/1 neurons are found with one reduction, signed ones with two)."""
    from wb_core.backward_metrics import BackwardMetrics

    neuron = _SignedSpikes() if signed else lif()
    model = nn.Sequential(OrderedDict(hidden=neuron))
    x = torch.zeros(T, 3, 6)
    x[1, 2, 0] = 5.0  # neuron 0 fires once, for one sample at one step
    x[:, :, 1] = 5.0  # neuron 1 fires throughout
    x[0, 0, 2] = -5.0  # neuron 2: a negative spike where spikes are signed, nothing otherwise
    metrics = BackwardMetrics(model)
    with metrics.recording() as step:
        model(x)
    silent = 3 / 6 if signed else 4 / 6
    assert metrics.step_metrics(step)["silent_fraction.hidden"] == pytest.approx(silent)
