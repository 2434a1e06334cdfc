"""Tests of the ``wb_qt_snn`` plugin (docs/qt_snn.md): the encoders (TAE, SF, TBR), the
quantisers, the ternary LIF, the QT-SNN layers and classifier, the fixed-point inference, the
plugin end to end through the core on the toy sequence dataset, and the causal 1-D convolution
over time (its arithmetic, energy count and deployment refusals)."""

from __future__ import annotations

import itertools
import math
import shutil
import statistics
from collections import OrderedDict
from fractions import Fraction

import pytest
import torch
from torch import nn
from wb_core.neurons import SpikingNeuron
from wb_qt_snn.baselines import StepForwardEncoder, ThresholdBasedEncoder
from wb_qt_snn.builder import ConvLayer, QTSNNClassifier, parse_convs, parse_widths
from wb_qt_snn.integer import (
    FixedPointLayer,
    fixed_point_layers,
    integer_forward,
    round_half_even_shift,
)
from wb_qt_snn.layers import CausalConv1d, QTBlock, QTConv1d, QTLinear, QTReadout, qt_conv1d
from wb_qt_snn.neuron import TernaryLIF, ternary_spike
from wb_qt_snn.quant import lsq, lsq_codes, ttq, usable_scale
from wb_qt_snn.tae import RealignedTAEEncoder, TAEEncoder, tae

from workbench.core.build.compile import compile_graph
from workbench.core.build.encoding import Encoding
from workbench.core.build.energy import CostTable, EnergyMeter
from workbench.core.build.neuron_response import neuron_response
from workbench.core.build.quantized import QuantizedTensor, quantized_modules
from workbench.core.model.errors import CompileError, DeployError, ProjectError
from workbench.core.model.graph import Graph, Node
from workbench.core.persistence.project_files import load_project
from workbench.core.persistence.weights import load_weights, save_weights
from workbench.core.runs import catalog
from workbench.core.runs.events import RunFinished
from workbench.core.runs.probe import probe_sample
from workbench.core.runs.session import Session
from workbench.pluginhost.manager import load_plugins
from workbench.testing.toy_plugins import DeltaEncoder, toy_project_dir

F64 = torch.float64
SPIKE_VALUES = {-1.0, 0.0, 1.0}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_walks(batch: int, channels: int, length: int, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Signals with bursts of slope: ``[B, C, L]``."""
    steps = torch.randn(batch, channels, length, generator=gen(seed), dtype=F64)
    steps = steps * (torch.rand(batch, channels, length, generator=gen(seed + 1),
                                dtype=F64) * 2.0) ** 2
    return steps.cumsum(-1).to(dtype)


def ternary_input(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randint(-1, 2, shape, generator=gen(seed)).to(dtype)


def sine(length: int = 4000) -> torch.Tensor:
    t = torch.arange(length, dtype=F64)
    return torch.sin(2 * math.pi * t / 800).view(1, 1, -1)


def chirp(length: int = 4000) -> torch.Tensor:
    t = torch.arange(length, dtype=F64)
    return torch.sin(math.pi * t * (1 + t / 400) / 2000).view(1, 1, -1)


# -- Test 1: TAE output ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [TAEEncoder, RealignedTAEEncoder,
                                  lambda: StepForwardEncoder(0.3), ThresholdBasedEncoder])
def test_encoders_emit_ternary_time_major_spikes_deterministically(make):
    x = random_walks(3, 4, 60)
    encoder = make()
    spikes, side = encoder.encode(x, 999)  # the project's T is ignored: T = L
    again, _ = encoder.encode(x.clone(), 5)
    assert spikes.shape == (60, 3, 4)
    assert set(spikes.unique().tolist()) == SPIKE_VALUES
    assert torch.equal(spikes, again)
    assert not spikes[0].any()  # nothing to compare the first sample with
    assert encoder.thresholds(spikes, side).shape == (60, 3, 4)


def test_sequence_layout_sets_t_and_per_step_shape_and_refuses_images():
    encoding = Encoding(tae(), time_steps=7)
    assert encoding.time_steps((3, 50)) == 50
    assert encoding.step_shape((3, 50)) == (3,)
    assert encoding.can_decode
    with pytest.raises(ProjectError, match=r"needs sequence data.*\[1, 8, 8\]"):
        encoding.step_shape((1, 8, 8))
    with pytest.raises(ProjectError, match="NaN"):
        tae().encode(torch.tensor([[[0.0, float("nan"), 1.0]]]), 3)


# -- Test 2: decoder replay -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_tae_decoder_replays_the_encoder_base_bit_exactly(dtype):
    x = random_walks(3, 4, 300, seed=2, dtype=dtype)
    encoder = TAEEncoder()
    trace = encoder.trace(x)
    assert trace.side.x0.shape == trace.side.theta0.shape == (3, 4)
    decoded = encoder.decode(trace.spikes, trace.side)  # [B, C, L]
    assert decoded.dtype == dtype
    assert torch.equal(decoded.permute(2, 0, 1), trace.base)
    assert torch.equal(encoder.thresholds(trace.spikes, trace.side), trace.theta_used)
    assert torch.equal(Encoding(encoder, 1).reconstruct(x), decoded)


def test_tae_starting_at_zero_encodes_the_level_and_still_replays_exactly():
    x = random_walks(3, 4, 120, seed=5, dtype=F64)
    x = x - x[..., :1] + 5.0  # every channel starts at 5, far from 0
    zero, first = TAEEncoder(start="zero"), TAEEncoder()
    trace = zero.trace(x)
    assert torch.equal(trace.side.x0, torch.zeros(3, 4, dtype=F64))
    decoded = zero.decode(trace.spikes, trace.side)
    assert torch.equal(decoded.permute(2, 0, 1), trace.base)
    assert torch.equal(zero.thresholds(trace.spikes, trace.side), trace.theta_used)
    # the level is in the spikes: step 0 fires, and the first steps climb to the signal
    assert (trace.spikes[0] == 1).all()
    assert trace.spikes[:10].sum() > first.trace(x).spikes[:10].sum()
    late = slice(40, None)  # once there, it tracks as the first-sample start does
    assert (decoded[..., late] - x[..., late]).abs().max() < 2.0 * trace.theta_used.max()
    flat = torch.full((1, 1, 30), 1.5, dtype=F64)  # a constant level: only "zero" sees it
    assert first.trace(flat).spikes.abs().sum() == 0
    assert zero.trace(flat).spikes.abs().sum() > 0


def test_tae_with_a_fixed_first_threshold_keeps_amplitudes_comparable():
    x = random_walks(2, 3, 200, seed=6, dtype=F64)
    fixed = TAEEncoder(theta0=0.05)
    trace = fixed.trace(x)
    assert torch.equal(trace.side.theta0, torch.full((2, 3), 0.05, dtype=F64))
    assert torch.equal(fixed.decode(trace.spikes, trace.side).permute(2, 0, 1), trace.base)
    # twice the signal, twice the change: more spikes at a fixed threshold, the same number
    # with the per-series rule (which scales its threshold with the signal)
    assert fixed.trace(2 * x).spikes.abs().sum() > trace.spikes.abs().sum()
    per_series = TAEEncoder()
    assert torch.equal(per_series.trace(2 * x).spikes, per_series.trace(x).spikes)
    with pytest.raises(ValueError, match="theta0"):
        TAEEncoder(theta0=-1.0)


def test_tae_thresholds_follow_the_rule_step_by_step():
    x = random_walks(2, 3, 80, seed=3, dtype=F64)
    encoder = TAEEncoder(theta0_scale=0.7, grow=1.5, shrink=0.8, theta_min_ratio=0.5,
                         theta_max_ratio=3.0)
    trace = encoder.trace(x)
    expected_theta0 = 0.7 * torch.diff(x, dim=-1).std(-1, correction=0)
    assert torch.allclose(trace.side.theta0, expected_theta0)
    for b in range(2):
        for c in range(3):  # the rule in plain Python floats
            theta0 = float(trace.side.theta0[b, c])
            base, theta, prev = float(x[b, c, 0]), theta0, 0
            for t in range(1, 80):
                d = float(x[b, c, t]) - base
                s = 1 if d >= theta else (-1 if d <= -theta else 0)
                assert float(trace.theta_used[t, b, c]) == pytest.approx(theta, rel=1e-12)
                assert float(trace.spikes[t, b, c]) == s
                if s:
                    base += s * theta
                    theta = min(max(theta * (1.5 if s == prev else 1.0), 0.5 * theta0),
                                3.0 * theta0)
                    prev = s
                else:
                    theta = max(theta * 0.8, 0.5 * theta0)


def test_constant_and_single_sample_channels_stay_silent_and_decode():
    x = torch.zeros(2, 2, 20)
    x[0, 1] = 3.5  # constant: std(diff) = 0 -> theta0 = theta0_scale (in the signal's units)
    x[1, 0] = torch.linspace(0, 1, 20)
    encoder = TAEEncoder(theta0_scale=0.5)
    spikes, side = encoder.encode(x, 1)
    assert float(side.theta0[0, 1]) == 0.5 and float(side.theta0[0, 0]) == 0.5
    assert not spikes[:, 0].any() and not spikes[:, 1, 1].any()
    assert torch.equal(encoder.decode(spikes, side)[0], x[0])
    one, side_one = encoder.encode(torch.ones(1, 3, 1), 1)
    assert one.shape == (1, 1, 3) and not one.any()
    assert torch.equal(encoder.decode(one, side_one), torch.ones(1, 3, 1))


def test_realigned_base_jumps_to_the_signal_and_has_no_decoder():
    x = random_walks(2, 3, 100, seed=4, dtype=F64)
    encoder = tae(base="realign")
    assert isinstance(encoder, RealignedTAEEncoder) and not hasattr(encoder, "decode")
    assert not Encoding(encoder, 1).can_decode
    assert Encoding(encoder, 1).reconstruct(x) is None
    trace = encoder.trace(x)
    fired = trace.spikes != 0
    assert fired.any()
    assert torch.equal(trace.base[fired], x.permute(2, 0, 1)[fired])
    # the threshold's adaptation depends on the spikes alone: it still replays
    assert torch.equal(encoder.thresholds(trace.spikes, trace.side), trace.theta_used)


def test_step_forward_decodes_its_base_and_matches_the_toy_delta_encoder():
    x = random_walks(3, 2, 120, seed=5, dtype=F64)
    sf = StepForwardEncoder(threshold=0.4)
    spikes, bases, side = sf.trace(x)
    assert torch.equal(sf.decode(spikes, side).permute(2, 0, 1), bases)
    assert torch.equal(sf.thresholds(spikes, side), torch.full_like(bases, 0.4))
    toy_spikes, _ = DeltaEncoder(threshold=0.4).encode(x, 1)  # an independent implementation
    assert torch.equal(spikes, toy_spikes)


def test_tbr_follows_the_documented_rule():
    x = torch.tensor([[[0.0, 1.0, 1.0, 3.0, 2.0, 2.0, 2.5, 0.5]]], dtype=F64)
    factor = 0.5
    spikes, side = ThresholdBasedEncoder(factor).encode(x, 1)
    values = x[0, 0].tolist()
    d = [b - a for a, b in itertools.pairwise(values)]
    mu, band = statistics.fmean(d), factor * statistics.pstdev(d)
    expected = [0] + [1 if v > mu + band else (-1 if v < mu - band else 0) for v in d]
    assert spikes[:, 0, 0].tolist() == expected
    step = statistics.fmean(abs(v) for v, s in zip(d, expected[1:]) if s)
    assert float(side.step) == pytest.approx(step)
    decoded = ThresholdBasedEncoder(factor).decode(spikes, side)[0, 0].tolist()
    level, rebuilt = values[0], [values[0]]
    for s in expected[1:]:
        level += s * step
        rebuilt.append(level)
    assert decoded == pytest.approx(rebuilt)
    assert ThresholdBasedEncoder(factor).thresholds(spikes, side)[:, 0, 0].tolist() == \
        pytest.approx([band] * 8)


# -- Test 3: tracking -----------------------------------------------------------------------------
def test_silent_steps_stay_within_the_threshold():
    x = random_walks(2, 3, 500, seed=6, dtype=F64)
    encoder = TAEEncoder()
    spikes, side = encoder.encode(x, 1)
    error = (x - encoder.decode(spikes, side)).abs().permute(2, 0, 1)
    silent = spikes == 0
    assert bool((error[silent] < encoder.thresholds(spikes, side)[silent]).all())


def test_sine_is_tracked_within_twice_the_threshold():
    x = sine()
    encoder = TAEEncoder()
    spikes, side = encoder.encode(x, 1)
    error = (x - encoder.decode(spikes, side)).abs().permute(2, 0, 1)
    theta_used = encoder.thresholds(spikes, side)
    silent = spikes == 0
    assert bool((error[silent] < theta_used[silent]).all())
    outside = (error > 2 * theta_used).double().mean()
    assert float(outside) < 0.01


def test_chirp_tae_fires_less_than_sf_at_theta_min_and_tracks_better_than_sf_at_theta0():
    x = chirp()
    encoder = TAEEncoder()
    spikes, side = encoder.encode(x, 1)
    tae_mse = float((encoder.decode(spikes, side) - x).pow(2).mean())
    theta0 = float(side.theta0)
    low, _ = StepForwardEncoder(0.25 * theta0).encode(x, 1)  # SF at theta_min
    at_theta0 = StepForwardEncoder(theta0)
    sf_spikes, sf_side = at_theta0.encode(x, 1)
    sf_mse = float((at_theta0.decode(sf_spikes, sf_side) - x).pow(2).mean())
    assert int(spikes.abs().sum()) < int(low.abs().sum())
    assert tae_mse < sf_mse


# -- quantisers -----------------------------------------------------------------------------------
def test_lsq_forward_and_gradients_are_lsq():
    x = torch.tensor([-3.0, -0.26, 0.1, 0.37, 0.5, 2.9], dtype=F64, requires_grad=True)
    s = torch.tensor(0.25, dtype=F64, requires_grad=True)
    out = lsq(x, s, bits=3, count=6)  # codes -3 .. 3
    assert out.tolist() == [-0.75, -0.25, 0.0, 0.25, 0.5, 0.75]
    out.sum().backward()
    v = x.detach() / 0.25
    inside = v.abs() <= 3
    per_value = torch.where(inside, torch.round(v) - v, torch.sign(v) * 3)
    assert float(s.grad) == pytest.approx(float(per_value.sum()) / math.sqrt(6 * 3))
    assert x.grad.tolist() == inside.double().tolist()  # straight through, zero when clipped
    assert lsq_codes(x, s, 3).tolist() == [-3, -1, 0, 1, 2, 3]


def test_ttq_values_and_gradients():
    w = torch.tensor([-0.9, -0.02, 0.01, 0.5, 1.0], dtype=F64, requires_grad=True)
    w_pos = torch.tensor(0.7, dtype=F64, requires_grad=True)
    w_neg = torch.tensor(0.4, dtype=F64, requires_grad=True)
    out = ttq(w, w_pos, w_neg)  # delta = 0.05 * max|w| = 0.05
    assert out.tolist() == [-0.4, 0.0, 0.0, 0.7, 0.7]
    out.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=F64))
    assert w.grad.tolist() == pytest.approx([0.4, 2.0, 3.0, 2.8, 3.5])
    assert float(w_pos.grad) == 9.0 and float(w_neg.grad) == -1.0


# -- the ternary LIF ------------------------------------------------------------------------------
def test_surrogate_matches_the_rectangle_formula():
    u = torch.tensor([-1.6, -1.2, -0.9, -0.4, 0.0, 0.3, 0.7, 1.0, 1.49, 1.51], dtype=F64,
                     requires_grad=True)
    spikes = ternary_spike(u, v_th=1.0, width=1.0)
    assert spikes.tolist() == [-1, -1, 0, 0, 0, 0, 0, 1, 1, 1]  # |U| >= v_th fires
    spikes.sum().backward()
    assert u.grad.tolist() == [0, 1, 1, 0, 0, 0, 1, 1, 1, 0]  # 1[| |U| - 1 | < 1/2]
    u2 = u.detach().clone().requires_grad_()
    ternary_spike(u2, v_th=1.0, width=2.0).sum().backward()
    expected = torch.where(((u2.detach().abs() - 1.0).abs() < 1.0), 0.5, 0.0)
    assert torch.equal(u2.grad, expected.to(F64))


def test_neuron_charges_fires_resets_and_stores_quantised_membrane():
    neuron = TernaryLIF(lam=0.5, v_th=1.0, membrane_bits=4).double()
    with torch.no_grad():
        neuron.membrane_scale.fill_(0.125)  # codes -7..7: the stored range is ±0.875
    x = torch.tensor([0.3, 0.6, -1.2, 0.5, 0.01], dtype=F64).view(5, 1, 1)
    state = neuron.initial_state(x[0])
    stored = []
    for t in range(5):
        _, state = neuron.step(x[t], state)
        stored.append(float(state.v.detach()))
    # U = 0.3 -> 2.4 codes -> 0.25; 0.125 + 0.6 -> 5.8 -> 0.75; 0.375 - 1.2 = -0.825 -> -6.6
    # -> -0.875; -0.4375 + 0.5 = 0.0625 -> 0.5 code, a tie: to the even 0; 0.01 -> 0
    assert stored == [0.25, 0.75, -0.875, 0.0, 0.0]
    neuron.record_membrane = True
    assert not neuron(x).any()
    assert neuron.last_membrane[:, 0, 0].tolist() == pytest.approx([0.3, 0.725, -0.825,
                                                                     0.0625, 0.01])
    # |U| = v_th fires (+1 at 1.0); then 0.2 is kept, -1.375 fires -1, and both reset to 0
    strong = torch.tensor([1.0, 0.2, -1.5, -0.2, 0.9], dtype=F64).view(5, 1, 1)
    assert neuron(strong)[:, 0, 0].tolist() == [1, 0, -1, 0, 0]
    assert neuron.last_membrane[:, 0, 0].tolist() == pytest.approx([1.0, 0.2, -1.375, -0.2,
                                                                     0.775])
    assert neuron.threshold == 1.0


def test_step_by_step_equals_forward_and_state_is_fresh_every_call():
    neuron = TernaryLIF(membrane_bits=3).double()
    x = torch.randn(9, 4, 6, generator=gen(7), dtype=F64) * 1.2
    out = neuron(x)
    assert torch.equal(out, neuron(x))  # same batch twice, same spikes
    state = neuron.initial_state(x[0])
    for t in range(9):
        s, state = neuron.step(x[t], state)
        assert torch.equal(s, out[t])
    assert set(out.unique().tolist()) == SPIKE_VALUES


def test_gradients_reach_weights_and_both_scales():
    block = QTBlock(OrderedDict(fc=QTLinear(10, 8), neuron=TernaryLIF(v_th=0.5)))
    x = ternary_input((12, 6, 10), seed=8, dtype=torch.float32)
    (block(x) * torch.randn(12, 6, 8, generator=gen(9))).sum().backward()
    for name in ("fc.weight", "fc.weight_scale", "neuron.membrane_scale"):
        grad = dict(block.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_neuron_explorer_runs_the_neuron(plugin_host):
    spec = plugin_host.registry.get("wb_qt_snn.ternary_lif")
    response = neuron_response(spec, {"lam": 0.5})
    assert response.threshold == 1.0
    assert response.rates[0] == 0 and response.rates[-1] > 0


# -- Test 4: spikes, weights and membranes are low precision --------------------------------------
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_weights_and_stored_membrane_take_at_most_2b_minus_1_values(bits):
    fc = QTLinear(30, 20, weight_bits=bits)
    with torch.no_grad():
        fc.weight.normal_(0.0, 1.0, generator=gen(bits))
    assert fc.quantized_weight().unique().numel() == 2 ** bits - 1  # every level, no more
    neuron = TernaryLIF(membrane_bits=bits, v_th=0.8)
    x = torch.randn(10, 16, 20, generator=gen(10 + bits)) * 0.6
    state = neuron.initial_state(x[0])
    seen = []
    for t in range(10):
        s, state = neuron.step(x[t], state)
        assert set(s.unique().tolist()) <= SPIKE_VALUES
        seen.append(state.v)
    stored = torch.stack(seen).detach()
    assert stored.unique().numel() <= 2 ** bits - 1
    step = usable_scale(neuron.membrane_scale.detach(), neuron.pow2_scales)
    assert math.log2(float(step)).is_integer()  # the default: power-of-two steps
    codes = stored / step
    assert torch.allclose(codes, codes.round(), atol=1e-5)
    ttq_layer = QTLinear(30, 20, weight_quant="ttq")
    assert ttq_layer.quantized_weight().unique().numel() <= 3 and ttq_layer.weight_bits == 2


def test_weight_quant_is_the_live_integer_record():
    fc = QTLinear(12, 5, weight_bits=4)
    quant = fc.weight_quant
    assert isinstance(quant, QuantizedTensor) and quant.bits == 4
    assert int(quant.ints.abs().max()) <= 7
    assert torch.equal(quant.dequantize(), fc.quantized_weight().detach())
    with torch.no_grad():
        fc.weight.mul_(3.0)  # training moves the weights: the record follows
    assert torch.equal(fc.weight_quant.dequantize(), fc.quantized_weight().detach())
    assert QTLinear(12, 5, weight_quant="ttq").weight_quant is None


# -- Test 5: fixed-point inference ----------------------------------------------------------------
def stack(seed: int, r: int, p: int, q: int, widths=(24, 32, 16), membrane_scale=None):
    """float64 qt_linear blocks with s_u = 2^-r (or ``membrane_scale``), s_w = s_u 2^-p,
    lam = 2^-q and v_th a random multiple of eps = s_u 2^-(p+q) in [8 s_u, 12 s_u) (a
    potential kept below v_th can then need a code above 7: the clamp is used)."""
    g = gen(seed)
    s_u = 2.0 ** -r if membrane_scale is None else membrane_scale
    s_w, lam, eps = s_u * 2.0 ** -p, 2.0 ** -q, s_u * 2.0 ** -(p + q)
    blocks = []
    for d_in, d_out in itertools.pairwise(widths):
        units = int(torch.randint(8 * 2 ** (p + q), 12 * 2 ** (p + q), (1,), generator=g))
        pow2 = membrane_scale is None  # a chosen step is used as it is
        fc = QTLinear(d_in, d_out, weight_bits=4, pow2_scales=pow2).double()
        neuron = TernaryLIF(lam=lam, v_th=units * eps, membrane_bits=4, pow2_scales=pow2).double()
        with torch.no_grad():
            fc.weight.copy_(torch.randn(d_out, d_in, generator=g, dtype=F64) * 5 * s_w)
            fc.weight_scale.fill_(s_w)
            neuron.membrane_scale.fill_(s_u)
        neuron.record_membrane = True
        blocks.append(QTBlock(OrderedDict(fc=fc, neuron=neuron)))
    return blocks, eps


@pytest.mark.parametrize("seed, r, p, q", [(0, 3, 1, 1), (2, 4, 0, 2), (3, 4, 1, 1),
                                           (4, 3, 0, 1), (6, 5, 1, 1)])
def test_integer_forward_reproduces_the_float64_forward_exactly(seed, r, p, q):
    blocks, eps = stack(seed, r, p, q)
    x = ternary_input((20, 5, 24), seed=100 + seed)
    with torch.no_grad():
        h = x
        for block in blocks:
            h = block(h)
    layers, found_q = fixed_point_layers(blocks)
    assert found_q == q and all(layer.p == p for layer in layers)
    run = integer_forward(x, layers, q)
    for block, spikes, potentials in zip(blocks, run.spikes, run.potentials):
        assert torch.equal(block.neuron.last_membrane, potentials.to(F64) * eps)
        # not vacuous: every layer fires, and some kept potential needs the code's clamp
        assert bool(spikes.any())
        kept = round_half_even_shift(potentials * (1 - spikes.abs()), p + q)
        assert bool((kept.abs() > 7).any())
    assert torch.equal(h, run.spikes[-1].to(F64))


def test_without_power_of_two_scales_exact_equality_fails():
    blocks, eps = stack(0, 0, 1, 1, membrane_scale=0.05)  # eps = 0.0125: no binary fraction
    x = ternary_input((20, 5, 24), seed=100)
    with torch.no_grad():
        h = x
        for block in blocks:
            h = block(h)
    with pytest.raises(ValueError, match="not a power of two"):
        fixed_point_layers(blocks)
    layers = [FixedPointLayer(lsq_codes(b.fc.weight, b.fc.weight_scale, 4), 1,
                              round(b.neuron.v_th / eps), 4) for b in blocks]
    run = integer_forward(x, layers, 1)
    first = blocks[0].neuron.last_membrane
    assert not torch.equal(first, run.potentials[0].to(F64) * eps)
    # the same rule: at t = 0 (no stored state yet) the two differ only by float rounding
    assert torch.allclose(first[0], run.potentials[0][0].to(F64) * eps, rtol=0, atol=1e-12)


def test_round_half_even_shift_is_pythons_round():
    h = torch.arange(-40, 41, dtype=torch.int64)
    for shift in range(4):
        expected = [round(Fraction(int(v), 2 ** shift)) for v in h]
        assert round_half_even_shift(h, shift).tolist() == expected


# -- the classifier and the blocks through the core -----------------------------------------------
def test_classifier_pools_over_time_and_has_a_binary_twin():
    torch.manual_seed(0)
    net = QTSNNClassifier(6, (16, 8), 3, ternary=True, weight_bits=4, membrane_bits=4,
                          lam=0.5, v_th=0.5, t_pool="mean")
    x = ternary_input((7, 4, 6), seed=11, dtype=torch.float32)
    per_step = net.head(net.hidden(x))
    assert torch.allclose(net(x), per_step.mean(0, keepdim=True))
    net.t_pool = "sum"
    assert torch.allclose(net(x), per_step.sum(0, keepdim=True))
    net.t_pool = "last"
    assert torch.equal(net(x), per_step[-1:])
    assert set(net.hidden(x).unique().tolist()) <= SPIKE_VALUES
    assert torch.equal(net.hidden(-x), -net.hidden(x))  # no bias: the hidden layers are odd
    twin = QTSNNClassifier(6, (16, 8), 3, ternary=False, weight_bits=4, membrane_bits=4,
                           lam=0.5, v_th=0.5, t_pool="mean")
    assert not any(isinstance(m, QTLinear) for m in twin.modules())
    assert all(isinstance(block.neuron, SpikingNeuron) for block in twin.hidden)
    assert set(twin.hidden(x).unique().tolist()) <= {0.0, 1.0}
    assert parse_widths(" 64, 32 ") == (64, 32)


def test_blocks_compile_by_spec_and_bad_widths_name_the_node(plugin_host):
    graph = Graph.chain([Node("h", "wb_qt_snn.qt_linear", {"out_features": 8}),
                         Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3})])
    model = compile_graph(graph, plugin_host.registry, (5,))
    assert isinstance(model.layers["h"].neuron, TernaryLIF)
    assert set(quantized_modules(model)) == {"layers.h.fc", "layers.fc"}
    out = model(ternary_input((4, 2, 5), dtype=torch.float32))
    assert out.shape == (4, 2, 3)
    bad = Graph.chain([Node("net", "wb_qt_snn.qt_snn", {"hidden": "64,x"})])
    with pytest.raises(CompileError, match=r"node 'net'.*'64,x'"):
        compile_graph(bad, plugin_host.registry, (5,))


@pytest.mark.parametrize("nodes", [
    [Node("net", "wb_qt_snn.qt_snn", {"hidden": "8", "classes": 3})],
    [Node("net", "wb_qt_snn.qt_snn", {"conv": "5:3", "hidden": "8", "classes": 3})],
    [Node("conv", "wb_qt_snn.qt_conv1d", {"out_channels": 5, "kernel_size": 3}),
     Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3})],
], ids=["linear", "with conv", "conv block"])
def test_weights_save_and_load_keep_the_network(plugin_host, tmp_path, nodes):
    graph = Graph.chain(nodes)
    torch.manual_seed(1)
    model = compile_graph(graph, plugin_host.registry, (4,))
    x = ternary_input((6, 3, 4), seed=12, dtype=torch.float32)
    path = save_weights(model, tmp_path / "w.safetensors")
    torch.manual_seed(2)
    other = compile_graph(graph, plugin_host.registry, (4,))
    assert not torch.equal(other(x), model(x))
    load_weights(other, path)
    assert torch.equal(other(x), model(x))


def test_tiny_training_on_ternary_separable_data_lowers_the_loss():
    torch.manual_seed(3)
    x = ternary_input((8, 64, 10), seed=13, dtype=torch.float32)
    direction = torch.randn(10, generator=gen(14))
    y = (x.mean(0) @ direction > 0).long()
    net = QTSNNClassifier(10, (16,), 2, ternary=True, weight_bits=4, membrane_bits=4,
                          lam=0.5, v_th=0.5, t_pool="mean")
    losses = train_steps(net, x, y, steps=40, lr=0.01)
    assert losses[-1] < 0.7 * losses[0]


def train_steps(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int,
                lr: float) -> list[float]:
    """Full-batch Adam on the pooled logits; the loss before each step."""
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x)[0], y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture(scope="module")
def toy_host():
    host = load_plugins(modules=["workbench.testing.toy_plugins"])
    assert not host.report.failures
    return host


def toy_tae_session(host, folder, nodes: list[Node]) -> Session:
    """The toy sequence project (copied to ``folder``) with TAE and a chain of ``nodes``."""
    project = load_project(shutil.copytree(toy_project_dir(), folder))
    project.encoder.id = "wb_qt_snn.tae"
    project.encoder.params = {}
    project.graph = Graph.chain(nodes)
    return Session(project, host.registry)


def test_tae_and_qt_blocks_train_probe_and_evaluate_through_the_core(toy_host, tmp_path):
    # a bias breaks the odd symmetry of a ternary network (docs/qt_snn.md): the toy classes
    # are random-phase sines, the same class under a change of sign
    session = toy_tae_session(toy_host, tmp_path / "toy", [
        Node("hidden", "wb_qt_snn.qt_linear", {"out_features": 32, "bias": True}),
        Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3})])
    assert session.time_steps() == 24 and session.step_shape() == (2,)
    finished = list(catalog.train(session, epochs=3, fresh=True, save_weights=False))[-1]
    assert isinstance(finished, RunFinished) and finished.status == "ok", finished.error
    assert finished.summary["test_accuracy"] > 0.5  # chance: 1/3
    probe = probe_sample(session, 0)
    encoder = session.encoding().encoder
    spikes, side = encoder.encode(probe.input.unsqueeze(0), 1)
    assert torch.equal(probe.reconstruction, encoder.decode(spikes, side)[0])
    assert set(probe.records["hidden.neuron"].spikes.unique().tolist()) <= SPIKE_VALUES
    evaluated = list(catalog.evaluate(session))[-1]
    assert evaluated.status == "ok", evaluated.error


# -- the causal 1-D convolution over time (wb_qt_snn.qt_conv1d) -----------------------------------
def reference_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   dilation: int) -> torch.Tensor:
    """The documented sum in float64 loops: ``out[t, :, o] = sum_{c, k} W[o, c, k] *
    x[t - (K-1-k) * dilation, :, c]``, steps before 0 read as 0."""
    steps, batch, channels = x.shape
    outs, _, kernel = weight.shape
    weight = weight.detach()
    out = torch.zeros(steps, batch, outs, dtype=F64)
    for t in range(steps):
        for o in range(outs):
            for c in range(channels):
                for k in range(kernel):
                    source = t - (kernel - 1 - k) * dilation
                    if source >= 0:
                        out[t, :, o] += float(weight[o, c, k]) * x[source, :, c]
    return out if bias is None else out + bias.detach().to(F64)


@pytest.mark.parametrize("weight_quant, bias", [("lsq", True), ("ttq", False)])
def test_conv_over_time_equals_the_hand_written_sum(weight_quant, bias):
    conv = QTConv1d(3, 4, kernel_size=3, dilation=2, bias=bias, weight_quant=weight_quant).double()
    with torch.no_grad():
        conv.weight.normal_(0.0, 1.0, generator=gen(20))
    x = torch.randn(9, 2, 3, generator=gen(21), dtype=F64)
    out = conv(x)
    assert out.shape == (9, 2, 4)
    expected = reference_conv(x, conv.quantized_weight().detach(), conv.bias, dilation=2)
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)
    float_conv = CausalConv1d(3, 4, kernel_size=3, dilation=2).double()  # the twin's layer
    assert torch.allclose(float_conv(x), reference_conv(x, float_conv.weight, None, 2),
                          rtol=0, atol=1e-12)


def test_conv_over_time_is_causal_and_keeps_t():
    block = qt_conv1d([(3,)], lambda: TernaryLIF(v_th=0.5), out_channels=6, kernel_size=4,
                      dilation=2).double()
    x = ternary_input((16, 3, 3), seed=22)
    out = block(x)
    assert out.shape == (16, 3, 6)
    assert set(out.unique().tolist()) <= SPIKE_VALUES
    synapse = block.conv(x)
    for t in (0, 5, 11):
        changed = x.clone()
        changed[t:] = ternary_input((16 - t, 3, 3), seed=23 + t)
        # the steps before t are untouched, at the synapse and after the neuron
        assert torch.equal(block.conv(changed)[:t], synapse[:t])
        assert torch.equal(block(changed)[:t], out[:t])
        assert not torch.equal(block.conv(changed)[t:], synapse[t:])  # not vacuous


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_conv_weights_take_at_most_2b_minus_1_values_and_have_a_live_record(bits):
    conv = QTConv1d(8, 16, kernel_size=5, weight_bits=bits)
    with torch.no_grad():
        conv.weight.normal_(0.0, 1.0, generator=gen(30 + bits))
    assert conv.quantized_weight().unique().numel() == 2 ** bits - 1  # every level, no more
    assert conv.weight_bits == bits
    quant = conv.weight_quant
    assert isinstance(quant, QuantizedTensor) and quant.bits == bits
    assert quant.ints.shape == (16, 8, 5)
    assert int(quant.ints.abs().max()) == 2 ** (bits - 1) - 1
    assert torch.equal(quant.dequantize(), conv.quantized_weight().detach())
    ttq_conv = QTConv1d(8, 16, kernel_size=5, weight_quant="ttq")
    assert ttq_conv.quantized_weight().unique().numel() <= 3 and ttq_conv.weight_bits == 2
    assert ttq_conv.weight_quant is None


@pytest.mark.parametrize("weight_quant, learnt", [("lsq", ("conv.weight_scale",)),
                                                  ("ttq", ("conv.ttq_pos", "conv.ttq_neg"))])
def test_gradients_reach_the_conv_weights_and_their_scales(weight_quant, learnt):
    block = qt_conv1d([(5,)], lambda: TernaryLIF(v_th=0.5), out_channels=8, kernel_size=3,
                      weight_quant=weight_quant)
    x = ternary_input((12, 6, 5), seed=24, dtype=torch.float32)
    (block(x) * torch.randn(12, 6, 8, generator=gen(25))).sum().backward()
    for name in ("conv.weight", *learnt, "neuron.membrane_scale"):
        grad = dict(block.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_conv_block_compiles_by_spec_with_any_neuron_and_refuses_bad_input(plugin_host):
    graph = Graph.chain([
        Node("conv", "wb_qt_snn.qt_conv1d", {"out_channels": 6, "kernel_size": 3}),
        Node("binary", "wb_qt_snn.qt_conv1d",
             {"out_channels": 4, "kernel_size": 2, "dilation": 3, "neuron": "wb_core.lif_b"}),
        Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3})])
    model = compile_graph(graph, plugin_host.registry, (5,))
    assert isinstance(model.layers["conv"].conv, QTConv1d)
    assert isinstance(model.layers["conv"].neuron, TernaryLIF)
    assert isinstance(model.layers["binary"].neuron, SpikingNeuron)  # wb_core's LIF on [T, B, C]
    assert set(quantized_modules(model)) == {"layers.conv.conv", "layers.binary.conv",
                                             "layers.fc"}
    x = ternary_input((7, 2, 5), seed=26, dtype=torch.float32)
    assert model(x).shape == (7, 2, 3)
    with torch.no_grad():
        binary = model.layers["binary"](model.layers["conv"](x))
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    image = Graph.chain([Node("conv", "wb_qt_snn.qt_conv1d")])
    with pytest.raises(CompileError, match=r"node 'conv'.*one flat \[C\] vector per step.*"
                                           r"\[1, 8, 8\]"):
        compile_graph(image, plugin_host.registry, (1, 8, 8))
    zero_kernel = Graph.chain([Node("conv", "wb_qt_snn.qt_conv1d", {"kernel_size": 0})])
    with pytest.raises(CompileError, match=r"node 'conv'.*kernel_size: 0 is below the minimum"):
        compile_graph(zero_kernel, plugin_host.registry, (5,))
    with pytest.raises(ValueError, match="dilation must be at least 1"):
        QTConv1d(3, 4, kernel_size=3, dilation=0)
    with pytest.raises(ValueError, match="weight_quant"):
        QTConv1d(3, 4, weight_quant="binary")
    with pytest.raises(ValueError, match=r"takes \[T, B, 3\].*\[4, 2, 5\]"):
        QTConv1d(3, 4)(torch.zeros(4, 2, 5))


def test_sop_count_of_the_conv_is_spikes_times_the_weights_each_reaches():
    block = qt_conv1d([(3,)], TernaryLIF, out_channels=4, kernel_size=3, dilation=2)
    x = ternary_input((6, 2, 3), seed=27, dtype=torch.float32)
    with EnergyMeter(block) as meter:
        block(x)
    conv = {layer["name"]: layer for layer in meter.report(CostTable("t", "t", 4.6, 0.9,
                                                                     "src")).layers}["conv"]
    # a spike at step t reaches the outputs of steps t, t + 2, t + 4 that exist, 4 weights each
    hand = 0
    for t, b, c in (x != 0).nonzero().tolist():
        hand += 4 * sum(1 for j in range(3) if t + 2 * j < 6)
    assert hand > 0
    assert conv["sops"] == hand / 2  # per sample (B = 2)
    assert conv["macs"] == 0 and conv["input"] == "spikes"
    assert conv["weight_bits"] == 4 and conv["fan_in"] == 3 * 3


def test_classifier_with_convs_learns_a_temporal_order_and_has_a_float_twin():
    # class 0: channel 0 fires, channel 1 three steps later; class 1: the other way round.
    # Both channels fire once per sample: only the order in time tells the classes apart.
    batch, steps = 32, 10
    g = gen(28)
    y = torch.randint(0, 2, (batch,), generator=g)
    onset = torch.randint(0, steps - 3, (batch,), generator=g)
    x = torch.zeros(steps, batch, 2)
    rows = torch.arange(batch)
    x[onset, rows, y] = 1.0
    x[onset + 3, rows, 1 - y] = 1.0

    def train(convs: tuple[ConvLayer, ...]) -> list[float]:
        torch.manual_seed(4)
        net = QTSNNClassifier(2, (16,), 2, ternary=True, weight_bits=4, membrane_bits=4,
                              lam=0.5, v_th=0.25, t_pool="mean", convs=convs)
        assert isinstance(net.hidden[0].conv if convs else net.hidden[0].fc,
                          QTConv1d if convs else QTLinear)
        return train_steps(net, x, y, steps=30, lr=0.02)

    with_conv, without = train((ConvLayer(8, 5),)), train(())
    assert with_conv[-1] < 0.7 * with_conv[0]
    # the window over time is what learns the order (the leaky membranes alone did not here)
    assert with_conv[-1] < 0.5 * without[-1]
    twin = QTSNNClassifier(2, (16,), 2, ternary=False, weight_bits=4, membrane_bits=4,
                           lam=0.5, v_th=0.5, t_pool="mean",
                           convs=(ConvLayer(8, 5), ConvLayer(6, 3, 2)))
    first, second = twin.hidden[0].conv, twin.hidden[1].conv
    assert type(first) is CausalConv1d and (second.out_channels, second.dilation) == (6, (2,))
    assert not any(isinstance(m, (QTConv1d, QTLinear)) for m in twin.modules())
    assert all(isinstance(block.neuron, SpikingNeuron) for block in twin.hidden)
    assert set(twin.hidden(x).unique().tolist()) <= {0.0, 1.0}
    assert twin(x).shape == (1, batch, 2)


def test_the_conv_param_of_the_whole_network_node(plugin_host):
    assert parse_convs("") == ()
    assert parse_convs(" 32:5, 16:3:2 ") == (ConvLayer(32, 5), ConvLayer(16, 3, 2))
    for bad in ("32", "32:5:1:1", "32:x", "0:5", "32:5,", "32:-1"):
        with pytest.raises(ValueError, match="channels:kernel"):
            parse_convs(bad)
    graph = Graph.chain([Node("net", "wb_qt_snn.qt_snn",
                              {"conv": "6:3", "hidden": "8", "classes": 3})])
    model = compile_graph(graph, plugin_host.registry, (4,))
    convs = [m for m in model.modules() if isinstance(m, QTConv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(4, 6, (3,))]
    assert model(ternary_input((5, 2, 4), seed=29, dtype=torch.float32)).shape == (1, 2, 3)
    plain = compile_graph(Graph.chain([Node("net", "wb_qt_snn.qt_snn", {"hidden": "8"})]),
                          plugin_host.registry, (4,))
    assert not any(isinstance(m, CausalConv1d) for m in plain.modules())  # default: none
    bad = Graph.chain([Node("net", "wb_qt_snn.qt_snn", {"conv": "6:0"})])
    with pytest.raises(CompileError, match=r"node 'net'.*channels:kernel.*'6:0'"):
        compile_graph(bad, plugin_host.registry, (4,))


def test_a_conv_over_time_is_refused_by_wb_sim_the_fpga_and_nir(toy_host, tmp_path):
    from wb_sim.convert import to_integer

    session = toy_tae_session(toy_host, tmp_path / "toy", [
        Node("conv", "wb_qt_snn.qt_conv1d", {"out_channels": 8, "kernel_size": 3}),
        Node("hidden", "wb_qt_snn.qt_linear", {"out_features": 8}),
        Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3})])
    for backend in ("wb_sim.simulator", "wb_fpga.fpga"):
        finished = catalog.check_fit(session, backend=backend).result()
        assert finished.status == "ok", finished.error
        errors = [i for i in finished.summary["fit"] if i["severity"] == "error"]
        assert len(errors) == 1 and errors[0]["node"] == "conv", errors  # one clear refusal
        assert "past input spikes" in errors[0]["message"]
        assert "does not model" in errors[0]["message"]
    with pytest.raises(DeployError, match="each step also reads the last 2 input steps") as err:
        to_integer(session.build(), time_steps=24, input_scale=1.0, input_kind="spikes")
    assert err.value.where == "node 'conv'"
    nir = toy_host.registry.get("wb_nir.nir").create()
    with pytest.raises(DeployError) as err:
        nir.export_file(session, tmp_path / "conv.nir")
    assert ("node 'conv' (wb_qt_snn.qt_conv1d): a causal convolution over time: each step "
            "also reads a window of past input steps") in str(err.value)
    assert not (tmp_path / "conv.nir").exists()


# -- the integrating read-out (qt_readout integrate, qt_snn t_pool="integrate") -------------------
def test_an_integrating_readout_outputs_its_running_membrane_over_t():
    torch.manual_seed(31)
    plain = QTReadout(5, 3)
    integrating = QTReadout(5, 3, integrate=True)
    integrating.load_state_dict(plain.state_dict())
    x = ternary_input((7, 2, 5), seed=32, dtype=torch.float32)
    per_step = plain(x)
    out = integrating(x)
    assert torch.allclose(out, per_step.cumsum(0) / 7)
    # the mean over time weighs step t by (T - t) / T: early evidence counts more
    weights = torch.tensor([(7 - t) / 7 for t in range(7)]).view(7, 1, 1)
    assert torch.allclose(out.mean(0), (per_step * weights).sum(0) / 7, atol=1e-6)
    assert torch.equal(integrating(x[0]), plain(x[0]))  # one step, no time axis: as is
    node = QTSNNClassifier(5, (4,), 3, ternary=True, weight_bits=4, membrane_bits=4, lam=0.5,
                           v_th=1.0, t_pool="integrate")
    logits = node.head(node.hidden(x))
    assert torch.allclose(node(x), (logits.cumsum(0) / 7).mean(0, keepdim=True))


def test_the_float_twin_s_readout_integrates_the_same_way(plugin_host):
    graph = Graph.chain([Node("out", "wb_core.linear", {"out_features": 3, "integrate": True})])
    twin = compile_graph(graph, plugin_host.registry, (5,))
    plain = compile_graph(Graph.chain([Node("out", "wb_core.linear", {"out_features": 3})]),
                          plugin_host.registry, (5,))
    plain.load_state_dict(twin.state_dict())  # the same parameters: only the read-out differs
    x = ternary_input((6, 2, 5), seed=33, dtype=torch.float32)
    assert torch.allclose(twin(x), plain(x).cumsum(0) / 6)


def test_an_integrating_readout_deploys_bit_exact_to_wb_sim_and_the_fpga_says_why_not(
        toy_host, tmp_path):
    session = toy_tae_session(toy_host, tmp_path / "toy", [
        Node("hidden", "wb_qt_snn.qt_linear", {"out_features": 24, "bias": True}),
        Node("fc", "wb_qt_snn.qt_readout", {"out_features": 3, "integrate": True})])
    finished = list(catalog.train(session, epochs=3, fresh=True, save_weights=False))[-1]
    assert finished.status == "ok", finished.error
    last = catalog.deploy(session, backend="wb_sim.simulator", out=tmp_path / "sim",
                          limit=60).result()
    assert last.status == "ok", last.error
    report = last.summary["report"]
    assert report["golden"]["bit_exact"] and report["golden"]["samples"] == 60
    assert report["accuracy"]["integer_vs_float_agreement"] >= 0.95
    from wb_sim.ir import IntegerNetwork

    net = IntegerNetwork.load(tmp_path / "sim" / "network.npz")  # the flag survives the file
    assert net.layers[-1].integrate and not net.layers[0].integrate
    fit = catalog.check_fit(session, backend="wb_fpga.fpga").result()
    errors = [i for i in fit.summary["fit"] if i["severity"] == "error"]
    assert [e["node"] for e in errors] == ["fc"] and "integrating read-out" in errors[0]["message"]
