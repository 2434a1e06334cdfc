"""Trained float network -> :class:`~wb_sim.ir.IntegerNetwork` (the arithmetic is in ``ir.py``).

Per spiking layer the float network computes, per output channel ``c``::

    X'[c] = b_n * (g[c] * (W[c] . x + bias[c] - mu[c]) + beta[c])     # g = gamma / sqrt(var+eps)
    H     = a * V + X'                     fires at H >= v_th (strict '>' for LIF B)

With integer weights ``W[c] = s[c] * q[c]`` (and ``x = input_scale * x_int`` in layer 0) this is
``X'[c] = alpha[c] * (q[c] . x_int) + beta'[c]``. Dividing the state by ``|alpha[c]|`` and
scaling it by ``2**frac_bits`` turns the layer into integers: the accumulator is ``q . x``
shifted left by ``frac_bits``; bias and threshold are rounded once; the leak ``a = 1 - 2**-k``
becomes ``V - (V >> k)``. A negative ``alpha[c]`` (a negative BN gamma) flips the sign of the
channel's weights and bias so the comparison keeps its direction. The read-out has no neuron and
one scale for all classes, so its summed integer logits can be compared across classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from wb_sim.ir import IntegerNetwork, IntLayer, IntNeuron
from workbench.pluginhost import CompiledNetwork, DeployError, FitIssue, QuantizedTensor

_BN = nn.modules.batchnorm._BatchNorm  # BatchNorm1d and BatchNorm2d (and wb_core's subclasses)


# -- parsing the model into a plan ------------------------------------------------------------
@dataclass
class _Step:
    """One integer layer to build: the synapse, its optional BN and neuron, a pool after it."""

    node: str
    synapse: nn.Module  # nn.Linear or nn.Conv2d
    bn: nn.Module | None = None
    neuron: nn.Module | None = None  # None: the read-out
    pool: int = 0
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()


@dataclass
class _Plan:
    steps: list[_Step] = field(default_factory=list)
    issues: list[FitIssue] = field(default_factory=list)


def _is_neuron(module: Any) -> bool:
    return hasattr(module, "dynamics")


def _neuron_issue(node: str, neuron: nn.Module) -> str:
    """Why this neuron has no integer form ('' when it has one)."""
    d = neuron.dynamics
    needed = ("a", "b", "c", "v_th", "v_reset", "hard_reset", "at_zero")
    missing = [n for n in needed if not hasattr(d, n)]
    if missing:
        return (f"the neuron {type(neuron).__name__} does not describe its dynamics "
                f"({', '.join(missing)} missing); use wb_core.lif, wb_core.lif_b or wb_core.if")
    if float(d.v_reset) != 0.0 or float(d.c) != 0.0:
        return (f"the neuron resets to v_reset = {float(d.v_reset):g}; the integer network "
                "resets to 0: set v_reset to 0 and retrain")
    if float(d.b) <= 0.0:
        return f"the neuron's input gain is {float(d.b):g}; it must be positive"
    if float(d.v_th) <= 0.0:
        return f"the neuron's threshold is {float(d.v_th):g}; it must be positive"
    if _leak_shift(float(d.a)) is False:
        return (f"the neuron's leak factor {float(d.a):g} is not of the form 1 - 2^-k "
                "(k = 0, 1, 2, ...), which the integer network computes as V - (V >> k): use "
                "tau = 1, 2, 4, 8, ... (LIF A) or lam = 0, 0.5, 0.75, 0.875, ... (LIF B)")
    return ""


def _leak_shift(a: float) -> int | None | bool:
    """``None`` for no leak (a = 1), ``k`` for ``a = 1 - 2**-k``, ``False`` otherwise."""
    if a == 1.0:
        return None
    if not 0.0 <= a < 1.0:
        return False
    k = -math.log2(1.0 - a)
    if abs(k - round(k)) > 1e-9 or round(k) > 62:
        return False
    return int(round(k))


def _block_parts(node: str, module: nn.Module, issues: list[FitIssue]):
    """``(synapse, bn, neuron)`` of a spiking block, or None after recording why not."""
    children = list(module.children())
    synapse = children[0] if children else None
    if isinstance(synapse, nn.Conv1d):
        issues.append(FitIssue(node, _conv1d_issue(synapse)))
        return None
    if not isinstance(synapse, (nn.Linear, nn.Conv2d)):
        issues.append(FitIssue(node, f"a {type(module).__name__} that does not start with a "
                                     "linear or conv layer; the integer network knows "
                                     "wb_core.spiking_linear and wb_core.spiking_conv"))
        return None
    rest = children[1:]
    bn = rest.pop(0) if rest and isinstance(rest[0], _BN) else None
    if len(rest) == 1 and not _is_neuron(rest[0]):
        issues.append(FitIssue(node, f"the neuron {type(rest[0]).__name__} has no integer form "
                                     "here (wb_sim knows neurons that describe their dynamics: "
                                     "wb_core.lif, wb_core.lif_b, wb_core.if)"))
        return None
    if len(rest) != 1:
        issues.append(FitIssue(node, "the block is not synapse -> (batch norm) -> neuron; the "
                                     "integer network knows wb_core.spiking_linear and "
                                     "wb_core.spiking_conv"))
        return None
    if bn is not None and (not bn.track_running_stats or bn.running_mean is None):
        issues.append(FitIssue(node, "batch norm without running statistics cannot be folded "
                                     "into the weights; enable track_running_stats"))
        return None
    if isinstance(synapse, nn.Conv2d) and not plain_conv(synapse):
        issues.append(FitIssue(node, "only square convolutions with equal strides and padding, "
                                     "no dilation and no groups are supported"))
        return None
    why = _neuron_issue(node, rest[0])
    if why:
        issues.append(FitIssue(node, why))
        return None
    return synapse, bn, rest[0]


def _conv1d_issue(conv: nn.Conv1d) -> str:
    """Why a 1-D convolution has no integer form."""
    history = getattr(conv, "history", None)  # a causal convolution over time declares it
    if isinstance(history, int):
        return (f"a convolution over time: each step also reads the last {history} input "
                "steps, a window of past input spikes per channel (a delay line) that the "
                "integer network does not model (it keeps only each neuron's membrane "
                "between steps); use linear layers (wb_qt_snn.qt_linear) to deploy")
    return ("1-D convolutions have no integer form; the integer network knows "
            "wb_core.spiking_linear and wb_core.spiking_conv (2-D)")


def plain_conv(conv: nn.Conv2d) -> bool:
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    return (k[0] == k[1] and s[0] == s[1] and isinstance(p, tuple) and p[0] == p[1]
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")


def _pool_size(pool: nn.MaxPool2d) -> int | None:
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    s = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
    kernels = {pool.kernel_size} if isinstance(pool.kernel_size, int) else set(pool.kernel_size)
    strides = {pool.stride} if isinstance(pool.stride, int) else set(pool.stride)
    if len(kernels) != 1 or len(strides) != 1 or k != s or pool.padding not in (0, (0, 0)):
        return None
    if pool.dilation not in (1, (1, 1)) or pool.ceil_mode:
        return None
    return int(k)


def chain_issues(model: CompiledNetwork) -> list[FitIssue]:
    """One issue per node that is not fed by the node before it: the integer networks are
    chains of layers."""
    order = list(model.order)
    issues = []
    for i, node in enumerate(order):
        expected = [order[i - 1]] if i else []
        if list(model.inputs.get(node, [])) != expected:
            issues.append(FitIssue(node, "the integer network is a chain of layers; this node "
                                         "takes other inputs (a branch or a residual add)"))
    return issues


def _plan(model: CompiledNetwork) -> _Plan:
    plan = _Plan()
    issues = plan.issues
    order = list(model.order)
    issues.extend(chain_issues(model))
    if issues:
        return plan
    readout_seen = False
    last_spiking: _Step | None = None  # a step whose spikes the next node sees directly
    for node in order:
        module = model.layers[node]
        info = model.report.nodes.get(node)
        in_shape = tuple(info.in_shapes[0]) if info and info.in_shapes else ()
        out_shape = tuple(info.out_shape or ()) if info else ()
        name = type(module).__name__
        if isinstance(module, (nn.Dropout, nn.Flatten)):
            continue  # identity at inference; a flatten keeps spikes in C, H, W order
        if name == "MeanOverTime":
            # The integer logits are summed over time: the same argmax as a mean, as long as
            # no spiking layer comes after it.
            if not _only_readout_after(model, node):
                issues.append(FitIssue(node, "averaging spikes over time before a spiking "
                                             "layer gives non-binary values; put the mean "
                                             "read-out right before or after the last linear"))
            last_spiking = None
            continue
        if readout_seen:
            issues.append(FitIssue(node, "the integer network ends with the linear read-out; "
                                         f"this {name} comes after it"))
            continue
        if isinstance(module, nn.AvgPool2d):
            issues.append(FitIssue(node, "average pooling gives non-binary values between "
                                         "layers; the integer network only passes spikes: use "
                                         "max pooling (wb_core.max_pool)"))
            last_spiking = None
            continue
        if isinstance(module, nn.MaxPool2d):
            size = _pool_size(module)
            if last_spiking is None:
                issues.append(FitIssue(node, "max pooling needs spikes at its input (the integer "
                                             "network pools spikes with an OR); put it right "
                                             "after a spiking layer"))
            elif size is None:
                issues.append(FitIssue(node, "only max pooling with stride = window, no padding, "
                                             "no dilation and no ceil mode is supported"))
            else:
                last_spiking.pool = last_spiking.pool * size if last_spiking.pool else size
            continue
        if isinstance(module, nn.Linear) and not _is_neuron(module):
            plan.steps.append(_Step(node, module, in_shape=(int(np.prod(in_shape)),),
                                    out_shape=(module.out_features,)))
            readout_seen = True
            last_spiking = None
            continue
        if isinstance(module, nn.Sequential):
            parts = _block_parts(node, module, issues)
            if parts is None:
                last_spiking = None
                continue
            synapse, bn, neuron = parts
            if isinstance(synapse, nn.Linear):
                in_shape = (int(np.prod(in_shape)),)
            step = _Step(node, synapse, bn, neuron, in_shape=in_shape, out_shape=out_shape)
            plan.steps.append(step)
            last_spiking = step
            continue
        issues.append(FitIssue(node, f"{name} has no integer form; the integer network knows "
                                     "spiking linear/conv blocks, max pooling, flatten, dropout "
                                     "and a final linear read-out"))
        last_spiking = None
    if not plan.issues:
        if not plan.steps or plan.steps[-1].neuron is not None:
            where = order[-1] if order else ""
            issues.append(FitIssue(where, "the network must end with a linear read-out "
                                          "(wb_core.linear) without a neuron"))
        elif len([s for s in plan.steps if s.neuron is None]) > 1:
            issues.append(FitIssue(plan.steps[0].node, "only one linear read-out is supported"))
    return plan


def _only_readout_after(model: CompiledNetwork, node: str) -> bool:
    """True when no spiking block follows ``node`` (so a mean over time is a no-op for argmax)."""
    later = model.order[model.order.index(node) + 1:]
    return not any(isinstance(model.layers[n], nn.Sequential) for n in later)


# -- public API -------------------------------------------------------------------------------
def check(model: CompiledNetwork) -> list[FitIssue]:
    """What in ``model`` has no integer form, each issue naming its node (empty: it converts)."""
    return list(_plan(model).issues)


#: a streamed split is read this far to find its input range (an in-memory one entirely)
STREAM_SCAN = 4096


def stored_inputs(split: Any) -> np.ndarray:
    """The inputs of ``split`` as stored: all of an in-memory ``ArraySplit``, the first
    :data:`STREAM_SCAN` of a streamed split (reading all of one could take hours)."""
    x = getattr(split, "x", None)
    return np.asarray(x) if x is not None else split.stored(limit=STREAM_SCAN)


def encoded_spikes(encode: Any, x: np.ndarray) -> np.ndarray | None:
    """The encoder's output for ``x[B, ...]`` as int64 ``[B, T, ...]`` when it is spikes
    (every value -1, 0 or 1: made on the host, fed to the integer network step by step),
    None when it is not (direct encoding repeats real values: the network takes them once)."""
    with torch.no_grad():
        out = encode(torch.from_numpy(np.ascontiguousarray(x)))
    values = out.detach().cpu().numpy()
    if values.size == 0 or not np.isin(values, (-1.0, 0.0, 1.0)).all():
        return None
    return np.moveaxis(values, 0, 1).astype(np.int64)


def input_scale_for(split: Any, input_bits: int = 8) -> float:
    """The real value of one input step: ``x = input_scale * x_int``.

    Inputs already on a grid (stored integers times the split's ``scale``, like the digits'
    k/16) use that grid exactly, so quantising the input loses nothing; otherwise the largest
    training input maps to ``2**input_bits - 1``."""
    top = 2 ** int(input_bits) - 1
    stored = stored_inputs(split)
    scale = float(getattr(split, "scale", 1.0))
    offset = float(getattr(split, "offset", 0.0))
    if stored.size == 0:
        return 1.0
    if offset == 0.0 and scale > 0.0:
        low, high = float(stored.min()), float(stored.max())
        integral = np.issubdtype(stored.dtype, np.integer) or bool(
            np.all(stored == np.round(stored)))
        if integral and low >= 0.0 and high <= top:
            return scale
    high = float(stored.max()) * scale + offset if scale >= 0 else float(stored.min()) * scale \
        + offset
    return high / top if high > 0 else 1.0


def to_integer(model: CompiledNetwork, *, time_steps: int, input_scale: float,
               input_bits: int = 8, weight_bits: int = 8, frac_bits: int = 8,
               name: str = "", input_kind: str = "static") -> IntegerNetwork:
    """Convert a trained chain of spiking layers and a linear read-out to integers.

    Weights that carry a ``weight_quant`` record (from a compression) are used as they are;
    the others are quantised per output channel, symmetric, to ``weight_bits``. With
    ``input_kind="spikes"`` the network takes the encoder's spikes (made on the host) instead
    of a static integer input, and ``input_scale`` is 1. Raises :class:`DeployError` naming
    the node for anything :func:`check` reports."""
    if time_steps < 1:
        raise DeployError(f"time_steps must be at least 1, got {time_steps}", where="time_steps")
    if not 2 <= weight_bits <= 32:
        raise DeployError(f"weight_bits must be in 2..32, got {weight_bits}",
                          where="weight_bits")
    if not 0 <= frac_bits <= 30:
        raise DeployError(f"frac_bits must be in 0..30, got {frac_bits}", where="frac_bits")
    if input_kind not in ("static", "spikes"):
        raise DeployError(f"unknown input kind {input_kind!r}; expected 'static' or 'spikes'",
                          where="input_kind")
    if not input_scale > 0 or not math.isfinite(input_scale):
        raise DeployError(f"input_scale must be a positive number, got {input_scale}",
                          where="input_scale")
    plan = _plan(model)
    errors = [i for i in plan.issues if i.severity == "error"]
    if errors:
        first = errors[0]
        raise DeployError(f"cannot convert to integers: {first.message}",
                          where=f"node {first.node!r}" if first.node else "network")
    notes: list[str] = []
    layers = []
    with torch.no_grad():
        spikes_in = input_kind == "spikes"
        for index, step in enumerate(plan.steps):
            in_scale = input_scale if index == 0 and not spikes_in else 1.0
            if step.neuron is None:
                layers.append(_readout(step, in_scale, weight_bits, frac_bits, notes))
            else:
                layers.append(_spiking(step, in_scale, weight_bits, frac_bits, notes))
    _shapes_agree(layers)
    if any(layer.neuron is not None and layer.neuron.leak_shift for layer in layers):
        notes.append(f"the leak V - (V >> k) floors the part it removes: the potential keeps up "
                     f"to one unit (2^-{frac_bits} of a channel's input step) per step more than "
                     "the float a * V")
    if input_kind == "spikes":
        notes.append("the input is the encoder's spike train, made on the host at each step")
        return IntegerNetwork(layers, int(time_steps), 1.0, 2, name, notes, "spikes")
    return IntegerNetwork(layers, int(time_steps), float(input_scale), int(input_bits), name,
                          notes)


# -- weights and folding ----------------------------------------------------------------------
def int_weight(module: nn.Module, bits: int, node: str, notes: list[str], *,
                per_tensor: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(q int64, s float64 [C_out])`` with ``weight = s[c] * q[c]``."""
    quant = getattr(module, "weight_quant", None)
    if isinstance(quant, QuantizedTensor):
        q = quant.ints.numpy().astype(np.int64)
        s = quant.scale.double().numpy()
        if not per_tensor or np.all(s == s[0]):
            notes.append(f"{node}: uses its {quant.bits}-bit quantised weights as they are")
            return q, s
        w = quant.dequantize().double().numpy()
        bits = max(bits, quant.bits)
        notes.append(f"{node}: per-channel quantised read-out requantised to one {bits}-bit "
                     "scale for all classes")
    else:
        w = module.weight.detach().double().numpy()
        notes.append(f"{node}: weights quantised to {bits} bits (symmetric, "
                     f"{'one scale' if per_tensor else 'one scale per output channel'})")
    top = 2 ** (bits - 1) - 1
    flat = np.abs(w.reshape(w.shape[0], -1))
    peak = np.full(w.shape[0], flat.max()) if per_tensor else flat.max(axis=1)
    s = np.where(peak > 0, peak / top, 0.0)
    shaped = s.reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.where(shaped > 0, np.rint(w / np.where(shaped > 0, shaped, 1.0)), 0.0)
    return np.clip(q, -top, top).astype(np.int64), s


def signed_bits(q: np.ndarray) -> int:
    """The smallest signed two's-complement width that holds every entry of ``q``."""
    low, high = (int(q.min()), int(q.max())) if q.size else (0, 0)
    bits = 1
    while not (-(2 ** (bits - 1)) <= low and high <= 2 ** (bits - 1) - 1):
        bits += 1
    return bits


def _membrane_code(d: Any, unit: np.ndarray, frac_bits: int, node: str,
                   notes: list[str]) -> tuple[int | None, int]:
    """``(bits, shift)`` of a neuron that stores its potential as a code of
    ``d.membrane_bits`` bits on a grid of ``d.membrane_scale`` (QT-SNN), ``(None, 0)`` for a
    full-precision membrane. The grid in integer units is ``membrane_scale / unit * 2**f``; the
    integer network needs a power of two there (``requantize`` shifts), exact when the scales
    are powers of two of each other, else the nearest one (said in the notes)."""
    bits = getattr(d, "membrane_bits", None)
    if bits is None:
        return None, 0
    grid = float(d.membrane_scale) * 2.0 ** frac_bits / unit
    exponent = np.log2(grid)
    shift = int(np.rint(np.median(exponent)))
    if not np.allclose(exponent, shift, atol=1e-9):
        notes.append(f"{node}: the membrane grid is {np.median(grid):.4g} integer units, not a "
                     f"power of two; stored on a grid of 2^{shift} (the integer network stays "
                     "exact in itself; train with power-of-two scales for exact agreement with "
                     "the float model)")
    if shift < 0:
        notes.append(f"{node}: the membrane grid is finer than one integer unit; stored on a "
                     "grid of 1 unit (raise frac_bits)")
        shift = 0
    return int(bits), shift


def _spiking(step: _Step, in_scale: float, weight_bits: int, frac_bits: int,
             notes: list[str]) -> IntLayer:
    d = step.neuron.dynamics
    coded = getattr(d, "membrane_bits", None) is not None
    # a membrane code needs one grid for the whole layer: one weight scale for every channel
    q, s = int_weight(step.synapse, weight_bits, step.node, notes, per_tensor=coded)
    channels = q.shape[0]
    bias = (step.synapse.bias.detach().double().numpy() if step.synapse.bias is not None
            else np.zeros(channels))
    gain, shift_bn = np.ones(channels), np.zeros(channels)
    if step.bn is not None:  # y = g * (x - mu) + beta with g = gamma / sqrt(var + eps)
        bn = step.bn
        gamma = bn.weight.detach().double().numpy() if bn.weight is not None else np.ones(channels)
        beta = bn.bias.detach().double().numpy() if bn.bias is not None else np.zeros(channels)
        var = bn.running_var.detach().double().numpy()
        mean = bn.running_mean.detach().double().numpy()
        gain = gamma / np.sqrt(var + bn.eps)
        shift_bn = beta - gain * mean
    b_n = float(d.b)
    alpha = b_n * gain * s * in_scale  # X' = alpha * (q . x_int) + beta'
    beta_f = b_n * (gain * bias + shift_bn)
    unit = np.abs(alpha)
    dead = unit == 0
    if dead.any():
        # No input reaches these channels (zero weights or gamma): any unit keeps their
        # constant drive; the layer's typical one keeps the threshold in a familiar range.
        fallback = float(np.median(unit[~dead])) if (~dead).any() else float(d.v_th)
        unit = np.where(dead, fallback, unit)
        q = np.where(dead.reshape((-1,) + (1,) * (q.ndim - 1)), 0, q)
        notes.append(f"{step.node}: {int(dead.sum())} channel(s) receive no input (zero scale); "
                     "they keep only their bias")
    sign = np.where(alpha < 0, -1, 1).astype(np.int64)
    if (sign < 0).any():
        notes.append(f"{step.node}: {int((sign < 0).sum())} channel(s) with a negative scale "
                     "(negative batch-norm gamma) have their weights and bias negated")
    q = q * sign.reshape((-1,) + (1,) * (q.ndim - 1))
    unit_scale = 2.0 ** frac_bits / unit
    bias_int = np.rint(beta_f * unit_scale).astype(np.int64)
    threshold = np.rint(float(d.v_th) * unit_scale).astype(np.int64)
    strict = not bool(d.at_zero)
    if strict:  # H > theta  <=>  H >= theta + 1 on integers
        threshold = threshold + 1
        notes.append(f"{step.node}: fires at H > theta, compared as H >= theta + 1")
    if (threshold < 1).any():
        notes.append(f"{step.node}: thresholds below one unit raised to 1; raise frac_bits")
        threshold = np.maximum(threshold, 1)
    reset = "hard" if d.hard_reset else "soft"
    if strict and reset == "soft":
        notes.append(f"{step.node}: soft reset subtracts theta + 1 units (one unit of "
                     f"2^-{frac_bits} more than the float neuron)")
    leak = _leak_shift(float(d.a))
    membrane_bits, membrane_shift = _membrane_code(d, unit, frac_bits, step.node, notes)
    kind = "linear" if isinstance(step.synapse, nn.Linear) else "conv"
    stride = padding = 1
    if kind == "conv":
        stride, padding = int(step.synapse.stride[0]), int(step.synapse.padding[0])
    else:
        padding = 0
    return IntLayer(step.node, kind, q, signed_bits(q), bias_int, int(frac_bits),
                    tuple(int(v) for v in step.in_shape), tuple(int(v) for v in step.out_shape),
                    IntNeuron(threshold, leak, reset, bool(getattr(d, "ternary", False)),
                              membrane_bits, membrane_shift),
                    stride, padding, int(step.pool))


def _readout(step: _Step, in_scale: float, weight_bits: int, frac_bits: int,
             notes: list[str]) -> IntLayer:
    q, s = int_weight(step.synapse, weight_bits, step.node, notes, per_tensor=True)
    scale = float(s[0]) * in_scale if s.size else in_scale
    bias = (step.synapse.bias.detach().double().numpy() if step.synapse.bias is not None
            else np.zeros(q.shape[0]))
    if scale == 0.0:  # an all-zero read-out: only the bias decides
        scale = 1.0
    bias_int = np.rint(bias / scale * 2.0 ** frac_bits).astype(np.int64)
    # an integrating read-out divides its running sum by T: a common scale, the argmax keeps
    integrate = bool(getattr(step.synapse, "integrate", False))
    return IntLayer(step.node, "linear", q, signed_bits(q), bias_int, int(frac_bits),
                    tuple(int(v) for v in step.in_shape), (int(q.shape[0]),), None,
                    integrate=integrate)


def _shapes_agree(layers: list[IntLayer]) -> None:
    for before, after in zip(layers, layers[1:]):
        produced = before.pooled_shape
        if tuple(after.in_shape) not in (tuple(produced), (int(np.prod(produced)),)):
            raise DeployError(f"receives {list(after.in_shape)} but the layer before gives "
                              f"{list(produced)} after pooling", where=f"node {after.name!r}")
