"""The spiking core's cycles per pass of one layer: the analytic model that the cycle count of
:mod:`wb_fpga.cycles` sums over an event trace and that :mod:`wb_fpga.plan` takes the bound of
to size the cycle counter. The Amaranth simulation counts the same cycles
(``tests/plugins/test_fpga.py`` checks they agree).

A linear pass of layer ``l`` at step ``t`` with ``n`` input events, ``G`` groups of ``P``
neurons (the last one ``P_last``)::

    1                                   LAYER_START
    n + F                               ACC of group 0 (F = ACC_FLUSH memory-read cycles)
    (G - 1) * max(n + F + 1, P + 1)     each further group: its ACC + HANDOFF, or waiting for
                                        the serial neuron unit to finish the previous group
    1 + P_last + 3                      last HANDOFF, then the neuron unit issues P_last
                                        neurons (one per cycle) and its two stages empty

i.e. ``pass = (n + F + 1) + (G - 1) * max(n + F + 1, P + 1) + P_last + 4``. Layer 0 at
``t > 0`` with the input cache: ``C_out + 5`` (no accumulation, one neuron per cycle). A
spike-train input has no cache: layer 0's pass at step ``t`` is the formula with ``n`` = that
step's input spikes. A ternary spike (either sign) is one event like a binary one.

A conv pass (:mod:`wb_fpga.conv`)::

    1                                   LAYER_START
    sum over events max(1, ny*nx*G)     SCATTER: one cycle per valid kernel tap and group
    1                                   DRAIN: the last tap's membrane read
    windows * G * (win**2 + 1)          SWEEP: win**2 reads per window and group, + 1 for the
                                        last read and the OR of the window
    sum over windows, groups max(0, m - 1)   EMIT: the further spiking channels of each OR
"""

from __future__ import annotations

import numpy as np

#: Cycles an accumulation group spends after its last event issue: the event memory read and the
#: weight memory read (both synchronous, one cycle each) before the last add.
ACC_FLUSH = 2
#: cycles of a cached layer-0 pass beyond its C_out neuron issues: LAYER_START, CACHED, and the
#: drain of the neuron unit's pipeline seen by WAIT_DRAIN.
CACHED_PASS_EXTRA = 5
#: cycles of a conv pass besides the scatter and the sweep: LAYER_START and the scatter's drain.
CONV_PASS_EXTRA = 2


def pass_cycles(n: np.ndarray, groups: int, parallelism: int, last_group: int) -> np.ndarray:
    """Cycles of one linear accumulate-and-fire pass with ``n`` input events (vectorised)."""
    n = np.asarray(n, dtype=np.int64)
    group = n + ACC_FLUSH + 1
    return group + (groups - 1) * np.maximum(group, parallelism + 1) + last_group + 4


def conv_pass_cycles(geom, active: np.ndarray, emitted: np.ndarray) -> np.ndarray:
    """Cycles of one conv pass per sample: input activity ``active[B, C_in, H_in, W_in]``,
    the events it emits ``emitted[B, C_out, Hp, Wp]`` (the next layer's input)."""
    return (CONV_PASS_EXTRA + geom.scatter_cycles(active) + geom.sweep_base_cycles
            + geom.emit_cycles(emitted))


def cycle_bound(plan) -> int:
    """Cycles of the densest possible sample (every input an event, every output a spike),
    for the width of the cycle counter."""
    total = 0
    for t in range(plan.time_steps):
        for lp in plan.layers:
            if lp.conv is not None:
                total += CONV_PASS_EXTRA + lp.conv.max_cycles()
            elif plan.cache_input and lp.index == 0 and t > 0:
                total += lp.c_out + CACHED_PASS_EXTRA
            else:
                total += int(pass_cycles(np.array([lp.c_in]), lp.groups, plan.parallelism,
                                         lp.last_group)[0])
    return total + 1
