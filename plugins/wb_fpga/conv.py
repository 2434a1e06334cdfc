"""Geometry of a conv layer in the core: which kernel taps an input event reaches, how the
membranes are addressed, how the sweep walks the pooling windows, and what each costs in cycles.

Pure numpy, shared by the plan, the cycle model and the HDL, so the three cannot disagree.

An input event at ``(c, y, x)`` reaches output row ``oy`` through kernel row ``dy`` when
``y + padding - dy == oy * stride`` with ``0 <= oy < H_out`` (the same test as
``wb_sim.simulate._conv_events``). The valid ``dy`` of one ``y`` are ``dy_lo, dy_lo + stride,
...`` (``n`` of them) and reach ``oy0, oy0 - 1, ...``: :meth:`ConvGeometry.axis_taps` tabulates
``(dy_lo, n, oy0)`` per input coordinate. The core spends ``max(1, ny * nx * G)`` cycles on an
event: one per valid tap and group of ``P`` output channels, one for an event that reaches none.

The sweep visits windows ``(wy, wx)`` of ``win x win`` outputs (``win = pool``, or 1 without
pooling), over ``ceil(H_out / win) x ceil(W_out / win)`` windows so every neuron is updated; for
each window and group it issues ``win**2`` membrane reads, then spends one cycle on the window's
last read and the OR of its spikes, and one more cycle per extra spiking channel it emits.
Windows cut off by the floor of the pooling emit nothing (``torch``'s ``max_pool2d`` drops them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from wb_sim.ir import IntLayer


def field_bits(size: int) -> int:
    """Bits of an index field for ``0 .. size - 1`` (0 bits for a size of 1)."""
    return max(0, int(size) - 1).bit_length()


@dataclass(frozen=True)
class ConvGeometry:
    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    k: int
    stride: int
    padding: int
    pool: int
    parallelism: int

    @classmethod
    def of(cls, layer: IntLayer, parallelism: int) -> ConvGeometry:
        c_out, c_in, k, _ = (int(v) for v in layer.weight.shape)
        _, h_in, w_in = (int(v) for v in layer.in_shape)
        _, h_out, w_out = (int(v) for v in layer.out_shape)
        return cls(c_in, h_in, w_in, c_out, h_out, w_out, k, int(layer.stride),
                   int(layer.padding), int(layer.pool), int(parallelism))

    # -- channels and lanes ----------------------------------------------------------------------
    @property
    def groups(self) -> int:
        """G: groups of P output channels; one membrane word holds one group at one position."""
        return math.ceil(self.c_out / self.parallelism)

    @property
    def lanes(self) -> int:
        """Lanes stored per membrane word: P, or fewer when the layer has fewer channels."""
        return min(self.parallelism, self.c_out)

    @property
    def last_group(self) -> int:
        return self.c_out - (self.groups - 1) * self.parallelism

    @property
    def neurons(self) -> int:
        return self.c_out * self.h_out * self.w_out

    @property
    def inputs(self) -> int:
        return self.c_in * self.h_in * self.w_in

    @property
    def weight_words(self) -> int:
        """Words of P lanes: word ``((c * k + dy) * k + dx) * G + g`` holds ``W[g*P + p, c, dy,
        dx]`` in lane ``p``."""
        return self.c_in * self.k * self.k * self.groups

    @property
    def membrane_words(self) -> int:
        """Word ``(oy * W_out + ox) * G + g`` holds the ``lanes`` membranes of that group."""
        return self.h_out * self.w_out * self.groups

    # -- input events: bit fields (x, y, c) from the least significant bit -----------------------
    @property
    def in_fields(self) -> tuple[int, int, int]:
        """Widths of the x, y and c fields of this layer's input event index."""
        return field_bits(self.w_in), field_bits(self.h_in), field_bits(self.c_in)

    def event_index(self, c: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        xb, yb, _ = self.in_fields
        return (np.asarray(c) << (xb + yb)) | (np.asarray(y) << xb) | np.asarray(x)

    # -- kernel taps ----------------------------------------------------------------------------
    def axis_taps(self, size_in: int, size_out: int) -> list[tuple[int, int, int]]:
        """Per input coordinate: ``(d_lo, n, o0)``, the first valid kernel offset, how many, and
        the output coordinate the first one reaches (each further one reaches one less)."""
        table = []
        for y in range(size_in):
            valid = [d for d in range(self.k)
                     if (y + self.padding - d) % self.stride == 0
                     and 0 <= (y + self.padding - d) // self.stride < size_out
                     and y + self.padding - d >= 0]
            if valid:
                table.append((valid[0], len(valid), (y + self.padding - valid[0]) // self.stride))
            else:
                table.append((0, 0, 0))
        return table

    @property
    def taps_y(self) -> list[tuple[int, int, int]]:
        return self.axis_taps(self.h_in, self.h_out)

    @property
    def taps_x(self) -> list[tuple[int, int, int]]:
        return self.axis_taps(self.w_in, self.w_out)

    def event_cycles(self) -> np.ndarray:
        """Cycles the scatter spends on an event at each input position ``[H_in, W_in]``."""
        ny = np.array([n for _, n, _ in self.taps_y], dtype=np.int64)
        nx = np.array([n for _, n, _ in self.taps_x], dtype=np.int64)
        return np.maximum(1, ny[:, None] * nx[None, :] * self.groups)

    def scatter_cycles(self, active: np.ndarray) -> np.ndarray:
        """Scatter cycles per sample for input activity ``active[B, C_in, H_in, W_in]``."""
        per_position = active.reshape(active.shape[0], self.c_in, self.h_in, self.w_in).sum(1)
        return (per_position * self.event_cycles()).reshape(len(active), -1).sum(1)

    # -- the sweep ------------------------------------------------------------------------------
    @property
    def win(self) -> int:
        return max(1, self.pool)

    @property
    def pooled(self) -> tuple[int, int]:
        """``(Hp, Wp)``: the map the next layer sees (floor of the pooling, as torch)."""
        return self.h_out // self.win, self.w_out // self.win

    @property
    def windows(self) -> tuple[int, int]:
        """Windows the sweep walks, cut-off ones included (their neurons still update)."""
        return -(-self.h_out // self.win), -(-self.w_out // self.win)

    @property
    def sweep_base_cycles(self) -> int:
        """Sweep cycles when nothing spikes: per window and group ``win**2`` reads + 1."""
        nwy, nwx = self.windows
        return nwy * nwx * self.groups * (self.win * self.win + 1)

    def emit_cycles(self, pooled: np.ndarray) -> np.ndarray:
        """Extra sweep cycles per sample for the emitted events ``pooled[B, C_out, Hp, Wp]``:
        a window and group whose OR has ``m`` spiking channels costs ``max(0, m - 1)``."""
        batch = pooled.shape[0]
        hp, wp = self.pooled
        padded = np.zeros((batch, self.groups * self.parallelism, hp, wp), dtype=np.int64)
        padded[:, : self.c_out] = pooled.reshape(batch, self.c_out, hp, wp)
        counts = padded.reshape(batch, self.groups, self.parallelism, hp, wp).sum(axis=2)
        return np.maximum(counts - 1, 0).reshape(batch, -1).sum(axis=1)

    def max_cycles(self) -> int:
        """The scatter and sweep of the densest sample (every input and output active)."""
        scatter = int(self.event_cycles().sum()) * self.c_in
        hp, wp = self.pooled
        per_group = [min(self.parallelism, self.c_out - g * self.parallelism)
                     for g in range(self.groups)]
        emit = hp * wp * sum(max(0, n - 1) for n in per_group)
        return scatter + self.sweep_base_cycles + emit
