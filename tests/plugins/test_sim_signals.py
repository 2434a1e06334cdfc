"""The integer network for signal networks (QT-SNN): an input of spikes made on the host by the
project's encoder, ternary neurons and membranes stored as b-bit codes. The event-driven
simulator, the dense torch reference and plain Python integers must agree exactly."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron, requantize
from wb_sim.reference import torch_integer_forward
from wb_sim.simulate import simulate
from workbench.pluginhost import DeployError


def test_requantize_rounds_half_to_even_and_clips():
    rng = np.random.default_rng(0)
    v = rng.integers(-5000, 5000, 4000)
    for bits, shift in ((4, 0), (4, 3), (6, 5), (8, 1)):
        top = 2 ** (bits - 1) - 1
        expected = np.clip(np.rint(v / 2.0 ** shift), -top, top).astype(np.int64) << shift
        np.testing.assert_array_equal(requantize(v, bits, shift), expected)
    # the ties go to the even code, both signs: 12/8 -> 2, 20/8 -> 2, -12/8 -> -2, -4/8 -> 0
    np.testing.assert_array_equal(requantize(np.array([12, 20, -12, -4, 4]), 4, 3),
                                  np.array([16, 16, -16, 0, 0]))


def _naive(net: IntegerNetwork, spikes: np.ndarray) -> tuple[list[int], dict[str, int]]:
    """One sample with Python integers: the arithmetic of ``wb_sim/ir.py`` read literally."""
    state = [[0] * int(np.prod(layer.out_shape)) for layer in net.layers]
    logits = [0] * net.n_classes
    readout = [0] * net.n_classes  # an integrating read-out's membrane
    counts = {layer.name: 0 for layer in net.layers if layer.neuron is not None}
    for t in range(net.time_steps):
        inp = [int(s) for s in spikes[t].reshape(-1)]
        for i, layer in enumerate(net.layers):
            out = []
            for c in range(layer.weight.shape[0]):
                acc = sum(int(w) * s for w, s in zip(layer.weight[c], inp, strict=True))
                cur = (acc << layer.shift) + int(layer.bias[c])
                if layer.neuron is None:
                    if layer.integrate:
                        readout[c] += cur
                        cur = readout[c]
                    logits[c] += cur
                    continue
                n, v = layer.neuron, state[i][c]
                h = v + cur if n.leak_shift is None else v - (v >> n.leak_shift) + cur
                thr = int(n.threshold[c])
                spike = 1 if h >= thr else (-1 if n.ternary and h <= -thr else 0)
                v = (0 if spike else h) if n.reset == "hard" else h - thr * spike
                if n.membrane_bits is not None:
                    top = 2 ** (n.membrane_bits - 1) - 1
                    code = round(Fraction(v, 2 ** n.membrane_shift))  # half to even
                    v = max(-top, min(top, code)) * 2 ** n.membrane_shift
                state[i][c] = v
                out.append(spike)
            if layer.neuron is not None:
                counts[layer.name] += sum(abs(s) for s in out)
                inp = out
    return logits, counts


def _signal_network(seed: int, *, bits: int | None, shift: int,
                    integrate: bool = False) -> IntegerNetwork:
    rng = np.random.default_rng(seed)
    hidden = IntLayer("hidden", "linear", rng.integers(-7, 8, (8, 6)), 4, np.zeros(8, np.int64),
                      2, (6,), (8,), IntNeuron(rng.integers(8, 30, 8), 1, "hard", ternary=True,
                                               membrane_bits=bits, membrane_shift=shift))
    second = IntLayer("second", "linear", rng.integers(-7, 8, (5, 8)), 4, np.zeros(5, np.int64),
                      2, (8,), (5,), IntNeuron(rng.integers(8, 30, 5), 1, "hard", ternary=True,
                                               membrane_bits=bits, membrane_shift=shift))
    out = IntLayer("out", "linear", rng.integers(-7, 8, (3, 5)), 4, np.zeros(3, np.int64), 0,
                   (5,), (3,), None, integrate=integrate)
    return IntegerNetwork([hidden, second, out], time_steps=12, input_scale=1.0,
                          input_kind="spikes")


@pytest.mark.parametrize(("seed", "bits", "shift", "integrate"),
                         [(0, 4, 2, False), (1, 4, 0, False), (2, 3, 3, False),
                          (3, None, 0, False), (4, 4, 1, True)])
def test_a_spike_input_network_with_membrane_codes_is_exact_three_ways(seed, bits, shift,
                                                                        integrate):
    net = _signal_network(seed, bits=bits, shift=shift, integrate=integrate)
    rng = np.random.default_rng(100 + seed)
    spikes = rng.choice([-1, 0, 0, 1], size=(10, 12, 6))  # a ternary-encoded signal
    sim = simulate(net, spikes)
    ref = torch_integer_forward(net, spikes)
    np.testing.assert_array_equal(sim.logits, ref.logits)
    for name in sim.spike_counts:
        np.testing.assert_array_equal(sim.spike_counts[name], ref.spike_counts[name])
    np.testing.assert_array_equal(sim.synaptic_events, ref.synaptic_events)
    for b in range(len(spikes)):
        logits, counts = _naive(net, spikes[b])
        assert sim.logits[b].tolist() == logits
        assert {k: int(v[b]) for k, v in sim.spike_counts.items()} == counts
    # every input spike is one accumulate per synapse it reaches, as every hidden spike is;
    # nothing is a multiply: the signal was encoded on the host
    assert (sim.dense_macs == 0).all()
    np.testing.assert_array_equal(
        sim.synaptic_events, np.abs(spikes).reshape(10, -1).sum(1) * 8
        + sim.spike_counts["hidden"] * 5 + sim.spike_counts["second"] * 3)


def test_membrane_codes_change_the_dynamics_and_survive_a_save(tmp_path):
    spikes = np.random.default_rng(5).choice([-1, 0, 1], size=(16, 12, 6))
    coarse = _signal_network(4, bits=3, shift=3)
    full = _signal_network(4, bits=None, shift=0)
    assert not np.array_equal(simulate(coarse, spikes).logits, simulate(full, spikes).logits)
    again = IntegerNetwork.load(coarse.save(tmp_path / "net.npz"))
    assert again.input_kind == "spikes" and again.layers[0].neuron.membrane_bits == 3
    assert again.layers[0].neuron.membrane_shift == 3
    np.testing.assert_array_equal(simulate(again, spikes).logits, simulate(coarse, spikes).logits)


def test_a_spike_input_of_the_wrong_shape_or_values_is_refused():
    net = _signal_network(0, bits=4, shift=2)
    with pytest.raises(DeployError, match=r"each input must hold 72 values \(\[12, 6\]\)"):
        simulate(net, np.zeros((2, 6), dtype=np.int64))
    with pytest.raises(DeployError, match="takes spikes"):
        simulate(net, np.full((2, 12, 6), 3))
