"""The ``quantized`` metadata of a weights file, checked against the file before any use.

A weights file is untrusted input: its metadata JSON says how big each packed weight is
(``shape``, ``bits``), and unpacking allocates from those numbers. Every value is therefore
checked here, by type and against the tensors the file really holds (the packed bytes must be
exactly ``ceil(prod(shape) * bits / 8)``, the scale must have one entry per output channel),
before a single byte is allocated for it. A malformed value of any kind (wrong type, missing
key, negative, huge, nested) is a :class:`WeightsError` naming the file and the tensor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch

from workbench.core.build.quantized import MAX_BITS
from workbench.core.model.errors import WeightsError

#: the longest ``quantized`` metadata read: ~100 bytes per quantised layer, so room for
#: tens of thousands of layers, and never a JSON document that takes long to parse
MAX_META_BYTES = 4 << 20
#: the most dimensions a packed weight may have (conv3d weights have 5)
MAX_DIMS = 8
#: bounds of the integer grid ``q = q_zero + q_step * code``, so ``q`` fits int64 for every
#: code below ``2**MAX_BITS``
MAX_Q_STEP = 1 << 16
MAX_Q_ZERO = 1 << 48
_FIX = "re-run the compression that wrote them, or delete the weights file and retrain"


@dataclass(frozen=True)
class PackedMeta:
    """One quantised weight's record, every field checked."""

    shape: tuple[int, ...]
    bits: int
    q_step: int
    q_zero: int

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "bits": self.bits, "q_step": self.q_step,
                "q_zero": self.q_zero}


def read_quantized_meta(raw: Any, tensors: dict[str, torch.Tensor], where: str,
                        codes_suffix: str, scale_suffix: str) -> dict[str, PackedMeta]:
    """``{weight name: checked record}`` from the metadata string ``raw``; every record is
    checked against ``tensors[name + codes_suffix]`` and ``tensors[name + scale_suffix]``."""
    if not isinstance(raw, str):
        raise WeightsError(f"the 'quantized' metadata is {type(raw).__name__}, not JSON text; "
                           f"{_FIX}", where=where)
    if len(raw) > MAX_META_BYTES:
        raise WeightsError(f"the 'quantized' metadata is {len(raw):,} characters long (at most "
                           f"{MAX_META_BYTES:,}); {_FIX}", where=where)
    try:
        described = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer too long
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise WeightsError(f"the 'quantized' metadata is not valid JSON ({reason}); {_FIX}",
                           where=where) from None
    if not isinstance(described, dict):
        raise WeightsError(f"the 'quantized' metadata is a JSON {type(described).__name__}, "
                           f"expected an object {{tensor: record}}; {_FIX}", where=where)
    return {key: _check(key, meta, tensors, where, codes_suffix, scale_suffix)
            for key, meta in described.items()}


def _check(key: str, meta: Any, tensors: dict[str, torch.Tensor], where: str,
           codes_suffix: str, scale_suffix: str) -> PackedMeta:
    def fail(message: str) -> WeightsError:
        return WeightsError(f"quantised tensor {key[:200]!r}: {message}; {_FIX}", where=where)

    if not isinstance(meta, dict):
        raise fail(f"its record is a {type(meta).__name__}, expected an object")
    for name in ("shape", "bits", "q_step", "q_zero"):
        if name not in meta:
            raise fail(f"its record has no {name!r}")
    bits = _integer(meta["bits"], "bits", 1, MAX_BITS, fail)
    q_step = _integer(meta["q_step"], "q_step", 1, MAX_Q_STEP, fail)
    q_zero = _integer(meta["q_zero"], "q_zero", -MAX_Q_ZERO, MAX_Q_ZERO, fail)
    shape = meta["shape"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= MAX_DIMS:
        raise fail(f"'shape' must be a list of 1 to {MAX_DIMS} sizes, got "
                   f"{_short(shape)}")
    dims = tuple(_integer(n, "shape", 0, None, fail) for n in shape)
    codes, scale = tensors.get(key + codes_suffix), tensors.get(key + scale_suffix)
    if codes is None or scale is None:
        missing = key + (codes_suffix if codes is None else scale_suffix)
        raise fail(f"the file has no tensor {missing[:200]!r}")
    if codes.dtype != torch.uint8 or codes.dim() != 1:
        raise fail(f"its packed codes are {codes.dtype} {list(codes.shape)}, expected a "
                   "1-D uint8 tensor")
    # The product may be astronomically large in the JSON: compared, never allocated.
    need = (math.prod(dims) * bits + 7) // 8
    if codes.numel() != need:
        raise fail(f"shape {list(dims)} at {bits} bits needs {need:,} packed bytes, the file "
                   f"holds {codes.numel():,}")
    if not scale.is_floating_point() or scale.dim() > 1 or scale.numel() != dims[0]:
        raise fail(f"its scale is {scale.dtype} {list(scale.shape)}, expected {dims[0]} "
                   "floating-point values (one per output channel)")
    return PackedMeta(dims, bits, q_step, q_zero)


def _integer(value: Any, name: str, low: int, high: int | None, fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{name!r} must be a whole number, got {_short(value)}")
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise fail(f"{name!r} is {_short(value)}, outside {bound}")
    return value


def _short(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
