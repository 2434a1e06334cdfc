"""Our neuron dynamics <-> NIR's LIF and IF nodes.

Every wb_core neuron steps as ``H = a·V + b·X + c`` and resets hard to ``V_reset`` (see
``wb_core.neurons``). NIR describes a LIF in continuous time, ``tau·dv/dt = (v_leak - v) + R·I``;
a NIR reader steps it by forward Euler with a step ``dt``::

    v[t] = (1 - dt/tau)·v[t-1] + (R·dt/tau)·I[t] + (dt/tau)·v_leak

so ``a = 1 - dt/tau``, ``b = R·dt/tau``, ``c = (dt/tau)·v_leak``. snnTorch (``import_nir`` /
``export_nir``) fixes ``dt = 1e-4``, which is our default. NIR's IF (``dv/dt = R·I``) is read as
``v[t] = v[t-1] + R·I[t]`` by snnTorch and Sinabs (they write ``r = 1`` for a unit-gain
integrator), so ``r`` is the per-step gain and ``dt`` does not enter.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: The Euler step NIR readers assume; snnTorch's importer and exporter hard-code 1e-4.
DEFAULT_DT = 1e-4

#: relative tolerance when deciding that two parameter sets describe the same neuron
_RTOL = 1e-6


class Unsupported(ValueError):
    """A neuron or NIR node has no exact counterpart; the message says why."""


def check_dynamics(module: Any) -> Any:
    """Return the ``_Dynamics`` of a wb_core neuron module, or raise :class:`Unsupported`."""
    from wb_core.neurons import SpikingNeuron

    if getattr(module, "ternary", False):
        raise Unsupported(
            f"its neuron ({type(module).__name__}) fires ternary spikes (-1, 0, +1); NIR's LIF "
            "and IF fire 0 or 1 only")
    if type(module) is not SpikingNeuron:
        raise Unsupported(
            f"its neuron ({type(module).__name__}) is not one of wb_core's LIF/IF neurons; NIR "
            "has LIF and IF only, so quantised-membrane and custom neurons cannot be written")
    d = module.dynamics
    if not d.hard_reset:
        raise Unsupported(
            "soft reset (subtract the threshold) has no NIR equivalent: NIR's LIF and IF reset "
            "to v_reset after a spike; retrain with reset = hard to export")
    if not 0.0 <= d.a <= 1.0:
        raise Unsupported(f"leak factor a = {d.a:g} is outside [0, 1]")
    if d.a == 1.0 and d.c != 0.0:
        raise Unsupported("an integrator with a constant drive has no NIR equivalent")
    if d.b <= 0.0:
        raise Unsupported(f"input gain b = {d.b:g} must be positive")
    return d


def nir_threshold(d: Any, quantised: bool = False) -> float:
    """The ``v_threshold`` that makes a NIR reader, which fires at ``v > v_threshold``, fire
    when ``d`` does.

    LIF B fires at ``H > theta`` already. LIF A and IF fire at ``H >= V_th``; behind quantised
    weights their potentials often land exactly on the threshold, so for them the value is
    one float32 step lower: no float32 lies between the two, hence ``H > step_below(V_th)``
    holds exactly when ``H >= V_th`` for every float32 potential (docs/nir.md, "Ties behind
    quantised weights"). Float weights keep ``V_th``: a tie is then a rounding accident."""
    if not (quantised and d.at_zero):
        return float(d.v_th)
    return float(np.nextafter(np.float32(d.v_th), np.float32(-np.inf)))


def to_nir(d: Any, shape: tuple[int, ...], dt: float, metadata: dict[str, Any],
           quantised: bool = False):
    """The NIR node (``LIF``, or ``IF`` when there is no leak) that steps like ``d``;
    ``quantised``: its input weights are quantised (see :func:`nir_threshold`)."""
    import nir

    def full(value: float) -> np.ndarray:
        return np.full(shape, float(value), dtype=np.float64)

    v_th = nir_threshold(d, quantised)
    if d.a == 1.0:
        return nir.IF(r=full(d.b), v_threshold=full(v_th), v_reset=full(d.v_reset),
                      metadata=metadata)
    leak = 1.0 - d.a  # = dt / tau
    # Parameterisation A has b == 1 - a and c == b·V_reset; B has b == 1 and c == 0. Writing
    # those cases from the ratios they stand for keeps r and v_leak free of rounding noise.
    if math.isclose(d.b, leak, rel_tol=1e-12):
        r, v_leak = 1.0, d.v_reset
    elif d.b == 1.0 and d.c == 0.0:
        r, v_leak = 1.0 / leak, 0.0
    else:
        r, v_leak = d.b / leak, d.c / leak
    return nir.LIF(tau=full(dt / leak), r=full(r), v_leak=full(v_leak),
                   v_threshold=full(v_th), v_reset=full(d.v_reset), metadata=metadata)


def _scalar(node: Any, name: str, where: str) -> float:
    """One value for the whole layer: our neurons share their parameters."""
    values = np.asarray(getattr(node, name), dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise Unsupported(f"{where}: {name} is empty")
    first = float(values[0])
    if not np.all(np.isfinite(values)):
        raise Unsupported(f"{where}: {name} holds NaN or infinite values")
    if not np.allclose(values, first, rtol=_RTOL, atol=0.0):
        raise Unsupported(f"{where}: {name} differs between neurons "
                          f"({values.min():g} .. {values.max():g}); workbench neurons share "
                          "one value per layer")
    return first


def euler(node: Any, dt: float, where: str = "neuron") -> dict[str, float]:
    """The discrete ``a, b, c, v_th, v_reset`` a NIR ``LIF``/``IF`` node steps with."""
    import nir

    v_th = _scalar(node, "v_threshold", where)
    v_reset = _scalar(node, "v_reset", where)
    if isinstance(node, nir.IF):
        return {"a": 1.0, "b": _scalar(node, "r", where), "c": 0.0, "v_th": v_th,
                "v_reset": v_reset}
    tau = _scalar(node, "tau", where)
    if tau <= 0:
        raise Unsupported(f"{where}: tau = {tau:g} must be positive")
    leak = dt / tau
    return {"a": 1.0 - leak, "b": _scalar(node, "r", where) * leak,
            "c": leak * _scalar(node, "v_leak", where), "v_th": v_th, "v_reset": v_reset}


def same_dynamics(d: Any, node: Any, dt: float) -> bool:
    """True when the wb_core neuron dynamics ``d`` step exactly like the NIR node."""
    if not d.hard_reset:
        return False
    e = euler(node, dt)
    return all(math.isclose(getattr(d, k), e[k], rel_tol=_RTOL, abs_tol=1e-12)
               for k in ("a", "b", "c", "v_th", "v_reset"))


def from_nir(node: Any, dt: float, where: str) -> tuple[str, dict[str, Any]]:
    """A wb_core neuron choice ``(spec id, params)`` stepping like the NIR node.

    The membrane is rescaled where the input gain is not the one our parameterisation has
    (``V' = V·k``, so the threshold and the reset scale too): the spikes stay the same.
    """
    import nir

    e = euler(node, dt, where)
    a, b, c, v_th, v_reset = e["a"], e["b"], e["c"], e["v_th"], e["v_reset"]
    if b <= 0:
        raise Unsupported(f"{where}: the input gain (r) must be positive, got {b:g}")
    if isinstance(node, nir.IF):  # v += b·I: scale the membrane by 1/b
        params = {"v_th": v_th / b, "v_reset": v_reset / b, "reset": "hard"}
        return "wb_core.if", _positive_threshold(params, "v_th", where)
    if not 0.0 <= a < 1.0:
        raise Unsupported(f"{where}: tau = dt/(1 - a) must be at least the step dt = {dt:g} "
                          f"(a = {a:g}); pass the file's dt if it was written with another")
    if c == 0.0 and v_reset == 0.0:
        # u = a·u + b·I with reset to 0: parameterisation B with the membrane scaled by 1/b.
        params = {"lam": a, "theta": v_th / b, "reset": "hard"}
        return "wb_core.lif_b", _positive_threshold(params, "theta", where)
    leak = 1.0 - a
    if math.isclose(c, leak * v_reset, rel_tol=_RTOL, abs_tol=1e-12):
        # Parameterisation A leaks towards V_reset with gain 1/tau = 1 - a: scale by (1 - a)/b.
        k = leak / b
        params = {"tau": 1.0 / leak, "v_th": v_th * k, "v_reset": v_reset * k, "reset": "hard"}
        return "wb_core.lif", _positive_threshold(params, "v_th", where)
    raise Unsupported(f"{where}: v_leak differs from both 0 and v_reset; workbench LIF neurons "
                      "leak towards their reset potential")


def _positive_threshold(params: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    if params[key] <= 0:
        raise Unsupported(f"{where}: the threshold must be positive, got {params[key]:g}")
    return {k: _tidy(v) if isinstance(v, float) else v for k, v in params.items()}


def _tidy(value: float) -> float:
    """The shortest decimal with the same float32 value.

    Our neurons compute in float32, so this changes no spike; it turns the float32 noise of
    files written from float32 models (snnTorch stores tau = dt / (1 - beta) in float32, so
    beta = 0.5 reads back as 0.4999999874) back into the value the author typed."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
