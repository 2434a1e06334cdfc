"""Tests of the ``wb_core`` plugin: neurons (both LIF forms of docs/wb_core.md), surrogates,
encoders, blocks, losses and the BPTT trainer.

Every neuron is built through its spec (``plugin_host.registry.get(id).create(**params)``), as a
compiled network builds it, so the spec defaults are exercised too.
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from wb_core import neurons as neuron_mod
from wb_core.encoders import DirectEncoder, LatencyEncoder, RateEncoder
from wb_core.learning import BPTTTrainer
from wb_core.losses import LOSSES, mean_output_ce, tet
from wb_core.surrogates import DEFAULT_ALPHA, spike, surrogate_grad

NEURON_IDS = ("wb_core.lif", "wb_core.lif_b", "wb_core.if")
SURROGATE_NAMES = ("sigmoid", "atan", "triangle", "rectangle")


def make_neuron(host, spec_id: str, **params):
    spec = host.registry.get(spec_id)
    assert spec is not None, f"{spec_id} is not registered"
    return spec.create(**params)


def no_leak_neuron(host, param: str, reset: str):
    """The integrate-and-fire (no-leak) form of each LIF parameterisation."""
    if param == "A":
        return make_neuron(host, "wb_core.if", reset=reset)
    return make_neuron(host, "wb_core.lif_b", lam=1.0, reset=reset)


def run_steps(neuron, x: torch.Tensor) -> torch.Tensor:
    """Step the neuron one time step at a time through autograd."""
    state = neuron.initial_state(x[0])
    out = []
    for t in range(x.shape[0]):
        s, state = neuron.step(x[t], state)
        out.append(s)
    return torch.stack(out)


# ============================================================================================
# Neurons, the two LIF forms of docs/wb_core.md


def test_neuron_specs_are_registered_with_the_documented_defaults(plugin_host):
    lif = make_neuron(plugin_host, "wb_core.lif").dynamics
    assert (lif.a, lif.b, lif.c) == (0.5, 0.5, 0.0)  # tau = 2: leak 0.5, input gain 0.5
    assert (lif.v_th, lif.v_reset, lif.hard_reset, lif.detach_reset) == (1.0, 0.0, True, True)
    assert (lif.surrogate, lif.alpha, lif.at_zero) == ("sigmoid", 4.0, True)

    b = make_neuron(plugin_host, "wb_core.lif_b").dynamics
    assert (b.a, b.b, b.c) == (0.5, 1.0, 0.0)
    assert (b.v_th, b.v_reset, b.hard_reset, b.detach_reset) == (1.0, 0.0, True, False)
    assert (b.surrogate, b.alpha, b.at_zero) == ("triangle", 1.0, False)

    if_ = make_neuron(plugin_host, "wb_core.if").dynamics
    assert (if_.a, if_.b, if_.c) == (1.0, 1.0, 0.0)
    assert (if_.v_th, if_.hard_reset, if_.at_zero) == (1.0, True, True)

    # surrogate_alpha = 0 takes the surrogate's own default
    for name in SURROGATE_NAMES:
        n = make_neuron(plugin_host, "wb_core.lif", surrogate=name, surrogate_alpha=0.0)
        assert n.dynamics.alpha == DEFAULT_ALPHA[name]


@pytest.mark.parametrize("path", ["forward", "step"])
@pytest.mark.parametrize("c", [0.3, 0.45, 0.7, 1.3])
@pytest.mark.parametrize("param", ["A", "B"])
def test_integrate_and_fire_rates(plugin_host, param, c, path):
    T = 60
    x = torch.full((T, 1, 1), c)
    rates = {}
    for reset in ("soft", "hard"):
        neuron = no_leak_neuron(plugin_host, param, reset)
        with torch.no_grad():
            s = neuron(x) if path == "forward" else run_steps(neuron, x)
        rates[reset] = float(s.mean())
    theta = 1.0
    assert abs(rates["soft"] - min(1.0, c / theta)) <= 1.0 / T
    k = 1
    while not (k * c >= theta if param == "A" else k * c > theta):
        k += 1
    assert abs(rates["hard"] - 1.0 / k) <= 1.0 / T
    if c == 0.7:
        assert abs(rates["hard"] - 0.5) <= 1.0 / T  # the spec's example: 0.5, not 0.7


def test_threshold_tie_fires_in_a_not_in_b(plugin_host):
    """A fires at H >= V_th (Heaviside(0) = 1), B at u > theta: exact ties in float."""
    x = torch.full((6, 1, 1), 0.5)
    with torch.no_grad():
        a = no_leak_neuron(plugin_host, "A", "hard")(x).flatten().tolist()
        b = no_leak_neuron(plugin_host, "B", "hard")(x).flatten().tolist()
    assert a == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]  # 0.5 + 0.5 = 1 >= 1
    assert b == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]  # 1.5 > 1 on the third step
    x1 = torch.ones(1, 1, 1)
    with torch.no_grad():
        assert float(no_leak_neuron(plugin_host, "A", "hard")(x1)) == 1.0
        assert float(no_leak_neuron(plugin_host, "B", "hard")(x1)) == 0.0


def _reference_a(x, tau, v_th, reset, v_reset=0.0):
    """LIF parameterisation A (docs/wb_core.md) written out; V[-1] = V_reset (0 by default)."""
    v = torch.full_like(x[0], v_reset)
    spikes, charged = [], []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - v_reset)) / tau
        s = (h - v_th >= 0).to(x.dtype)
        v = h * (1 - s) + v_reset * s if reset == "hard" else h - v_th * s
        spikes.append(s)
        charged.append(h)
    return torch.stack(spikes), torch.stack(charged)


def _reference_b(x, lam, theta, reset):
    """LIF parameterisation B (docs/wb_core.md) written out."""
    u = torch.zeros_like(x[0])
    spikes, charged = [], []
    for t in range(x.shape[0]):
        u_pre = lam * u + x[t]
        s = (u_pre - theta > 0).to(x.dtype)
        u = u_pre * (1 - s) if reset == "hard" else u_pre - theta * s
        spikes.append(s)
        charged.append(u_pre)
    return torch.stack(spikes), torch.stack(charged)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_leaky_dynamics_match_the_written_equations(plugin_host, reset):
    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, 4, 5, generator=g, dtype=torch.float64) * 2.5
    for tau, v_th, v_reset in ((2.0, 1.0, 0.0), (3.0, 0.7, 0.0), (2.0, 1.0, -0.4)):
        n = make_neuron(plugin_host, "wb_core.lif", tau=tau, v_th=v_th, v_reset=v_reset,
                        reset=reset)
        n.record_membrane = True
        with torch.no_grad():
            s = n(x)
        ref_s, ref_h = _reference_a(x, tau, v_th, reset, v_reset)
        assert torch.equal(s, ref_s)
        torch.testing.assert_close(n.last_membrane, ref_h)
    for lam, theta in ((0.5, 1.0), (0.8, 1.4)):
        n = make_neuron(plugin_host, "wb_core.lif_b", lam=lam, theta=theta, reset=reset)
        n.record_membrane = True
        with torch.no_grad():
            s = n(x)
        ref_s, ref_h = _reference_b(x, lam, theta, reset)
        assert torch.equal(s, ref_s)
        torch.testing.assert_close(n.last_membrane, ref_h)
    assert float(ref_s.mean()) > 0.05  # the comparison saw spikes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spec_id", NEURON_IDS)
def test_output_is_exactly_binary_float(plugin_host, spec_id, dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 3, 2, 4, generator=g) * 2).to(dtype)
    neuron = make_neuron(plugin_host, spec_id)
    outs = [neuron(x), neuron(x.clone().requires_grad_(True)), run_steps(neuron, x)]
    for s in outs:
        assert s.dtype == dtype
        assert s.shape == x.shape
        assert set(s.detach().unique().tolist()) == {0.0, 1.0}
        assert bool(((s == 0) | (s == 1)).all())


def _surrogate_formula(name: str, x: float, a: float) -> float:
    if name == "sigmoid":
        sg = 1.0 / (1.0 + math.exp(-a * x))
        return a * sg * (1.0 - sg)
    if name == "atan":
        return a / 2.0 / (1.0 + (math.pi / 2.0 * a * x) ** 2)
    if name == "triangle":
        return max(0.0, a - abs(x)) / a**2
    assert name == "rectangle"
    return (1.0 / a) if abs(x) < a / 2.0 else 0.0


@pytest.mark.parametrize("alpha", [None, 1.7])
@pytest.mark.parametrize("name", SURROGATE_NAMES)
def test_surrogate_gradient_matches_closed_form(name, alpha):
    points = [-0.9, -0.3, 0.05, 0.4, 1.2]  # 5 points, none on a rectangle/triangle corner
    a = DEFAULT_ALPHA[name] if alpha is None else alpha
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    s = spike(x, name, alpha)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    (grad,) = torch.autograd.grad(s.sum(), x)
    expected = torch.tensor([_surrogate_formula(name, p, a) for p in points], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    assert float(grad.abs().sum()) > 0
    torch.testing.assert_close(surrogate_grad(name, x.detach(), a), expected)


def test_surrogate_defaults_follow_the_methods():
    # sigmoid alpha = 4 (A), triangle a = 1 (B), at x = 0: alpha/4 and 1/a
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(x, "sigmoid").sum(), x)
    assert float(g) == pytest.approx(1.0)
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(x, "triangle").sum(), x)
    assert float(g) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        surrogate_grad("nope", x.detach(), 1.0)


@pytest.mark.parametrize("spec_id", NEURON_IDS)
def test_state_resets_between_calls(plugin_host, spec_id):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(10, 4, 6, generator=g) * 1.5
    other = torch.rand(10, 4, 6, generator=g) * 3.0
    neuron = make_neuron(plugin_host, spec_id, reset="soft")
    with torch.no_grad():
        first = neuron(x)
        second = neuron(x)
        neuron(other)
        third = neuron(x)
    assert torch.equal(first, second)
    assert torch.equal(first, third)
    assert 0 < float(first.mean()) < 1
    # the grad path too
    y1 = neuron(x.clone().requires_grad_(True))
    y2 = neuron(x.clone().requires_grad_(True))
    assert torch.equal(y1, y2) and torch.equal(y1.detach(), first)


@pytest.mark.parametrize("surrogate", SURROGATE_NAMES)
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("spec_id", NEURON_IDS)
def test_fused_backward_equals_stepping_through_autograd(plugin_host, spec_id, reset,
                                                         detach_reset, surrogate):
    seed = zlib.crc32(f"{spec_id}{reset}{detach_reset}{surrogate}".encode())
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 3, 5, generator=g, dtype=torch.float64) * 0.8 + 0.6
    w = torch.randn(7, 3, 5, generator=g, dtype=torch.float64)
    neuron = make_neuron(plugin_host, spec_id, reset=reset, detach_reset=detach_reset,
                         surrogate=surrogate, surrogate_alpha=0.0 if surrogate != "rectangle"
                         else 2.0)

    x1 = x.clone().requires_grad_(True)
    s1 = neuron(x1)
    (s1 * w).sum().backward()

    x2 = x.clone().requires_grad_(True)
    s2 = run_steps(neuron, x2)
    (s2 * w).sum().backward()

    assert torch.equal(s1.detach(), s2.detach())
    assert 0.05 < float(s1.detach().mean()) < 0.95
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    assert float(x1.grad.abs().sum()) > 0


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("spec_id", ["wb_core.lif", "wb_core.if"])
def test_fused_backward_with_nonzero_reset_potential(plugin_host, spec_id, detach_reset):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(6, 2, 4, generator=g, dtype=torch.float64) + 0.8
    neuron = make_neuron(plugin_host, spec_id, v_reset=-0.3, detach_reset=detach_reset)
    x1 = x.clone().requires_grad_(True)
    s1 = neuron(x1)
    (s1 * torch.arange(1.0, 7.0, dtype=torch.float64).view(6, 1, 1)).sum().backward()
    x2 = x.clone().requires_grad_(True)
    s2 = run_steps(neuron, x2)
    (s2 * torch.arange(1.0, 7.0, dtype=torch.float64).view(6, 1, 1)).sum().backward()
    assert torch.equal(s1.detach(), s2.detach())
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec_id", NEURON_IDS)
def test_record_membrane(plugin_host, spec_id):
    x = torch.rand(5, 2, 3, 4) * 2
    neuron = make_neuron(plugin_host, spec_id)
    neuron(x)
    assert neuron.last_membrane is None  # off by default: nothing stored

    neuron.record_membrane = True
    s = neuron(x)
    assert neuron.last_membrane is not None
    assert neuron.last_membrane.shape == (5, 2, 3, 4)
    assert not neuron.last_membrane.requires_grad
    d = neuron.dynamics
    # spikes are exactly where the charged potential crossed the threshold
    crossed = neuron.last_membrane >= d.v_th if d.at_zero else neuron.last_membrane > d.v_th
    assert torch.equal(s, crossed.to(s.dtype))
    # the first step charges from rest
    torch.testing.assert_close(neuron.last_membrane[0], d.a * d.v_reset + d.b * x[0] + d.c)

    # the grad path records too, detached
    neuron.last_membrane = None
    neuron(x.clone().requires_grad_(True))
    assert neuron.last_membrane.shape == (5, 2, 3, 4) and not neuron.last_membrane.requires_grad

    fresh = make_neuron(plugin_host, spec_id)
    fresh.record_membrane = False
    fresh(x.clone().requires_grad_(True))
    assert fresh.last_membrane is None


# ============================================================================================
# Encoders


def test_encoder_specs_build(plugin_host):
    assert isinstance(plugin_host.registry.get("wb_core.direct").create(), DirectEncoder)
    rate = plugin_host.registry.get("wb_core.rate").create(gain=0.5)
    assert isinstance(rate, RateEncoder) and rate.gain == 0.5
    lat = plugin_host.registry.get("wb_core.latency").create()
    assert isinstance(lat, LatencyEncoder) and lat.threshold == 0.01


def test_direct_encoder_repeats():
    x = torch.rand(3, 2, 4, 4)
    out = DirectEncoder().encode(x, 5)
    assert out.shape == (5, 3, 2, 4, 4)
    for t in range(5):
        assert torch.equal(out[t], x)


def test_rate_encoder_statistics():
    torch.manual_seed(1234)
    x = torch.tensor([[0.0, 0.1, 0.25, 0.5, 0.8, 1.0]])
    T = 4000
    for gain in (1.0, 0.5):
        out = RateEncoder(gain).encode(x, T)
        assert out.shape == (T, 1, 6)
        assert set(out.unique().tolist()) <= {0.0, 1.0}
        p = (gain * x).clamp(0, 1)
        mean = out.mean(0)
        # 5 standard deviations of a Bernoulli mean over T draws (and exact at p in {0, 1})
        tol = 5 * torch.sqrt(p * (1 - p) / T) + 1e-9
        assert bool(((mean - p).abs() <= tol).all()), (mean, p)
    # gain above 1 saturates at probability 1
    out = RateEncoder(4.0).encode(torch.tensor([[0.3, 0.0]]), 50)
    assert bool((out[:, 0, 0] == 1).all()) and bool((out[:, 0, 1] == 0).all())


def test_latency_encoder_one_spike_at_the_right_step():
    T = 9
    enc = LatencyEncoder(threshold=0.25)  # exactly representable: x = 0.25 is a clean tie
    x = torch.tensor([[1.0, 0.8, 0.5, 0.33, 0.26, 0.25, 0.0, 0.1]])
    out = enc.encode(x, T)
    assert out.shape == (T, 1, 8)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for i, v in enumerate(x[0].tolist()):
        column = out[:, 0, i]
        if v > 0.25:
            assert float(column.sum()) == 1.0
            assert int(column.argmax()) == round((1 - v) * (T - 1))
        else:
            assert float(column.sum()) == 0.0


def test_latency_decode_inverts_encode_on_the_grid():
    T = 11
    grid = torch.tensor([1.0 - k / (T - 1) for k in range(T)]).view(1, T)  # 1.0, 0.9, ..., 0.0
    enc = LatencyEncoder(threshold=0.01)
    decoded = enc.decode(enc.encode(grid, T))
    torch.testing.assert_close(decoded, grid)
    x = torch.rand(4, 3, 3)
    x = torch.round(x * (T - 1)) / (T - 1)  # onto the grid
    x[x <= 0.01] = 0.0
    torch.testing.assert_close(enc.decode(enc.encode(x, T)), x)


# ============================================================================================
# Blocks


def _lif(host):
    return lambda: host.registry.get("wb_core.lif").create()


BLOCK_CASES = [
    # (spec, in_shapes, params, expected out shape, spiking)
    ("spiking_conv", [(2, 8, 8)], {"out_channels": 4}, (4, 8, 8), True),
    ("spiking_conv", [(2, 8, 8)], {"out_channels": 4, "stride": 2, "batch_norm": False},
     (4, 4, 4), True),
    ("spiking_linear", [(16,)], {"out_features": 5}, (5,), True),
    ("spiking_linear", [(16,)], {"out_features": 5, "batch_norm": True}, (5,), True),
    ("spiking_linear", [(3, 16)], {"out_features": 5}, (3, 5), True),
    ("conv2d", [(2, 8, 8)], {"out_channels": 3, "kernel_size": 3, "padding": 0}, (3, 6, 6), False),
    ("conv2d", [(2, 8, 8)], {"out_channels": 3, "stride": 2}, (3, 4, 4), False),
    ("linear", [(16,)], {"out_features": 7}, (7,), False),
    ("linear", [(3, 16)], {"out_features": 7, "bias": False}, (3, 7), False),
    ("avg_pool", [(2, 8, 8)], {}, (2, 4, 4), False),
    ("max_pool", [(2, 8, 8)], {"kernel_size": 3, "stride": 1}, (2, 6, 6), False),
    ("batch_norm", [(2, 8, 8)], {}, (2, 8, 8), False),
    ("batch_norm", [(16,)], {}, (16,), False),
    ("flatten", [(2, 4, 4)], {}, (32,), False),
    ("dropout", [(2, 4, 4)], {"p": 0.3}, (2, 4, 4), False),
    ("add", [(2, 4, 4), (2, 4, 4)], {}, (2, 4, 4), False),
]


@pytest.mark.parametrize("name, in_shapes, params, out_shape, spiking", BLOCK_CASES)
def test_block_builds_and_maps_shapes(plugin_host, name, in_shapes, params, out_shape, spiking):
    spec = plugin_host.registry.get(f"wb_core.{name}")
    assert spec is not None
    if spiking:
        params = {**params, "neuron": _lif(plugin_host)}
    module = spec.create(list(in_shapes), **params)
    T, B = 3, 2
    xs = [torch.rand(T, B, *s) * 3 for s in in_shapes]
    out = module(*xs)
    assert out.shape == (T, B, *out_shape)
    if spiking:
        assert set(out.detach().unique().tolist()) <= {0.0, 1.0}
        assert isinstance(module.neuron, neuron_mod.SpikingNeuron)


def test_block_values(plugin_host):
    reg = plugin_host.registry
    x = torch.rand(3, 2, 2, 4, 4)
    torch.testing.assert_close(reg.get("wb_core.add").create([(2, 4, 4)] * 2)(x, x), 2 * x)
    assert torch.equal(reg.get("wb_core.flatten").create([(2, 4, 4)])(x), x.reshape(3, 2, 32))
    pooled = reg.get("wb_core.max_pool").create([(2, 4, 4)])(x)
    assert torch.equal(pooled[1, 0], F.max_pool2d(x[1, 0], 2))
    ro = reg.get("wb_core.mean_readout").create([(2, 4, 4)])(x)
    assert ro.shape == (1, 2, 2, 4, 4)
    torch.testing.assert_close(ro[0], x.mean(0))
    # a time-flattened conv is the same conv at every step
    conv = reg.get("wb_core.conv2d").create([(2, 4, 4)], out_channels=3)
    y = conv(x)
    torch.testing.assert_close(y[2], F.conv2d(x[2], conv.weight, conv.bias, padding=1))
    # a spiking conv with batch norm drops the conv bias; without keeps it
    sc = reg.get("wb_core.spiking_conv").create([(2, 4, 4)], neuron=_lif(plugin_host))
    assert sc.conv.bias is None and hasattr(sc, "bn")
    sc = reg.get("wb_core.spiking_conv").create([(2, 4, 4)], neuron=_lif(plugin_host),
                                                batch_norm=False)
    assert sc.conv.bias is not None and not hasattr(sc, "bn")


def test_block_shape_errors(plugin_host):
    reg = plugin_host.registry
    with pytest.raises(ValueError, match=r"expects a \[C, H, W\] input"):
        reg.get("wb_core.conv2d").create([(64,)])
    with pytest.raises(ValueError, match=r"expects a \[C, H, W\] input, got \[64\]"):
        reg.get("wb_core.spiking_conv").create([(64,)], neuron=_lif(plugin_host))
    with pytest.raises(ValueError, match="Flatten"):
        reg.get("wb_core.linear").create([(3, 8, 8)])
    with pytest.raises(ValueError, match="Flatten"):
        reg.get("wb_core.spiking_linear").create([(3, 8, 8)], neuron=_lif(plugin_host))
    with pytest.raises(ValueError, match="equal shapes"):
        reg.get("wb_core.add").create([(2, 4, 4), (2, 4, 5)])
    with pytest.raises(ValueError):
        reg.get("wb_core.add").create([(8,), (2, 4)])
    with pytest.raises(ValueError, match="larger"):
        reg.get("wb_core.conv2d").create([(1, 2, 2)], kernel_size=5, padding=0)
    with pytest.raises(ValueError, match="larger"):
        reg.get("wb_core.avg_pool").create([(1, 2, 2)], kernel_size=3)
    with pytest.raises(ValueError):
        reg.get("wb_core.batch_norm").create([(3, 16)])
    with pytest.raises(ValueError, match="flat"):
        reg.get("wb_core.spiking_linear").create([(3, 16)], neuron=_lif(plugin_host),
                                                 batch_norm=True)


# ============================================================================================
# Losses (docs/wb_core.md)


def test_mean_ce_is_ce_of_the_time_mean():
    g = torch.Generator().manual_seed(5)
    out = torch.randn(4, 6, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    expected = F.cross_entropy(out.mean(0), y)
    torch.testing.assert_close(mean_output_ce(out, y), expected)
    torch.testing.assert_close(LOSSES["mean_ce"](out, y), expected)
    # differs from the mean of per-step CEs (so the test can tell them apart)
    per_step = torch.stack([F.cross_entropy(out[t], y) for t in range(4)]).mean()
    assert abs(float(expected - per_step)) > 1e-3
    # a [B, C] output is taken as is
    torch.testing.assert_close(mean_output_ce(out[0], y), F.cross_entropy(out[0], y))


def test_tet_is_the_mean_of_per_step_ce():
    g = torch.Generator().manual_seed(6)
    out = torch.randn(5, 4, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([2, 0, 1, 1])
    expected = torch.stack([F.cross_entropy(out[t], y) for t in range(5)]).mean()
    torch.testing.assert_close(tet(out, y), expected)
    torch.testing.assert_close(LOSSES["tet"](out, y), expected)
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        tet(out[0], y)


# ============================================================================================
# BPTT


def _snn(host, hidden=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, hidden), host.registry.get("wb_core.lif").create(),
                         nn.Linear(hidden, 2))


def _separable(n=64, T=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DirectEncoder().encode(x * 2, T), y


@pytest.mark.parametrize("loss", ["mean_ce", "tet"])
def test_bptt_reduces_the_loss(plugin_host, loss):
    model = _snn(plugin_host)
    x, y = _separable()
    trainer = BPTTTrainer(model, epochs=1, steps_per_epoch=12, lr=0.05, loss=loss,
                          schedule="constant")
    loss_fn = LOSSES[loss]
    with torch.no_grad():
        before = float(loss_fn(model(x), y))
    results = [trainer.train_step(x, y) for _ in range(12)]
    with torch.no_grad():
        after = float(loss_fn(model(x), y))
    assert after < 0.5 * before, (before, after)
    assert results[-1]["loss"] < results[0]["loss"]
    assert results[-1]["count"] == 64
    assert results[-1]["correct"] > 50  # separable: most samples right after training


def test_cosine_schedule_reaches_min_lr():
    model = nn.Linear(4, 2)
    x, y = _separable(n=8, T=2)
    trainer = BPTTTrainer(model, epochs=2, steps_per_epoch=3, lr=0.1, min_lr_ratio=0.2,
                          optimizer="sgd")
    assert trainer.lr == pytest.approx(0.1)
    lrs = []
    for _ in range(6):
        trainer.train_step(x, y)
        lrs.append(trainer.lr)
    assert lrs[2] == pytest.approx(0.1 * (0.2 + 0.8 * 0.5))  # half way
    assert lrs[-1] == pytest.approx(0.1 * 0.2)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    trainer.train_step(x, y)  # past the end it stays at the floor
    assert trainer.lr == pytest.approx(0.02)

    constant = BPTTTrainer(nn.Linear(4, 2), epochs=1, steps_per_epoch=3, lr=0.1,
                           schedule="constant")
    for _ in range(3):
        constant.train_step(x, y)
    assert constant.lr == pytest.approx(0.1)


def test_nan_loss_raises_with_learning_rate_hint():
    model = nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = BPTTTrainer(model, epochs=1, steps_per_epoch=1, lr=0.1)
    x = torch.full((2, 3, 4), float("nan"))
    with pytest.raises(FloatingPointError, match="learning rate"):
        trainer.train_step(x, torch.tensor([0, 1, 0]))
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p.detach(), q)  # no step taken on a NaN loss


def test_learning_rule_spec_builds_the_trainer(plugin_host):
    spec = plugin_host.registry.get("wb_core.bptt")
    trainer = spec.create(nn.Linear(4, 2), epochs=1, steps_per_epoch=2, optimizer="adamw",
                          lr=0.05)
    assert isinstance(trainer, BPTTTrainer)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.lr == pytest.approx(0.05)
