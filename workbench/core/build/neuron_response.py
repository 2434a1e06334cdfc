"""What one neuron does on its own: its response to a step and a ramp current, and its f–I curve.

The neuron explorer (issue #12) shows these for any neuron contribution, so the numbers come from
the real module its :class:`NeuronSpec` builds from the parameters, never from a re-written
equation: the f–I curve feeds a batch of constant currents ``[T, N]`` (one per point) through the
module's multi-step ``forward`` and counts spikes; the step and ramp run as ``[T, 1]`` each. The
membrane is read with the probes (:class:`~workbench.core.build.probes.SpikeProbe`), which turn on
the neuron's ``record_membrane``: the charged potential before reset, as the membrane view shows.

Choices, documented in docs/user-guide.md ("Neuron explorer"):

- **Current range**: 0 to ``RANGE_FACTOR`` × the threshold, in the neuron's input units (the
  input adds to the membrane, so the threshold's units). For every first-party neuron the onset
  (the smallest constant current that ever fires) lies at or below the threshold: LIF (A) at
  V_th, LIF (B) and the quantised LIF at θ(1 − λ), IF at about V_th / T.
- **Rate**: spikes per time step (``|s|`` is counted, so a ternary −1 is a spike, as in the
  energy ledger), or Hz when the neuron has a ``dt`` parameter in s, ms or µs.
- **Step and ramp**: the step switches on at 10 % of ``TRACE_STEPS`` to the smallest current
  that fires at half the top rate of the f–I curve; the ramp climbs from 0 to the top of the
  current range.
- A neuron whose state is normalised over the whole tensor (Q-SNN's per-tensor membrane scale)
  sees the f–I batch as one layer, as it would in a network.

Torch is imported when a response is computed, not with this module, so the GUI may import it
while the window is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.specs import NeuronSpec

#: the f–I curve spans 0 to this many thresholds (see the module docstring)
RANGE_FACTOR = 3.0
#: f–I points; 41 puts no point exactly on the threshold, where a LIF's approach to its
#: steady state decides by float rounding whether it ever fires
FI_POINTS = 41
#: time steps each constant current is applied for
FI_STEPS = 200
#: time steps of the step and the ramp response
TRACE_STEPS = 100
#: the step current switches on at this fraction of the trace, so the rest is seen first
STEP_ONSET = 0.1
#: parameter names that hold a threshold, for a module without a ``threshold`` attribute
_THRESHOLD_PARAMS = ("v_th", "theta", "threshold", "v_threshold", "th")
#: seconds per unit of a ``dt`` parameter
_DT_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}


class NeuronDriveError(WorkbenchError):
    """The neuron cannot be run on its own (it needs a shape, or raised); one line."""


@dataclass(frozen=True)
class Trace:
    """One neuron driven by ``current`` (``[T]``): its spikes and, when the module exposes it,
    its membrane (the charged potential before reset)."""

    current: np.ndarray
    spikes: np.ndarray
    membrane: np.ndarray | None

    @property
    def spike_steps(self) -> np.ndarray:
        """Time steps with a spike (either sign)."""
        return np.flatnonzero(self.spikes != 0)


@dataclass(frozen=True)
class NeuronResponse:
    """Everything the explorer draws for one neuron and one set of parameters."""

    spec_id: str
    threshold: float
    #: the unit of the threshold parameter ("" when it has none): the input's unit too
    input_unit: str
    step: Trace
    ramp: Trace
    currents: np.ndarray  # [FI_POINTS] constant inputs
    rates: np.ndarray  # [FI_POINTS] in ``rate_unit``
    rate_unit: str  # "spikes/step" or "Hz"
    #: what the threshold was taken from when the module does not say ("" when it did)
    note: str = ""

    @property
    def onset_current(self) -> float | None:
        """The first current of the f–I curve that fires; None when none does."""
        firing = np.flatnonzero(self.rates > 0)
        return float(self.currents[firing[0]]) if firing.size else None


def threshold_of(module: Any, spec: NeuronSpec, params: Mapping[str, Any]) -> tuple[float, str]:
    """The firing threshold and, when guessed, a note saying how."""
    from workbench.core.build.probes import fixed_threshold  # torch: only when computing

    value = fixed_threshold(module)
    if value is not None and value > 0:
        return value, ""
    for name in _THRESHOLD_PARAMS:
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value), ""
    return 1.0, "the neuron names no threshold; the current range assumes 1"


def _input_unit(spec: NeuronSpec) -> str:
    for name in _THRESHOLD_PARAMS:
        p = spec.param(name)
        if p is not None:
            return p.unit
    return ""


def _rate_scale(spec: NeuronSpec, params: Mapping[str, Any]) -> tuple[float, str]:
    """Per-step rates times this give the unit returned: Hz with a ``dt`` in time units."""
    p = spec.param("dt")
    dt = params.get("dt")
    if p is not None and p.unit in _DT_UNITS and isinstance(dt, (int, float)) and dt > 0:
        return 1.0 / (float(dt) * _DT_UNITS[p.unit]), "Hz"
    return 1.0, "spikes/step"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"


def _drive(module: Any, currents: Any, spec: NeuronSpec) -> tuple[Any, Any]:
    """Run ``currents`` ``[T, N]`` through the module; returns spikes and the membrane (or None),
    both ``[T, N]`` float tensors on the CPU."""
    import torch

    from workbench.core.build.probes import SpikeProbe

    try:
        with torch.no_grad(), SpikeProbe(module, membranes=True,
                                         samples=currents.shape[1]) as probe:
            out = module(currents)
    except Exception as exc:  # a plugin's module may raise anything: say so in one line
        raise NeuronDriveError(f"cannot be run on its own with a [T, N] input ({_one_line(exc)})",
                               where=spec.display_name) from exc
    spikes = out[0] if isinstance(out, tuple) else out
    if not isinstance(spikes, torch.Tensor) or tuple(spikes.shape) != tuple(currents.shape):
        shape = list(spikes.shape) if isinstance(spikes, torch.Tensor) else type(spikes).__name__
        raise NeuronDriveError(f"returned {shape} for a {list(currents.shape)} input; a neuron "
                               "keeps the input's shape", where=spec.display_name)
    record = probe.records.get("")
    membrane = None
    if record is not None and record.membrane is not None \
            and tuple(record.membrane.shape) == tuple(currents.shape):
        membrane = record.membrane.float()
    return spikes.detach().float().cpu(), membrane


def _trace(module: Any, current: np.ndarray, spec: NeuronSpec) -> Trace:
    import torch

    x = torch.as_tensor(current, dtype=torch.float32).reshape(-1, 1)
    spikes, membrane = _drive(module, x, spec)
    return Trace(current=current, spikes=spikes[:, 0].numpy(),
                 membrane=None if membrane is None else membrane[:, 0].numpy())


def _step_amplitude(currents: np.ndarray, rates: np.ndarray) -> float:
    """The step's height: the smallest current firing at half the top rate of the range, so
    the trace shows the membrane charging between spikes rather than a spike every step (the
    top of the range when nothing fires)."""
    if not rates.size or rates.max() <= 0:
        return float(currents[-1])
    return float(currents[np.flatnonzero(rates >= rates.max() / 2)[0]])


def neuron_response(spec: NeuronSpec, params: Mapping[str, Any] | None = None, *,
                    points: int = FI_POINTS, steps: int = FI_STEPS,
                    trace_steps: int = TRACE_STEPS) -> NeuronResponse:
    """Build ``spec``'s module from ``params`` (over the defaults) and measure it.

    Raises :class:`~workbench.core.model.errors.ProjectError` for a bad parameter and
    :class:`NeuronDriveError` when the module cannot be built or run on its own.
    """
    import torch

    checked = spec.check_params(dict(params or {}), where=spec.id)
    # A neuron with learnable parameters draws from torch's generator when built: the app's
    # own sequence (the next training's initial weights) must not depend on what was explored.
    with torch.random.fork_rng(devices=[]):
        try:
            module = spec.create(**checked)
        except WorkbenchError:
            raise
        except Exception as exc:
            raise NeuronDriveError(f"cannot be built ({_one_line(exc)})",
                                   where=spec.display_name) from exc
        if hasattr(module, "eval"):
            module.eval()
        threshold, note = threshold_of(module, spec, checked)
        top = RANGE_FACTOR * threshold
        currents = np.linspace(0.0, top, points)
        batch = torch.as_tensor(currents, dtype=torch.float32).expand(steps, points).contiguous()
        spikes, _membrane = _drive(module, batch, spec)
        scale, unit = _rate_scale(spec, checked)
        rates = spikes.abs().mean(dim=0).double().numpy() * scale

        amplitude = _step_amplitude(currents, rates)
        step_current = np.zeros(trace_steps)
        step_current[round(STEP_ONSET * trace_steps):] = amplitude
        ramp_current = np.linspace(0.0, top, trace_steps)
        step = _trace(module, step_current, spec)
        ramp = _trace(module, ramp_current, spec)
    return NeuronResponse(spec_id=spec.id, threshold=threshold, input_unit=_input_unit(spec),
                          step=step, ramp=ramp, currents=currents, rates=rates, rate_unit=unit,
                          note=note)
