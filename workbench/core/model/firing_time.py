"""What a time-to-first-spike layer computes, declared for backends that rebuild it.

A layer that passes firing times (``emits_spike_times``) may also say which neuron it is, so a
deployment target can run the same arithmetic without importing the plugin that made it: the
layer is a ``torch.nn.Linear`` or ``torch.nn.Conv2d`` (no bias) whose ``weight`` holds the
synaptic weights ``w``, and its attribute ``firing_time_neuron`` is a :class:`FiringTimeNeuron`.
Each neuron is non-leaky, fires at most once, at the first time its potential

    V(t) = sum_i w_i * K(t - t_i)

reaches ``theta``, and is silent when that comes after ``horizon`` (docs/plugins.md).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the rectified linear post-synaptic potential, ``K(x) = max(0, x)``
RELPSP = "relpsp"


@dataclass(frozen=True)
class FiringTimeNeuron:
    kernel: str  # the PSP kernel K: RELPSP, or a name its plugin documents
    theta: float  # firing threshold
    horizon: float  # the latest firing time; later is silent (same time unit as the inputs)


def firing_time_neuron(module: object) -> FiringTimeNeuron | None:
    """The module's declared neuron, or None when it declares none."""
    neuron = getattr(module, "firing_time_neuron", None)
    return neuron if isinstance(neuron, FiringTimeNeuron) else None
