"""Model size under the rule of docs/wb_core.md, for any torch module (not only compiled
networks): ``Σ bits(param) / 8`` bytes, where a module's weight counts at its declared
``weight_bits`` (quantised layers) and every other parameter at its dtype's width; buffers such
as batch-norm running statistics are not counted. The papers' MB is 10^6 bytes.
"""

from __future__ import annotations

import torch
from torch import nn


def param_bits(module: nn.Module, name: str, param: torch.Tensor) -> int:
    """Bits one value of ``module.<name>`` takes."""
    declared = getattr(module, "weight_bits", None)
    if declared is not None and name == "weight":
        return int(declared)
    if param.is_floating_point():
        return torch.finfo(param.dtype).bits
    return torch.iinfo(param.dtype).bits


def size_bytes(model: nn.Module) -> float:
    """Bytes of ``model``'s parameters under that rule."""
    total = 0
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            total += param.numel() * param_bits(module, name, param)
    return total / 8


def size_mb(model: nn.Module) -> float:
    """:func:`size_bytes` in MB of 10^6 bytes."""
    return size_bytes(model) / 1e6
