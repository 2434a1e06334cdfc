"""wb_stdbp: the ReL-PSP neuron's closed form, the STDBP gradient, the alpha-PSP variant, the
layers, the learning rule and the digits_stdbp example (no Qt)."""

from __future__ import annotations

import logging
import math
import shutil

import pytest
import torch
from wb_stdbp.alpha import alpha_kernel, alpha_spike_times, alpha_times
from wb_stdbp.layers import RelPSPConv2d, RelPSPLinear, relpsp_linear
from wb_stdbp.learning import STDBPTrainer
from wb_stdbp.relpsp import (
    GRADIENT_CLIP,
    causal_pairs,
    relpsp_times,
    sorted_prefixes,
    stdbp_jacobians,
    stdbp_times,
)

from workbench.core.persistence.examples import examples_dir
from workbench.core.persistence.project_files import load_project
from workbench.pluginhost import CompileError, DeployError, EnergyMeter, Session

THETA, HORIZON, DT = 1.0, 10.0, 1e-3
INF = math.inf


def simulate(t_in, weight, psp, dt=DT, horizon=HORIZON, theta=THETA):
    """Step V(t) = sum_i w_i psp(t - t_i) on a grid up to the horizon: the first grid time with
    V >= theta (inf if none), and how many times V climbs through theta."""
    grid = torch.arange(0.0, horizon + dt / 2, dt, dtype=torch.float64)
    lag = grid[:, None, None] - torch.where(torch.isfinite(t_in), t_in, 2 * horizon)[None]
    v = torch.einsum("gni,oi->gno", psp(lag), weight)
    above = v >= theta
    first = grid[above.to(torch.uint8).argmax(0)]
    crossings = (above[1:] & ~above[:-1]).sum(0)
    return torch.where(above.any(0), first, torch.full_like(first, INF)), crossings


def random_case(seed, n=40, inputs=10, outputs=8, spread=0.8):
    gen = torch.Generator().manual_seed(seed)
    t_in = torch.rand(n, inputs, generator=gen, dtype=torch.float64) * 2
    t_in[torch.rand(n, inputs, generator=gen) < 0.2] = INF  # some inputs never fire
    weight = torch.randn(outputs, inputs, generator=gen, dtype=torch.float64) * spread
    return t_in, weight


def relu_psp(lag):
    return lag.clamp(min=0)


# -- the closed form ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_closed_form_matches_a_fine_step_simulation_up_to_the_horizon(seed):
    t_in, weight = random_case(seed)
    t_out = relpsp_times(t_in, weight, THETA, HORIZON)
    simulated, _ = simulate(t_in, weight, relu_psp)
    fired = torch.isfinite(t_out)
    assert torch.equal(fired, torch.isfinite(simulated))
    assert 0.2 < fired.double().mean() < 0.9  # both fired and silent neurons are exercised
    assert ((t_out - simulated).abs()[fired] <= DT).all()
    # the skip branch (a prefix whose weight sum is <= 0) and negative weights are exercised
    _, _, w_sorted = sorted_prefixes(t_in, weight)
    assert (w_sorted.cumsum(1) <= 0).any() and (weight < 0).any()


def test_a_prefix_with_no_positive_weight_sum_is_skipped():
    t_in = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
    weight = torch.tensor([[-1.0, 0.5, 2.0]], dtype=torch.float64)
    # k=1: sum -1 (skip); k=2: sum -0.5 (skip); k=3: (1 + 0 + 0.25 + 2) / 1.5
    assert relpsp_times(t_in, weight, 1.0, 10.0).item() == pytest.approx(3.25 / 1.5)


def test_a_neuron_fires_once_even_when_its_potential_crosses_theta_again():
    t_in = torch.tensor([[0.0, 1.5, 3.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0, -3.0, 4.0]], dtype=torch.float64)  # up, down, up again
    t_out = relpsp_times(t_in, weight, 1.0, 10.0)
    simulated, crossings = simulate(t_in, weight, relu_psp)
    assert crossings.item() == 2  # V climbs through theta twice...
    assert t_out.item() == pytest.approx(1.0) == pytest.approx(simulated.item(), abs=DT)


def test_a_spike_after_the_horizon_is_silence():
    t_in = torch.tensor([[0.0]], dtype=torch.float64)
    assert relpsp_times(t_in, torch.tensor([[0.5]], dtype=torch.float64), 1.0, 10.0) == 2.0
    assert relpsp_times(t_in, torch.tensor([[0.05]], dtype=torch.float64), 1.0, 10.0) == INF


def test_every_causal_input_came_first_and_later_inputs_change_nothing():
    t_in, weight = random_case(3)
    t_out = relpsp_times(t_in, weight, THETA, HORIZON)
    causal = causal_pairs(t_in, t_out)
    assert causal.any()
    assert (t_in.unsqueeze(1).expand_as(causal)[causal]
            < t_out.unsqueeze(-1).expand_as(causal)[causal]).all()
    for j in range(weight.shape[0]):  # move every input after t_j later still, or silence it
        later = t_in.clone()
        after = t_in > t_out[:, j:j + 1]
        later[after] = torch.where(torch.rand(int(after.sum())) < 0.5, INF,
                                   t_in[after].double() + 1.0)
        assert torch.equal(relpsp_times(later, weight, THETA, HORIZON)[:, j], t_out[:, j])


def test_the_output_does_not_depend_on_the_order_of_the_inputs():
    t_in, weight = random_case(4)
    perm = torch.randperm(t_in.shape[1], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(relpsp_times(t_in[:, perm], weight[:, perm], THETA, HORIZON),
                          relpsp_times(t_in, weight, THETA, HORIZON), rtol=1e-12, atol=0)


# -- STDBP --------------------------------------------------------------------------------------

def _finite(fn):
    return lambda *args: fn(*args).nan_to_num(posinf=0.0)


def test_stdbp_jacobians_match_finite_differences_in_float64():
    t_in, weight = random_case(5, n=12, inputs=6, outputs=5)
    t_in = t_in.nan_to_num(posinf=5.0)  # silent inputs cannot be perturbed; fire them late
    w = weight.clone().requires_grad_(True)
    t = t_in.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(_finite(lambda w: stdbp_times(t_in, w, 1.0, 10.0)), (w,))
    assert torch.autograd.gradcheck(_finite(lambda t: stdbp_times(t, weight, 1.0, 10.0)), (t,))


def _backward_against_the_jacobians(t_in, weight):
    """The autograd backward of ``stdbp_times`` and the gradient contracted from the
    Jacobians of :func:`stdbp_jacobians`, for a random upstream gradient."""
    t = t_in.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    t_out = stdbp_times(t, w, THETA, HORIZON)
    upstream = torch.randn(t_out.shape, generator=torch.Generator().manual_seed(1),
                           dtype=t_out.dtype)
    got = torch.autograd.grad(t_out, (t, w), upstream)
    t_out = t_out.detach()
    d_weight, d_input = stdbp_jacobians(t_in, weight, t_out)
    upstream = torch.where(torch.isfinite(t_out), upstream, torch.zeros_like(upstream))
    return got, (torch.einsum("no,noi->ni", upstream, d_input),
                 torch.einsum("no,noi->oi", upstream, d_weight)), d_weight, d_input


@pytest.mark.parametrize("seed", [0, 1])
def test_the_contracted_backward_is_the_jacobians_contraction(seed):
    """The backward never forms the Jacobians when no entry reaches the clip."""
    got, want, d_weight, d_input = _backward_against_the_jacobians(*random_case(seed))
    assert d_weight.abs().max() < GRADIENT_CLIP and d_input.abs().max() < GRADIENT_CLIP
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_a_tiny_causal_weight_sum_takes_the_clipped_jacobians():
    # the output's two causal weights nearly cancel: W_C = 1e-9, 1/W_C far beyond the clip.
    # It does not fire on the first input alone (theta / w_0 lands just after t = 1) and
    # fires at (theta + w_1 * 1) / W_C = 3, before the third input
    t_in = torch.tensor([[0.0, 1.0, 5.0, 9.0]], dtype=torch.float64)
    weight = torch.tensor([[1.0 - 2e-9, -1.0 + 3e-9, 0.5, 1.0]], dtype=torch.float64)
    got, want, d_weight, _ = _backward_against_the_jacobians(t_in, weight)
    assert relpsp_times(t_in, weight, THETA, HORIZON).item() == pytest.approx(3.0, rel=1e-3)
    assert d_weight.abs().max() == GRADIENT_CLIP  # the clip is in force
    for g, r in zip(got, want, strict=True):
        assert torch.equal(g, r)


def test_stdbp_gives_exactly_zero_to_non_causal_pairs_and_silent_neurons():
    t_in, weight = random_case(6)
    t = t_in.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    t_out = stdbp_times(t, w, THETA, HORIZON)
    causal = causal_pairs(t_in, t_out.detach())
    silent = ~torch.isfinite(t_out.detach())
    assert silent.any() and causal.any() and not causal.all()
    for j in range(weight.shape[0]):  # d t_j / d(t, w): one output neuron at a time
        pick = torch.zeros_like(t_out)
        pick[:, j] = 1.0
        grad_t, grad_w = torch.autograd.grad(t_out, (t, w), pick, retain_graph=True)
        assert (grad_t[~causal[:, j]] == 0).all() and (grad_t[causal[:, j]] != 0).any()
        assert (grad_w[j][~causal[:, j].any(0)] == 0).all()
        assert (grad_w[:j] == 0).all() and (grad_w[j + 1:] == 0).all()
    # a gradient arriving at silent neurons goes nowhere
    grad_t, grad_w = torch.autograd.grad(t_out, (t, w), silent.to(t_out.dtype))
    assert (grad_t == 0).all() and (grad_w == 0).all()


def test_raising_a_weight_moves_a_spike_earlier_only_through_a_causal_input():
    t_in, weight = random_case(7)
    t_out = relpsp_times(t_in, weight, THETA, HORIZON)
    causal = causal_pairs(t_in, t_out)
    n, j = [int(v) for v in torch.nonzero(torch.isfinite(t_out))[0]]
    for i in range(weight.shape[1]):
        bumped = weight.clone()
        bumped[j, i] += 1e-6  # either sign of w_ij: the slope (t_i - t_j)/W_C is negative
        t_new = relpsp_times(t_in[n:n + 1], bumped, THETA, HORIZON)[0, j]
        if causal[n, j, i]:
            assert t_new < t_out[n, j]
        else:
            assert t_new == t_out[n, j]


# -- the alpha kernel ---------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_the_alpha_kernel_matches_a_fine_step_simulation(tau):
    t_in, weight = random_case(8, spread=1.0)
    t_out = alpha_times(t_in, weight, THETA, HORIZON, tau)
    simulated, _ = simulate(t_in, weight, lambda lag: alpha_kernel(lag, tau))
    fired = torch.isfinite(t_out)
    assert torch.equal(fired, torch.isfinite(simulated)) and fired.any() and not fired.all()
    assert ((t_out - simulated).abs()[fired] <= DT).all()


def test_the_alpha_gradient_is_the_implicit_function_rule():
    t_in, weight = random_case(9, n=12, inputs=6, outputs=5, spread=1.0)
    t_in = t_in.nan_to_num(posinf=5.0)
    w = weight.clone().requires_grad_(True)
    t = t_in.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        _finite(lambda w: alpha_spike_times(t_in, w, 1.0, 10.0, 2.0)), (w,))
    assert torch.autograd.gradcheck(
        _finite(lambda t: alpha_spike_times(t, weight, 1.0, 10.0, 2.0)), (t,))


# -- layers -------------------------------------------------------------------------------------

def test_the_conv_layer_is_the_linear_neuron_on_each_receptive_field_and_padding_never_fires():
    torch.manual_seed(0)
    conv = RelPSPConv2d(2, 3, 3, padding=1).double()
    x = torch.rand(1, 2, 2, 5, 5, dtype=torch.float64)
    x[x > 0.8] = INF
    out = conv(x)
    assert out.shape == (1, 2, 3, 5, 5)
    padded = torch.nn.functional.pad(x[0], (1, 1, 1, 1), value=INF)
    weight = conv.weight.reshape(3, -1)
    for b, r, c in [(0, 0, 0), (1, 2, 3), (1, 4, 4)]:  # corners see padding
        field = padded[b, :, r:r + 3, c:c + 3].reshape(1, -1)
        assert torch.equal(relpsp_times(field, weight, 1.0, 10.0)[0], out[0, b, :, r, c])


def test_the_ledger_counts_fired_inputs_times_fan_out():
    layer = RelPSPLinear(5, 4)
    x = torch.tensor([[[0.0, INF, 0.3, INF, 1.0], [INF] * 5]])  # [1, B=2, 5]: 3 inputs fired
    with EnergyMeter(layer) as meter:
        layer(x)
    report = meter.report(_cost_table())
    assert report.sops_per_sample * report.samples == 3 * 4 and report.macs_per_sample == 0


def _cost_table():
    from workbench.core.build.energy import CostTable

    return CostTable("t", "t", 4.6, 0.9, "test")


def test_a_horizon_inside_the_input_window_is_refused_naming_the_parameter():
    with pytest.raises(ValueError, match="horizon must be above the input window"):
        relpsp_linear([(64,)], out_features=4, horizon=1.0)
    with pytest.raises(ValueError, match="tau must be positive"):
        relpsp_linear([(64,)], out_features=4, kernel="alpha", tau=0.01, horizon=10.0)


# -- through the core ---------------------------------------------------------------------------

@pytest.fixture
def digits_stdbp(tmp_path):
    folder = shutil.copytree(examples_dir() / "digits_stdbp", tmp_path / "digits_stdbp",
                             ignore=shutil.ignore_patterns("runs", "*.safetensors"))
    return folder


def _edit(folder, edit):
    import json

    path = folder / "project.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return load_project(folder)


def test_most_hidden_neurons_fire_at_initialisation_on_the_digits(digits_stdbp, plugin_host):
    session = Session(load_project(digits_stdbp), plugin_host.registry)
    torch.manual_seed(0)
    model = session.build()
    x, _ = next(session.data().test.batches(128))
    with torch.no_grad():
        t = session.encoder()(x)
        for node in ("flat", "hidden1", "hidden2", "out"):
            t = model.layers[node](t)
            if node != "flat":
                assert torch.isfinite(t).double().mean() > 0.85, node


def test_a_rate_encoder_feeding_the_time_layers_is_named(digits_stdbp, plugin_host):
    project = _edit(digits_stdbp, lambda d: d.update(
        encoder={"id": "wb_core.rate", "params": {}, "time_steps": 4}))
    with pytest.raises(CompileError) as caught:
        Session(project, plugin_host.registry).build()
    assert caught.value.node == "hidden1"
    assert "wb_stdbp.relpsp_linear takes spike times" in caught.value.message


def test_a_bad_horizon_is_named_on_its_node(digits_stdbp, plugin_host):
    def set_horizon(value):
        def edit(d):
            d["graph"]["nodes"][1]["params"]["horizon"] = value
        return edit

    project = _edit(digits_stdbp, set_horizon(1.0))
    with pytest.raises(CompileError) as caught:
        Session(project, plugin_host.registry).build()
    assert caught.value.node == "hidden1"
    assert "horizon must be above the input window" in caught.value.message
    with pytest.raises(CompileError) as caught:  # below the parameter's range: the same node
        Session(_edit(digits_stdbp, set_horizon(0.5)), plugin_host.registry).build()
    assert caught.value.node == "hidden1" and "params.horizon" in caught.value.message


def test_a_silent_layer_warns_and_the_loss_stays_finite(caplog):
    torch.manual_seed(0)
    model = torch.nn.Sequential(RelPSPLinear(8, 6), RelPSPLinear(6, 3))
    with torch.no_grad():
        model[0].weight.fill_(-1.0)  # nothing fires in the first layer, hence nothing after
    trainer = STDBPTrainer(model, epochs=1, steps_per_epoch=1)
    with caplog.at_level(logging.WARNING, logger="wb_stdbp.metrics"):
        m = trainer.train_step(torch.rand(1, 4, 8), torch.tensor([0, 1, 2, 0]))
    assert math.isfinite(m["loss"]) and m["backward_events"] == 0
    assert m["silent_fraction.0"] == 1.0 and m["silent_fraction.1"] == 1.0
    assert any("layer 0: no neuron fired" in r.getMessage() for r in caplog.records)


def test_one_epoch_through_the_core_reports_the_rule_metrics(digits_stdbp, plugin_host):
    def shrink(d):  # a narrow copy: the metrics, not the accuracy, are under test
        for node in d["graph"]["nodes"][1:3]:
            node["params"]["out_features"] = 24

    session = Session(_edit(digits_stdbp, shrink), plugin_host.registry)
    finished = session.train(epochs=1).result()
    assert finished.status == "ok", finished.error
    metrics = finished.summary["metrics"]
    for key in ("backward_events", "dense_backward_events", "silent_fraction.hidden1",
                "silent_fraction.out", "grad_norm.hidden1", "grad_norm.out"):
        assert key in metrics
    assert 0 < metrics["backward_events"] <= metrics["dense_backward_events"]
    train_samples = session.data().train.n_batches(1)
    assert metrics["dense_backward_events"] == train_samples * (24 + 24 + 10)


def test_the_fpga_and_nir_refuse_a_firing_time_network_in_one_line_naming_the_node(
        digits_stdbp, plugin_host):
    """(wb_sim runs it: tests/plugins/test_sim_ttfs.py.)"""
    from workbench.core.runs import catalog

    session = Session(load_project(digits_stdbp), plugin_host.registry)
    finished = catalog.check_fit(session, backend="wb_fpga.fpga").result()
    assert finished.status == "ok", finished.error
    [issue] = finished.summary["fit"]
    assert issue["node"] == "hidden1" and issue["severity"] == "error"
    assert "time-to-first-spike layer" in issue["message"]
    assert "has no firing-time neurons" in issue["message"]
    assert not catalog.check_fit(session, backend="wb_sim.simulator").result().summary["fit"]
    nir = plugin_host.registry.get("wb_nir.nir").create()
    with pytest.raises(DeployError) as err:
        nir.export_file(session, digits_stdbp / "net.nir")
    assert ("node 'hidden1' (wb_stdbp.relpsp_linear): a time-to-first-spike layer"
            in str(err.value))
    assert not (digits_stdbp / "net.nir").exists()
