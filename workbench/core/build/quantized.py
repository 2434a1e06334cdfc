"""Quantised weights: integer codes with a per-channel scale, and their packed storage.

Every quantiser of the compression plugins (uniform, ReScaW, binary, Q-SNN's power-of-two
binary, the 8-bit stem rule) produces weights of one shape::

    W[c, ...] = scale[c] * q[c, ...]          # q: small signed integers

so one record, :class:`QuantizedTensor`, carries them all. The integers are kept as level indices
``k = (q - q_zero) / q_step`` in ``[0, 2**bits)``, which is what gets packed (``bits`` per value,
LSB first) into ``weights.safetensors``: a 4-bit layer really takes half a byte per weight on
disk. The deployment backends read ``q`` and ``scale`` to run the network in integers.

A module whose weight is quantised carries the record as ``module.weight_quant`` and declares
``module.weight_bits`` (which :mod:`workbench.core.build.info` counts); the module's
float ``weight`` always equals :meth:`QuantizedTensor.dequantize`, so a float forward pass and
an integer one see the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

MAX_BITS = 32


@dataclass
class QuantizedTensor:
    codes: torch.Tensor  # int64 level indices in [0, 2**bits), shaped like the weight
    bits: int
    scale: torch.Tensor  # float32 [C], one per output channel (dim 0)
    q_step: int = 1
    q_zero: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"bits must be in 1..{MAX_BITS}, got {self.bits}")
        self.codes = self.codes.to(torch.int64)
        self.scale = self.scale.detach().to(torch.float32).reshape(-1)
        if self.codes.numel() and (int(self.codes.min()) < 0
                                   or int(self.codes.max()) >= 2 ** self.bits):
            raise ValueError(f"codes must lie in [0, {2 ** self.bits}) for {self.bits} bits")
        if self.scale.numel() != self.codes.shape[0]:
            raise ValueError(f"scale has {self.scale.numel()} entries for "
                             f"{self.codes.shape[0]} output channels")

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_ints(cls, q: torch.Tensor, scale: torch.Tensor, bits: int, *, q_step: int = 1,
                  q_zero: int | None = None) -> QuantizedTensor:
        """Wrap signed integers ``q`` (an integer-valued tensor) on the grid
        ``q_zero + q_step * k``. ``q_zero`` defaults to the grid symmetric around 0:
        ``-(2**bits - 1) * q_step / 2`` rounded towards the smallest value present."""
        q = torch.round(q.detach()).to(torch.int64)
        if q_zero is None:
            q_zero = -((2 ** bits - 1) * q_step) // 2
        diff = q - q_zero
        if bool((diff % q_step != 0).any()):
            raise ValueError(f"the integers are not on the grid {q_zero} + {q_step}·k")
        return cls(diff // q_step, bits, scale, q_step, q_zero)

    # -- values ----------------------------------------------------------------------------------
    @property
    def ints(self) -> torch.Tensor:
        """The signed integer weights ``q`` (int64)."""
        return self.codes * self.q_step + self.q_zero

    def dequantize(self) -> torch.Tensor:
        shape = (-1,) + (1,) * (self.codes.dim() - 1)
        return self.scale.reshape(shape) * self.ints.to(torch.float32)

    @property
    def levels(self) -> int:
        return 2 ** self.bits

    # -- storage ---------------------------------------------------------------------------------
    def pack(self) -> dict[str, torch.Tensor]:
        return {"codes": pack_codes(self.codes, self.bits), "scale": self.scale.contiguous()}

    def meta(self) -> dict[str, Any]:
        return {"bits": self.bits, "shape": list(self.codes.shape), "q_step": self.q_step,
                "q_zero": self.q_zero}

    @classmethod
    def unpack(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> QuantizedTensor:
        shape = [int(s) for s in meta["shape"]]
        bits = int(meta["bits"])
        # before unpack_codes allocates count * bits values (a weights file checks the whole
        # record earlier, naming the file: workbench.core.persistence.quant_meta)
        if not 1 <= bits <= MAX_BITS or not shape or min(shape) < 0:
            raise ValueError(f"bits {bits} and shape {shape} do not describe a weight")
        codes = unpack_codes(tensors["codes"], bits, math.prod(shape)).reshape(shape)
        return cls(codes, bits, tensors["scale"], int(meta["q_step"]), int(meta["q_zero"]))


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack non-negative integers below ``2**bits`` into a uint8 tensor, ``bits`` bits each,
    least significant bit first. ``ceil(numel * bits / 8)`` bytes."""
    flat = codes.reshape(-1).to(torch.int64)
    shifts = torch.arange(bits, dtype=torch.int64)
    bit_planes = ((flat[:, None] >> shifts) & 1).reshape(-1).to(torch.uint8)
    pad = (-bit_planes.numel()) % 8
    if pad:
        bit_planes = torch.cat([bit_planes, torch.zeros(pad, dtype=torch.uint8)])
    weights = (2 ** torch.arange(8, dtype=torch.int64)).to(torch.uint8)
    return (bit_planes.reshape(-1, 8).to(torch.int64) * weights.to(torch.int64)).sum(1).to(
        torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The inverse of :func:`pack_codes`: ``count`` int64 codes."""
    need = math.ceil(count * bits / 8)
    if packed.numel() != need:
        raise ValueError(f"{packed.numel()} packed bytes, expected {need} for {count} "
                         f"{bits}-bit values")
    as_int = packed.reshape(-1).to(torch.int64)
    bit_planes = (as_int[:, None] >> torch.arange(8, dtype=torch.int64)) & 1
    bit_planes = bit_planes.reshape(-1)[: count * bits].reshape(count, bits)
    return (bit_planes << torch.arange(bits, dtype=torch.int64)).sum(1)


def attach(module: torch.nn.Module, quant: QuantizedTensor, name: str = "weight") -> None:
    """Make ``module.<name>`` hold the quantised values and record the codes on the module."""
    param = getattr(module, name)
    if tuple(param.shape) != tuple(quant.codes.shape):
        raise ValueError(f"quantised {name} has shape {list(quant.codes.shape)}, the layer "
                         f"needs {list(param.shape)}")
    with torch.no_grad():
        param.copy_(quant.dequantize().to(param.dtype))
    module.weight_quant = quant
    module.weight_bits = quant.bits


def detach_quant(module: torch.nn.Module) -> None:
    """Forget the quantisation (e.g. before training moves the weights off the grid)."""
    for attr in ("weight_quant", "weight_bits"):
        if attr in module.__dict__:
            delattr(module, attr)


def quantized_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """``{qualified module name: module}`` of every module that carries a quantised weight."""
    return {name: m for name, m in model.named_modules()
            if isinstance(getattr(m, "weight_quant", None), QuantizedTensor)}
