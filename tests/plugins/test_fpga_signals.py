"""The FPGA core on signal networks (QT-SNN): ternary spikes between layers, membranes stored
as b-bit codes, and a spike-train input loaded by the host step by step. The Amaranth core must
equal wb_sim (and the torch integer reference) bit for bit, and the cycle model the simulated
cycle counter. One synthesis check (yosys + nextpnr) puts a JapaneseVowels-sized QT-SNN on the
iCE40 UP5K."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from fpga_helpers import SerialPins, drain
from wb_fpga.cycles import cycles_for, trace
from wb_fpga.fit import fit, fit_issues
from wb_fpga.plan import plan_core, signed_width
from wb_fpga.sim import simulate_core
from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron
from wb_sim.reference import torch_integer_forward
from wb_sim.simulate import simulate

from workbench.pluginhost import DeployError


def qt_network(sizes, *, T=10, seed=0, bits=4, shift=2, reset="hard", leak=1, layer_shift=2,
               threshold=(8, 30), input_kind="spikes", ternary=True) -> IntegerNetwork:
    """Linear layers with random 4-bit weights and biases; every layer but the read-out has a
    (ternary) neuron with a ``bits``-bit membrane code on a grid of ``2**shift``."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (c_in, c_out) in enumerate(pairwise(sizes)):
        neuron = None
        if i < len(sizes) - 2:
            neuron = IntNeuron(rng.integers(*threshold, c_out), leak, reset, ternary=ternary,
                               membrane_bits=bits, membrane_shift=shift)
        layers.append(IntLayer(f"l{i}", "linear", rng.integers(-7, 8, (c_out, c_in)), 4,
                               rng.integers(-6, 7, c_out), layer_shift, (c_in,), (c_out,),
                               neuron))
    return IntegerNetwork(layers, T, 1.0, 2 if input_kind == "spikes" else 4, "qt",
                          input_kind=input_kind)


def spike_trains(net, n, *, seed=1, density=0.5):
    """``n`` ternary spike trains ``[n, T, inputs]``: -1 and +1 equally likely."""
    rng = np.random.default_rng(seed)
    shape = (n, net.time_steps) + tuple(net.input_shape)
    return rng.choice([-1, 1], size=shape) * (rng.random(shape) < density)


def assert_core_is_exact(net, x, P):
    """The simulated core against wb_sim, the torch integer reference and the numpy trace:
    predictions, logits, each layer's spike count; its cycles against the cycle model."""
    hw = simulate_core(net, x, P)
    sim = simulate(net, x)
    for label, other in (("wb_sim", sim), ("torch", torch_integer_forward(net, x)),
                         ("trace", trace(net, x))):
        np.testing.assert_array_equal(hw.predictions, other.predictions, err_msg=label)
        np.testing.assert_array_equal(hw.logits, other.logits, err_msg=label)
        assert set(hw.spike_counts) == set(other.spike_counts), label
        for name, counts in hw.spike_counts.items():
            np.testing.assert_array_equal(counts, other.spike_counts[name],
                                          err_msg=f"{label} {name}")
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x, P))
    assert all(counts.sum() > 0 for counts in sim.spike_counts.values())  # spikes to check
    return sim


def _variant(net, **neuron):
    """A copy of ``net`` whose hidden neurons differ in the fields ``neuron``."""
    layers = []
    for layer in net.layers:
        n = layer.neuron
        if n is not None:
            n = IntNeuron(n.threshold, n.leak_shift, n.reset, **{
                "ternary": n.ternary, "membrane_bits": n.membrane_bits,
                "membrane_shift": n.membrane_shift, **neuron})
        layers.append(IntLayer(layer.name, layer.kind, layer.weight, layer.weight_bits,
                               layer.bias, layer.shift, layer.in_shape, layer.out_shape, n))
    return IntegerNetwork(layers, net.time_steps, net.input_scale, net.input_bits, net.name,
                          input_kind=net.input_kind)


# -- the core against the references ----------------------------------------------------------
SPIKE_CASES = {
    # sizes, T, P, bits, shift, reset, leak
    "4bit-shift2-hard-P3": ([6, 8, 5, 3], 12, 3, 4, 2, "hard", 1),
    "3bit-shift3-soft-P4": ([7, 9, 6, 4], 10, 4, 3, 3, "soft", 1),
    "4bit-shift0-soft-IF-P16": ([5, 10, 7, 3], 8, 16, 4, 0, "soft", None),
    "3bit-shift1-hard-leak2-P5": ([8, 11, 6, 4], 9, 5, 3, 1, "hard", 2),
}


@pytest.mark.parametrize("name", list(SPIKE_CASES))
def test_spike_train_qt_network_runs_bit_exact_on_the_core(name):
    sizes, T, P, bits, shift, reset, leak = SPIKE_CASES[name]
    net = qt_network(sizes, T=T, bits=bits, shift=shift, reset=reset, leak=leak,
                     seed=len(name))
    x = spike_trains(net, 8, seed=len(name) + 1)
    sim = assert_core_is_exact(net, x, P)
    # what is checked matters: binary neurons, or full-width membranes, give other logits
    assert not np.array_equal(simulate(_variant(net, ternary=False), x).logits, sim.logits)
    assert not np.array_equal(simulate(_variant(net, membrane_bits=None), x).logits,
                              sim.logits)
    # the input is events, never a multiply: each input spike is one accumulate per neuron
    assert (sim.dense_macs == 0).all()


def test_static_input_with_ternary_hidden_layers_runs_bit_exact():
    """Direct encoding (the lanes multiply the input value; a -1 spike is the value -1), the
    input cache after t = 0, ternary spikes and membrane codes in the hidden layers."""
    net = qt_network([9, 12, 7, 4], T=8, seed=4, bits=4, shift=1, reset="soft",
                     input_kind="static", threshold=(20, 60))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 16, (8, 9)) * (rng.random((8, 9)) < 0.6)
    assert plan_core(net, 5).cache_input
    assert_core_is_exact(net, x, 5)


def test_ternary_layers_without_membrane_codes_run_bit_exact():
    net = qt_network([6, 10, 6, 3], T=10, seed=9, bits=None, reset="soft")
    assert_core_is_exact(net, spike_trains(net, 8, seed=3), 4)


def test_extreme_ternary_sums_fit_their_widths():
    """Every weight at +7 and every input spike -1: the accumulator reaches exactly -(sum of
    |W|) = -70 (a width one bit short would wrap). The 3-bit code clips V = -70 to -3 * 4 =
    -12, so the next step's H = -12 + 6 - 70 = -76 reaches the threshold of 75 and fires -1;
    the soft reset leaves -1, whose code rounds to 0, and the cycle repeats: the six neurons
    fire at steps 1, 3 and 5 (full-width membranes fire at four of the six steps)."""
    net = qt_network([10, 6, 3], T=6, bits=3, shift=2, threshold=(75, 76), layer_shift=0,
                     reset="soft")
    for layer in net.layers:
        layer.weight[:] = 7
        layer.bias[:] = 0
    x = np.full((2, 6, 10), -1)
    x[1, ::2] = 1  # a train that changes sign: codes move both ways
    plan = plan_core(net, 4)
    hidden = plan.layers[0]
    assert hidden.bounds.acc == (-70, 70)
    assert plan.widths.acc == signed_width(-70, 70)
    assert hidden.potential_width == 3  # the 3-bit code, -3 .. 3
    sim = simulate(net, x)
    assert sim.spike_counts["l0"].tolist() == [6 * 3, 0]
    assert simulate(_variant(net, membrane_bits=None), x).spike_counts["l0"][0] == 6 * 4
    assert (sim.logits[0] < 0).all()  # the read-out subtracted their weights
    hw = simulate_core(net, x, 4)
    np.testing.assert_array_equal(hw.logits, sim.logits)
    np.testing.assert_array_equal(hw.spike_counts["l0"], sim.spike_counts["l0"])
    np.testing.assert_array_equal(hw.cycles, cycles_for(net, x, 4))


def test_spike_input_cycles_follow_each_steps_events():
    """Layer 0 has no input cache: its pass at step t costs what that step's events cost."""
    net = qt_network([12, 16, 4], T=6)
    quiet, busy = np.zeros((1, 6, 12), np.int64), np.zeros((1, 6, 12), np.int64)
    quiet[0, 0, 0] = busy[0, 0, 0] = 1
    busy[0, 3] = -1  # twelve more events at step 3
    plan = plan_core(net, 4)
    assert not plan.cache_input
    extra = cycles_for(net, busy, 4)[0] - cycles_for(net, quiet, 4)[0]
    assert extra >= 12 * plan.layers[0].groups  # each group walks the events once
    assert_core_is_exact(net, spike_trains(net, 3, seed=6), 4)


def jv_sized_network() -> IntegerNetwork:
    """JapaneseVowels-sized: 12 channels of spikes, 64 and 64 ternary neurons with 4-bit
    membrane codes, 4-bit weights, 9 classes, T = 29."""
    return qt_network([12, 64, 64, 9], T=29, bits=4, shift=3, threshold=(24, 40),
                      layer_shift=1)


@pytest.mark.slow
def test_japanese_vowels_sized_qt_snn_is_bit_exact_at_the_default_parallelism():
    """The network the synthesis check places, simulated at P = 16 on 8 spike trains."""
    net = jv_sized_network()
    assert_core_is_exact(net, spike_trains(net, 8, seed=5, density=0.3), 16)


# -- memories and the fit check ---------------------------------------------------------------
def test_membrane_codes_shrink_the_membrane_memory():
    net = qt_network([12, 64, 64, 9], T=29, bits=4, shift=3, threshold=(200, 201))
    full = _variant(net, membrane_bits=None)
    coded, plain = fit(net, "ice40-up5k", 16), fit(full, "ice40-up5k", 16)
    assert coded.ok and plain.ok
    assert coded.memory["membrane0"]["width"] == 4  # the code, not V
    assert coded.membranes["l0"] == {
        "neurons": 64, "stored_bits": 4, "bits": 256, "code_bits": 4, "code_shift": 3,
        "full_width_bits": plain.memory["membrane0"]["width"]}
    assert plain.memory["membrane0"]["width"] > 4
    assert "l0 64 x 4 bit (4-bit codes;" in coded.membrane_summary()
    # the spike buffer carries the sign, the input events a sign and no value
    assert coded.memory["spike_events"]["width"] == coded.plan.widths.ev_index + 1
    assert coded.memory["input_events"]["depth"] == 29 * 12
    assert coded.memory["input_events"]["width"] == coded.plan.widths.in_index + 1


def test_what_stays_unsupported_is_refused_naming_the_node():
    rng = np.random.default_rng(0)
    conv = IntegerNetwork([
        IntLayer("conv0", "conv", rng.integers(-7, 8, (4, 1, 3, 3)), 4, np.zeros(4, np.int64), 2,
                 (1, 6, 6), (4, 6, 6), IntNeuron(np.full(4, 30, np.int64)), 1, 1),
        IntLayer("fc", "linear", rng.integers(-7, 8, (3, 144)), 4, np.zeros(3, np.int64), 2,
                 (144,), (3,), None)], 3, 1.0, 4)
    assert not fit_issues(conv, "ice40-up5k", 4)  # as it is, it fits
    conv.layers[0].neuron.ternary = True
    issue = fit_issues(conv, "ice40-up5k", 4)[0]
    assert issue.node == "conv0" and "ternary spikes on a conv layer" in issue.message
    conv.layers[0].neuron.ternary = False
    conv.layers[0].neuron.membrane_bits = 4
    issue = fit_issues(conv, "ice40-up5k", 4)[0]
    assert issue.node == "conv0" and "membrane code on a conv layer" in issue.message
    conv.layers[0].neuron.membrane_bits = None
    conv.input_kind = "spikes"
    issue = fit_issues(conv, "ice40-up5k", 4)[0]
    assert issue.node == "conv0" and "spike-train input needs a linear first layer" \
        in issue.message
    zero = qt_network([6, 8, 3])
    zero.layers[0].neuron.threshold[2] = 0
    with pytest.raises(DeployError, match="thresholds of at least 1") as info:
        plan_core(zero, 4)
    assert info.value.where == "node 'l0'"
    odd = qt_network([6, 8, 3])
    odd.input_kind = "dense"
    assert "unknown input kind 'dense'" in fit_issues(odd, "ecp5-25k", 4)[0].message


# -- the pin-limited top ----------------------------------------------------------------------
def test_serial_top_loads_a_spike_train_through_its_pins():
    """``in_step`` is a strobe of the synthesised wrapper like ``in_we``: applied for one
    cycle. Each step's spikes, then ``in_step``; the core then matches wb_sim."""
    from amaranth.sim import Simulator
    from wb_fpga.hdl import SerialTop, SpikingCore

    net = qt_network([5, 6, 3], T=4, seed=2, threshold=(4, 10))
    x = spike_trains(net, 1, seed=8, density=0.6)
    top = SerialTop(SpikingCore(plan_core(net, 4)))
    pins = SerialPins(top)
    assert "in_step" in [sig.name for sig in pins.inputs]
    got = {}

    async def bench(ctx):
        await pins.command(ctx, in_clear=1)
        for t in range(net.time_steps):
            for i in np.flatnonzero(x[0, t]):
                await pins.command(ctx, in_we=1, in_idx=int(i), in_val=int(x[0, t, i]) & 3)
            await pins.command(ctx, in_step=1)
        await pins.command(ctx, start=1)
        await ctx.tick().repeat(int(cycles_for(net, x, 4)[0]) + 5)
        got["spikes"] = await pins.read(ctx, "spikes_0")
        got["logits"] = []
        for c in range(3):
            await pins.command(ctx, out_addr=c)
            got["logits"].append(await pins.read(ctx, "out_data", signed=True))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    ref = simulate(net, x)
    assert got["logits"] == ref.logits[0].tolist()
    assert got["spikes"] == int(ref.spike_counts["l0"][0]) > 0


# -- synthesis (yosys + nextpnr) --------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("yowasp_tools")
def test_japanese_vowels_sized_qt_snn_fits_the_ice40_up5k(tmp_path):
    """12 input channels of TAE spikes, 64 and 64 ternary neurons with 4-bit membrane codes,
    4-bit weights, 9 classes, T = 29, P = 16 (the default): synthesised and placed for the
    UP5K (about 90 s with a warm YoWASP cache). ``-s`` shows the figures docs/fpga.md quotes."""
    from wb_fpga import toolchain
    from wb_fpga.backend import _yosys_cells
    from wb_fpga.targets import get_target

    net = jv_sized_network()
    target = get_target("ice40-up5k")
    fitted = fit(net, target, 16)
    assert fitted.ok and fitted.plan.weight_store == "rom"
    assert [m["stored_bits"] for m in fitted.membranes.values()] == [4, 4]
    verilog = drain(toolchain.export_verilog(fitted.plan, tmp_path, timeout_s=600))
    netlist = drain(toolchain.synthesize(target, verilog, tmp_path, timeout_s=600))
    _, report = drain(toolchain.place_and_route(target, netlist, tmp_path, timeout_s=600))
    parsed = toolchain.parse_report(report, target)
    res = parsed["resources"]
    for name in ("LC", "BRAM"):
        assert 0 < res[name]["used"] <= res[name]["available"], name
    assert res["BRAM"]["used"] <= fitted.bram_used
    assert parsed["fmax_mhz"] > 12  # the clock the flow asks nextpnr for
    cells = _yosys_cells(tmp_path / "yosys-run.log")
    cycles = cycles_for(net, spike_trains(net, 100, seed=3, density=0.3), 16)
    print(f"\nice40-up5k, P = 16: {res['LC']['used']} / {res['LC']['available']} logic cells "
          f"(estimate ~{fitted.lut_estimate}), SB_LUT4 {cells.get('SB_LUT4')}, FF "
          f"{sum(v for k, v in cells.items() if k.startswith('SB_DFF'))}, EBR "
          f"{res['BRAM']['used']} / {res['BRAM']['available']} (estimate {fitted.bram_used}), "
          f"Fmax {parsed['fmax_mhz']:.1f} MHz; {fitted.membrane_summary()}; cycles on 100 "
          f"random spike trains of density 0.3: {cycles.mean():.0f} mean ({cycles.min()} - "
          f"{cycles.max()}), {cycles.mean() / parsed['fmax_mhz']:.0f} us at Fmax")
