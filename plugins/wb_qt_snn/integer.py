"""Fixed-point inference of a QT-SNN stack: the arithmetic integer hardware runs.

Take a stack of ``qt_linear`` layers (LSQ weights) with ternary LIF neurons (LSQ membrane) fed
ternary spikes, and choose the scales as powers of two of each other::

    s_u = 2^-r            (the membrane step)
    s_w = s_u * 2^-p      (the weight step)
    lam = 2^-q            (the leak)
    eps = s_u * 2^-(p+q)  (the unit), v_th = theta * eps for an integer theta

Then every potential ``U[t]`` of the float forward pass is an integer multiple of ``eps``, and in
units of ``eps`` the layer runs in integers (``q_w`` the weight codes, ``m`` the membrane code)::

    U[t] = m[t-1] * 2^p + 2^q * (q_w @ S_in[t])          # lam*H_q = 2^-q * s_u * m; W_q = s_w * q_w
    S[t] = sign(U[t]) * 1[|U[t]| >= theta]
    H[t] = U[t] * (1 - |S[t]|)
    m[t] = clamp(round_half_even(H[t] / 2^(p+q)), -(2^(b_u-1) - 1), 2^(b_u-1) - 1)

In float64 each of those numbers is exact (small integers times powers of two), so
``U_float == U_int * eps`` holds bit for bit and the spikes agree (the tests check it). Scales
that are not powers of two (``s_u = 0.05``) break it: ``eps`` itself is then not exact. The
membrane re-quantisation is the one of ``wb_sim.ir.requantize``: a floor shift, then the
remainder against half a step, ties to the even code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from wb_qt_snn.layers import QTLinear
from wb_qt_snn.neuron import TernaryLIF
from wb_qt_snn.quant import largest_code, lsq_codes, usable_scale


@dataclass(frozen=True)
class FixedPointLayer:
    """One QT-SNN layer in integers; the units are ``eps = s_u * 2^-(p+q)``."""

    weight_codes: torch.Tensor  # int64 [out, in]: W_q = s_w * codes
    p: int  # s_w = s_u * 2^-p
    threshold: int  # v_th / eps
    membrane_bits: int


@dataclass
class IntegerRun:
    """Per layer, ``[T, B, N]`` int64: the spikes, the potentials ``U`` (units of eps) and the
    stored membrane codes ``m``."""

    spikes: list[torch.Tensor]
    potentials: list[torch.Tensor]
    codes: list[torch.Tensor]


def round_half_even_shift(h: torch.Tensor, shift: int) -> torch.Tensor:
    """``round_half_even(h / 2^shift)`` on int64, exactly (no float)."""
    if shift == 0:
        return h.clone()
    low = torch.div(h, 2 ** shift, rounding_mode="floor")
    rest = h - low * 2 ** shift  # 0 .. 2^shift - 1
    half = 2 ** (shift - 1)
    up = (rest > half) | ((rest == half) & (low % 2 == 1))
    return low + up.to(torch.int64)


def integer_forward(spikes: torch.Tensor, layers: Sequence[FixedPointLayer],
                    q: int) -> IntegerRun:
    """Run ternary input ``spikes[T, B, D]`` through ``layers`` in int64 (``lam = 2^-q``)."""
    x = spikes.to(torch.int64)
    run = IntegerRun([], [], [])
    for layer in layers:
        top = largest_code(layer.membrane_bits)
        weights = layer.weight_codes.to(torch.int64)
        m = torch.zeros(x.shape[1], weights.shape[0], dtype=torch.int64)
        out, potentials, codes = [], [], []
        for t in range(x.shape[0]):
            u = m * 2 ** layer.p + 2 ** q * (x[t] @ weights.T)
            s = torch.sign(u) * (u.abs() >= layer.threshold).to(torch.int64)
            h = u * (1 - s.abs())
            m = round_half_even_shift(h, layer.p + q).clamp(-top, top)
            out.append(s)
            potentials.append(u)
            codes.append(m)
        run.spikes.append(torch.stack(out))
        run.potentials.append(torch.stack(potentials))
        run.codes.append(torch.stack(codes))
        x = run.spikes[-1]
    return run


def power_of_two_exponent(value: float, what: str) -> int:
    """``k`` with ``value == 2^k`` exactly; a ValueError naming ``what`` otherwise."""
    mantissa, exponent = math.frexp(value)
    if mantissa != 0.5:
        raise ValueError(f"{what} = {value!r} is not a power of two; fixed-point inference "
                         "needs power-of-two scales")
    return exponent - 1


def fixed_point_layers(blocks: Sequence[nn.Module]) -> tuple[list[FixedPointLayer], int]:
    """The integer form of ``qt_linear`` blocks (``fc``: LSQ :class:`QTLinear` without bias,
    ``neuron``: :class:`TernaryLIF` with a quantised membrane) and ``q`` (``lam = 2^-q``).
    Raises ValueError when a scale relation of the module docstring does not hold."""
    layers, qs = [], set()
    for index, block in enumerate(blocks):
        fc, neuron = getattr(block, "fc", None), getattr(block, "neuron", None)
        where = f"layer {index}"
        if not isinstance(fc, QTLinear) or fc.weight_quant_method != "lsq" or fc.bias is not None:
            raise ValueError(f"{where}: needs an LSQ QTLinear without bias as 'fc'")
        if not isinstance(neuron, TernaryLIF) or not neuron.quantize_membrane:
            raise ValueError(f"{where}: needs a TernaryLIF with a quantised membrane")
        s_u = float(usable_scale(neuron.membrane_scale.detach(), neuron.pow2_scales))
        s_w = float(usable_scale(fc.weight_scale.detach(), fc.pow2_scales))
        r = -power_of_two_exponent(s_u, f"{where}: s_u")
        p = -power_of_two_exponent(s_w, f"{where}: s_w") - r  # s_w = 2^-(r+p)
        q = -power_of_two_exponent(neuron.lam, f"{where}: lam")
        if p < 0 or q < 0:
            raise ValueError(f"{where}: needs s_w <= s_u and lam <= 1 (p = {p}, q = {q})")
        units = neuron.v_th / (s_u * 2.0 ** -(p + q))
        if units != round(units):
            raise ValueError(f"{where}: v_th = {neuron.v_th!r} is not a multiple of "
                             f"eps = s_u * 2^-(p+q) = {s_u * 2.0 ** -(p + q)!r}")
        codes = lsq_codes(fc.weight.detach(), fc.weight_scale.detach(), fc.bits, fc.pow2_scales)
        layers.append(FixedPointLayer(codes.cpu(), p, int(units), neuron.membrane_bits))
        qs.add(q)
    if len(qs) > 1:
        raise ValueError(f"the layers have different leaks (q = {sorted(qs)}); use one lam")
    return layers, qs.pop() if qs else 0
