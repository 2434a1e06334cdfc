"""Tests of ``wb_fpga``: the Amaranth core against wb_sim, the torch integer reference and our
numpy trace (bit for bit, random linear and conv networks, the trained 4-bit digits MLP and
digits conv), the cycle model against the simulated cycles, the pin-limited wrapper, the fit
check, the tool runner's errors, and (slow) a whole deployment of a tiny network to the iCE40
UP5K."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from itertools import pairwise

import numpy as np
import pytest
from fpga_helpers import SerialPins, drain
from wb_fpga.backend import FpgaBackend
from wb_fpga.cycles import cycles_for, trace
from wb_fpga.fit import fit, fit_issues
from wb_fpga.plan import plan_core, signed_width
from wb_fpga.sim import simulate_core
from wb_fpga.toolchain import run_tool
from wb_sim.convert import input_scale_for, to_integer
from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron
from wb_sim.reference import torch_integer_forward
from wb_sim.simulate import simulate

from workbench.core.model.errors import DeployError
from workbench.core.persistence.project_files import load_project
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.deploy import DeployContext
from workbench.core.runs.session import Session


# -- helpers ----------------------------------------------------------------------------------
def random_net(sizes, *, T=3, wbits=4, ibits=4, seed=0, leak=1, reset="hard", uniform=True,
               shift=2, bias=True, threshold=40):
    """A chain of linear layers with random integer weights; the last one is the read-out."""
    rng = np.random.default_rng(seed)
    top = 2 ** (wbits - 1) - 1
    layers = []
    for i, (c_in, c_out) in enumerate(pairwise(sizes)):
        weight = rng.integers(-top, top + 1, size=(c_out, c_in)).astype(np.int64)
        b = rng.integers(-20, 20, size=c_out) if bias else np.zeros(c_out)
        neuron = None
        if i < len(sizes) - 2:
            thr = (np.full(c_out, threshold) if uniform
                   else rng.integers(threshold // 4, 2 * threshold, size=c_out))
            neuron = IntNeuron(thr.astype(np.int64), leak, reset)
        layers.append(IntLayer(f"l{i}", "linear", weight, wbits, b.astype(np.int64), shift,
                               (c_in,), (c_out,), neuron))
    return IntegerNetwork(layers, T, 1.0, ibits, "random")


def random_conv_net(in_shape, convs, classes, *, T=3, wbits=4, ibits=4, seed=0, leak=1,
                    reset="hard", uniform=False, shift=2, threshold=60):
    """Conv layers ``convs`` = [(C_out, k, stride, padding, pool), ...] with random integer
    weights and per-channel thresholds, flattened into a linear read-out."""
    rng = np.random.default_rng(seed)
    top = 2 ** (wbits - 1) - 1
    layers = []
    shape = tuple(in_shape)
    for i, (c_out, k, stride, pad, pool) in enumerate(convs):
        c_in, h, w = shape
        out = (c_out, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        weight = rng.integers(-top, top + 1, size=(c_out, c_in, k, k)).astype(np.int64)
        thr = (np.full(c_out, threshold) if uniform
               else rng.integers(threshold // 2, 2 * threshold, size=c_out))
        layer = IntLayer(f"conv{i}", "conv", weight, wbits,
                         rng.integers(-20, 20, size=c_out).astype(np.int64), shift, shape, out,
                         IntNeuron(thr.astype(np.int64), leak, reset), stride, pad, pool)
        layers.append(layer)
        shape = layer.pooled_shape
        threshold = max(8, threshold // 2)  # spikes in, smaller sums
    d = int(np.prod(shape))
    layers.append(IntLayer("fc", "linear",
                           rng.integers(-top, top + 1, size=(classes, d)).astype(np.int64), wbits,
                           rng.integers(-20, 20, size=classes).astype(np.int64), shift, (d,),
                           (classes,), None))
    return IntegerNetwork(layers, T, 1.0, ibits, "random-conv")


def random_inputs(net, n, *, seed=1, density=0.6):
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(net.input_shape)
    top = 2 ** net.input_bits - 1
    return rng.integers(0, top + 1, size=shape) * (rng.random(shape) < density)


def assert_same(hw, other, label):
    np.testing.assert_array_equal(hw.predictions, other.predictions, err_msg=label)
    np.testing.assert_array_equal(hw.logits, other.logits, err_msg=label)
    assert set(hw.spike_counts) == set(other.spike_counts), label
    for name, counts in hw.spike_counts.items():
        np.testing.assert_array_equal(counts, other.spike_counts[name], err_msg=f"{label} {name}")


# -- the core against the references ----------------------------------------------------------
CASES = {
    "lif-hard": {"sizes": [12, 20, 9, 5], "P": 4},
    "if-soft-per-neuron-threshold": {"sizes": [12, 20, 9, 5], "P": 3, "reset": "soft",
                                     "leak": None, "uniform": False},
    "leak2-no-bias-no-cache": {"sizes": [10, 17, 6], "P": 8, "leak": 2, "shift": 0,
                               "bias": False, "cache": False},
    "read-out-only": {"sizes": [10, 4], "P": 4},
    "one-time-step": {"sizes": [12, 20, 9, 5], "P": 4, "T": 1},
    "leak0-wide-P": {"sizes": [9, 7, 6, 3], "P": 16, "leak": 0, "seed": 3},
}


@pytest.mark.parametrize("name", list(CASES))
def test_core_matches_wb_sim_torch_and_trace(name):
    case = dict(CASES[name])
    P, cache = case.pop("P"), case.pop("cache", None)
    net = random_net(case.pop("sizes"), **case)
    x = random_inputs(net, 6)
    hw = simulate_core(net, x, P, cache_input=cache)
    assert_same(hw, trace(net, x), "numpy trace")
    assert_same(hw, simulate(net, x), "wb_sim")
    assert_same(hw, torch_integer_forward(net, x), "torch integer reference")
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x, P, cache_input=cache))


CONV_CASES = {
    # (in_shape, [(C_out, k, stride, padding, pool), ...], classes, P, extra)
    "stride1-pad1-pool2-conv-conv-linear": ((2, 6, 6), [(5, 3, 1, 1, 2), (6, 3, 1, 1, 0)], 4, 4,
                                            {}),
    "stride2-pad0-nopool": ((2, 7, 7), [(4, 3, 2, 0, 0), (3, 3, 1, 1, 0)], 3, 4, {}),
    "stride2-pad1-odd-map-one-conv": ((1, 7, 5), [(6, 3, 2, 1, 0)], 5, 4, {}),
    "pad0-pool2-cropped-soft-if": ((1, 7, 7), [(4, 3, 1, 0, 2), (4, 3, 1, 1, 2)], 3, 4,
                                   {"reset": "soft", "leak": None}),
    "1x1-pool3-odd-P": ((2, 7, 8), [(7, 1, 1, 0, 3)], 3, 3, {}),
    "channels-over-P-uniform-T1": ((1, 5, 5), [(9, 3, 1, 1, 0), (5, 3, 1, 1, 0)], 4, 4,
                                   {"T": 1, "uniform": True}),
    "P-over-channels-leak2": ((1, 6, 6), [(3, 3, 1, 1, 2), (10, 3, 1, 1, 0)], 4, 8,
                              {"leak": 2}),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_core_matches_wb_sim_torch_and_trace(name):
    in_shape, convs, classes, P, extra = CONV_CASES[name]
    net = random_conv_net(in_shape, convs, classes, **extra)
    x = random_inputs(net, 4)
    hw = simulate_core(net, x, P)
    sim = simulate(net, x)
    assert all(counts.sum() > 0 for counts in sim.spike_counts.values())  # spikes to check
    assert_same(hw, trace(net, x), "numpy trace")
    assert_same(hw, sim, "wb_sim")
    assert_same(hw, torch_integer_forward(net, x), "torch integer reference")
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x, P))


def test_conv_spram_weight_store_gives_the_same_result():
    net = random_conv_net((1, 6, 6), [(5, 3, 1, 1, 2)], 4, seed=3)
    x = random_inputs(net, 3, seed=2)
    rom = simulate_core(net, x, 4, weight_store="rom")
    ram = simulate_core(net, x, 4, weight_store="ram")
    assert_same(ram, rom, "rom vs ram")
    assert_same(ram, simulate(net, x), "wb_sim")
    np.testing.assert_array_equal(ram.cycles, rom.cycles)


def test_conv_widths_hold_the_extreme_input():
    """Every weight at +max and every input at its maximum, thresholds out of reach: the conv
    membrane reaches its bound (the centre neuron sums all 9 taps of 2 channels for 3 steps)
    exactly, so a datapath one bit narrower would wrap."""
    net = random_conv_net((2, 5, 5), [(3, 3, 1, 1, 0)], 2, T=3, wbits=5, ibits=6, leak=None)
    peak = 3 * ((2 * 9 * 15 * 63) << 2)
    for layer in net.layers:
        layer.weight[:] = 15
        layer.bias[:] = 0
    net.layers[0].neuron.threshold[:] = peak + 1
    x = np.full((1, 2, 5, 5), 63)
    plan = plan_core(net, 4)
    assert plan.layers[0].bounds.stored[1] == peak
    assert plan.widths.conv == signed_width(0, peak) == plan.layers[0].potential_width
    hw = simulate_core(net, x, 4)
    assert hw.spike_counts["conv0"].tolist() == [0]
    assert_same(hw, simulate(net, x), "wb_sim")
    assert_same(hw, torch_integer_forward(net, x), "torch integer reference")


def test_conv_cycles_follow_taps_groups_and_emitted_spikes():
    """The scatter costs one cycle per valid tap and group: halving P doubles it."""
    net = random_conv_net((1, 6, 6), [(8, 3, 1, 1, 2)], 3, seed=4)
    sparse, dense = random_inputs(net, 1, density=0.1), np.ones((1, 1, 6, 6), np.int64)
    assert cycles_for(net, dense, 4)[0] > cycles_for(net, sparse, 4)[0]
    assert cycles_for(net, dense, 8)[0] < cycles_for(net, dense, 4)[0]
    plan = plan_core(net, 4)
    tr = trace(net, dense)
    geom = plan.layers[0].conv
    assert geom.groups == 2
    # a 6x6 map with padding 1: corners reach 4 outputs, edges 6, the inside 9
    assert geom.scatter_cycles(tr.inputs[0][0])[0] == 2 * (4 * 4 + 16 * 6 + 16 * 9)


def test_widths_hold_the_extreme_input():
    """All weights at +max and every input at its maximum: the accumulator reaches exactly its
    bound (16 x 15 x 63), the potential climbs for three steps before the neurons fire; a
    width one bit short would wrap and change the spikes."""
    net = random_net([16, 12, 4], T=4, wbits=5, ibits=6, leak=None, threshold=200_000)
    for layer in net.layers:
        layer.weight[:] = 15
    x = np.full((2, 16), 63)
    x[1, ::2] = 0  # half the input: the potential stays below the threshold
    plan = plan_core(net, 4)
    assert plan.widths.acc == signed_width(0, 16 * 15 * 63)
    assert plan.widths.potential >= signed_width(0, 3 * ((16 * 15 * 63 << 2) + 20))
    hw = simulate_core(net, x, 4)
    assert hw.spike_counts["l0"].tolist() == [12, 0]  # all fire once, at the last step
    assert_same(hw, simulate(net, x), "wb_sim")
    assert_same(hw, torch_integer_forward(net, x), "torch integer reference")


def test_spram_weight_store_loaded_over_the_port_gives_the_same_result():
    net = random_net([12, 20, 9, 5], seed=5)
    x = random_inputs(net, 4, seed=2)
    rom = simulate_core(net, x, 4, weight_store="rom")
    ram = simulate_core(net, x, 4, weight_store="ram")
    assert_same(ram, rom, "rom vs ram")
    np.testing.assert_array_equal(ram.cycles, rom.cycles)


def test_cycles_grow_with_events_and_shrink_with_parallelism():
    net = random_net([16, 32, 24, 6], seed=7)
    sparse, dense = random_inputs(net, 1, density=0.1), random_inputs(net, 1, density=1.0)
    assert cycles_for(net, dense, 4)[0] > cycles_for(net, sparse, 4)[0]
    assert cycles_for(net, dense, 16)[0] < cycles_for(net, dense, 4)[0]


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_serial_top_drives_the_core_through_its_pins(kind):
    """The pin-limited wrapper synthesised for the boards: commands shifted in LSB first,
    applied for one cycle; outputs captured and shifted out (a conv first layer takes its
    inputs at ``CorePlan.host_index``)."""
    from amaranth.sim import Simulator
    from wb_fpga.hdl import SerialTop, SpikingCore

    if kind == "linear":
        net = random_net([8, 10, 3], seed=11)
    else:
        net = random_conv_net((1, 4, 3), [(3, 3, 1, 1, 0)], 3, seed=11)
    x = random_inputs(net, 2, seed=4).reshape(2, -1)
    plan = plan_core(net, 4)
    top = SerialTop(SpikingCore(plan))
    pins = SerialPins(top)
    got = {"logits": np.zeros((2, 3), np.int64), "cycles": [], "spikes": []}

    async def bench(ctx):
        for b in range(2):
            await pins.command(ctx, in_clear=1)
            active = np.flatnonzero(x[b])
            for i, where in zip(active, plan.host_index(active)):
                await pins.command(ctx, in_we=1, in_idx=int(where), in_val=int(x[b, i]))
            await pins.command(ctx, start=1)
            await ctx.tick().repeat(int(cycles_for(net, x[b:b + 1], 4)[0]) + 5)
            state = await pins.readback(ctx)
            assert pins.field(state, "done") == 1
            got["cycles"].append(pins.field(state, "cycles"))
            got["spikes"].append(pins.field(state, "spikes_0"))
            for c in range(3):
                await pins.command(ctx, apply=False, out_addr=c)
                await ctx.tick()
                got["logits"][b, c] = await pins.read(ctx, "out_data", signed=True)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    ref = trace(net, x)
    np.testing.assert_array_equal(got["logits"], ref.logits)
    np.testing.assert_array_equal(got["spikes"], ref.spike_counts[net.layers[0].name])
    assert sum(got["spikes"]) > 0
    np.testing.assert_array_equal(got["cycles"], cycles_for(net, x, 4))


@pytest.mark.slow
def test_digits_mlp_4bit_core_is_bit_exact_on_50_samples(trained_digits_mlp, plugin_host):
    session = Session(load_project(trained_digits_mlp), plugin_host.registry)
    model = session.build()
    model.eval()
    data = session.data()
    net = to_integer(model, time_steps=session.project.time_steps,
                     input_scale=input_scale_for(data.train), weight_bits=4)
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(256, 64), (256, 256),
                                                                  (10, 256)]
    x, _ = next(data.test.batches(50))
    x_int = net.quantize_input(x.numpy())
    hw = simulate_core(net, x_int, parallelism=32)
    assert len(hw.predictions) == 50
    assert_same(hw, simulate(net, x_int), "wb_sim")
    assert_same(hw, torch_integer_forward(net, x_int), "torch integer reference")
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x_int, 32))
    assert all(counts.sum() > 0 for counts in hw.spike_counts.values())


def _digits_conv_net(folder, plugin_host):
    session = Session(load_project(folder), plugin_host.registry)
    model = session.build()
    model.eval()
    data = session.data()
    net = to_integer(model, time_steps=session.project.time_steps,
                     input_scale=input_scale_for(data.train), weight_bits=4)
    return session, model, data, net


@pytest.mark.slow
def test_digits_conv_4bit_core_is_bit_exact_on_50_samples(trained_digits_conv, plugin_host):
    _, _, data, net = _digits_conv_net(trained_digits_conv, plugin_host)
    assert [(layer.kind, tuple(layer.weight.shape), layer.pool) for layer in net.layers] == [
        ("conv", (32, 1, 3, 3), 2), ("conv", (64, 32, 3, 3), 2), ("linear", (10, 256), 0)]
    x, _ = next(data.test.batches(50))
    x_int = net.quantize_input(x.numpy())
    # P = 32: conv1's 32 channels in one group, conv2's 64 in two (simulation time ~ 1 min)
    hw = simulate_core(net, x_int, parallelism=32)
    assert len(hw.predictions) == 50
    assert_same(hw, simulate(net, x_int), "wb_sim")
    assert_same(hw, torch_integer_forward(net, x_int), "torch integer reference")
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x_int, 32))
    assert all(counts.sum() > 0 for counts in hw.spike_counts.values())


# -- fit check --------------------------------------------------------------------------------
def test_digits_sized_network_fits_both_targets():
    net = random_net([64, 256, 256, 10], T=4)
    up5k = fit(net, "ice40-up5k", 16)
    assert up5k.ok and up5k.plan.weight_store == "ram"  # 344 kbit of weights: SPRAM
    assert up5k.spram_used == 4 and up5k.bram_used <= 30
    assert any("SPRAM" in i.message and i.severity == "warning" for i in up5k.issues)
    ecp5 = fit(net, "ecp5-25k", 16)
    assert ecp5.ok and ecp5.plan.weight_store == "rom" and ecp5.bram_used <= 56


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25k"])
def test_too_large_network_fails_the_check_naming_the_layer(target):
    net = random_net([64, 1024, 1024, 10], T=2)
    issues = fit_issues(net, target, 16)
    errors = [i for i in issues if i.severity == "error"]
    assert len(errors) == 1
    assert errors[0].node == "l1"  # the 1024 x 1024 layer, not the ones that fit
    assert "over by" in errors[0].message and target in errors[0].message


def test_too_wide_weight_word_for_spram_names_the_fix():
    issues = fit_issues(random_net([64, 256, 256, 10], T=4), "ice40-up5k", 32)
    error = next(i for i in issues if i.severity == "error")
    assert error.node == "l0" and "parallelism" in error.message


def test_what_the_core_cannot_do_is_reported_naming_the_node():
    net = random_conv_net((1, 6, 6), [(4, 3, 1, 1, 0)], 3)
    readout = net.layers[-1]
    # a conv read-out
    net.layers[-1] = IntLayer("head", "conv", np.ones((3, 4, 3, 3), np.int64), 2,
                              np.zeros(3, np.int64), 0, (4, 6, 6), (3, 4, 4), None)
    issues = fit_issues(net, "ice40-up5k", 4)
    assert issues[0].node == "head" and "read-out" in issues[0].message
    with pytest.raises(DeployError) as info:
        plan_core(net, 4)
    assert info.value.where == "node 'head'"
    # pooling after a linear layer
    lin = random_net([12, 8, 3])
    lin.layers[0].pool = 2
    assert fit_issues(lin, "ice40-up5k", 4)[0].node == "l0"
    # a conv layer after a linear one
    net.layers[-1] = readout
    net.layers.insert(0, IntLayer("first", "linear", np.ones((36, 36), np.int64), 2,
                                  np.zeros(36, np.int64), 0, (36,), (36,),
                                  IntNeuron(np.full(36, 5, np.int64))))
    assert fit_issues(net, "ecp5-25k", 4)[0].node == "conv0"
    # ternary spikes out of a conv layer (linear layers take them: test_fpga_signals.py)
    ternary = random_conv_net((1, 6, 6), [(4, 3, 1, 1, 0)], 3)
    ternary.layers[0].neuron.ternary = True
    issue = fit_issues(ternary, "ice40-up5k", 4)[0]
    assert issue.node == "conv0" and "ternary" in issue.message
    # malformed: biases that do not match the channels
    bad = random_conv_net((1, 6, 6), [(4, 3, 1, 1, 0)], 3)
    bad.layers[0].bias = np.zeros(7, np.int64)
    with pytest.raises(DeployError) as info:
        plan_core(bad, 4)
    assert info.value.where == "node 'conv0'"


def test_conv_memories_are_counted_per_layer():
    """The shapes of projects/digits_conv: one membrane word per output position and group of
    P channels, at the conv datapath's width; the weight words per (c_in, dy, dx, group)."""
    net = random_conv_net((1, 8, 8), [(32, 3, 1, 1, 2), (64, 3, 1, 1, 2)], 10, T=4, ibits=8,
                          shift=8, threshold=30_000)
    for P in (4, 8):
        ecp5 = fit(net, "ecp5-25k", P)
        assert ecp5.ok and ecp5.plan.weight_store == "rom" and ecp5.bram_used <= 56
        membranes = ecp5.memory["conv_membranes"]
        assert membranes["depth"] == (8 * 8 * 32 + 4 * 4 * 64) // P
        assert membranes["width"] == P * ecp5.plan.widths.conv
        assert ecp5.memory["weights"]["depth"] == 9 * (32 // P) + 32 * 9 * (64 // P) \
            + 256 * -(-10 // P)


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25k"])
def test_too_large_conv_network_fails_naming_the_layer(target):
    """A second conv layer of 256 channels on 16 x 16: its membranes alone exceed the block
    RAM; the first conv layer fits, so the check names the second and the overflow."""
    net = random_conv_net((1, 16, 16), [(4, 3, 1, 1, 0), (256, 3, 1, 1, 4)], 10, T=2,
                          ibits=8, shift=4, threshold=3000)
    errors = [i for i in fit_issues(net, target, 4) if i.severity == "error"]
    assert len(errors) == 1
    assert errors[0].node == "conv1"
    assert "over by" in errors[0].message and target in errors[0].message
    assert "256 x 16 x 16 membranes" in errors[0].message


def test_backend_checks_the_trained_digits_conv(trained_digits_conv, plugin_host, tmp_path):
    """``check`` on the trained 4-bit digits_conv: no errors on either target at P = 4 (the
    UP5K loads its weights into SPRAM: a warning); P = 32 makes a weight word too wide for
    the UP5K's 4 SPRAM blocks, named at the first layer."""
    session, model, _, _ = _digits_conv_net(trained_digits_conv, plugin_host)

    def ctx(target):
        return DeployContext(session=session, model=model, target=target, out_dir=tmp_path,
                             cancel=CancelToken(), run_id="t", limit=None, params={})

    up5k = FpgaBackend(parallelism=4).check(ctx("ice40-up5k"))
    assert not [i for i in up5k if i.severity == "error"]
    assert any("SPRAM" in i.message for i in up5k)
    assert not [i for i in FpgaBackend(parallelism=4).check(ctx("ecp5-25k"))
                if i.severity == "error"]
    wide = [i for i in FpgaBackend(parallelism=32).check(ctx("ice40-up5k"))
            if i.severity == "error"]
    assert wide and wide[0].node == "conv1" and "parallelism" in wide[0].message


# -- tools ------------------------------------------------------------------------------------
def test_tool_failure_shows_the_tools_last_lines(tmp_path):
    script = "import sys\nfor i in range(40):\n    print(f'step {i}')\nsys.exit(3)"
    with pytest.raises(DeployError) as info:
        drain(run_tool("yosys", [sys.executable, "-c", script], cwd=tmp_path, timeout_s=60))
    error = info.value
    assert error.where == "yosys" and "exit code 3" in error.message
    assert error.message.endswith("step 39")
    assert "step 20" in error.message and "step 19\n" not in error.message  # the last 20
    assert (tmp_path / "yosys.log").read_text().count("step") == 40


def test_tool_timeout_and_cancel_kill_the_process(tmp_path):
    sleeper = [sys.executable, "-c",
               "import os, time; open('pid', 'w').write(str(os.getpid())); time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(DeployError) as info:
        drain(run_tool("nextpnr-ice40", sleeper, cwd=tmp_path, timeout_s=1, where="nextpnr"))
    assert info.value.where == "nextpnr" and "did not finish within 1 s" in info.value.message
    assert time.monotonic() - started < 20
    (tmp_path / "pid").unlink()
    run = run_tool("yosys", sleeper, cwd=tmp_path, timeout_s=60)
    while not (tmp_path / "pid").exists():
        next(run)
    pid = int((tmp_path / "pid").read_text())
    run.close()  # what a cancelled deployment does
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_importing_the_plugin_is_cheap():
    code = ("import sys, wb_fpga; wb_fpga.wb_backends(); "
            "print(sorted(m for m in ('amaranth', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_backend_is_registered(plugin_host):
    spec = plugin_host.registry.get("wb_fpga.fpga")
    assert spec.kind == "hardware"
    assert spec.defaults() == {"parallelism": 16, "weight_bits": 4, "input_bits": 8,
                               "sim_samples": 50, "synthesize": True, "tool_timeout_s": 600}
    assert list(spec.create().targets()) == ["ice40-up5k", "ecp5-25k"]


# -- end to end (yosys + nextpnr + icepack) ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("yowasp_tools")
def test_a_broken_verilog_file_fails_in_yosys_with_its_own_words(tmp_path):
    """The whole flow (synthesis, place-and-route, bitstream, report) runs once in the suite,
    from the CLI on the 4-bit digits_mlp: tests/e2e/test_deploy_cli.py. Here, its failure."""
    from wb_fpga import toolchain
    from wb_fpga.targets import get_target

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.v").write_text("module snn_core(input clk; endmodule\n")
    with pytest.raises(DeployError) as info:
        drain(toolchain.synthesize(get_target("ice40-up5k"), broken / "bad.v", broken,
                                   timeout_s=120))
    assert info.value.where == "yosys" and "bad.v" in info.value.message
