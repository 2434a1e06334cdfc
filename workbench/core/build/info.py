"""What a compiled network is made of: layers, shapes, parameters, bit widths, size.

Model size is ``sum(bits(param)) / 8`` bytes (the rule QP-SNN uses for its published sizes; see
``docs/compression.md``), reported in MB of 10^6
bytes; buffers such as batch-norm running statistics are not counted. A module that stores
quantised weights says so with a ``weight_bits`` attribute (compression plugins set it);
otherwise a parameter counts at its dtype's width.
"""

from __future__ import annotations

from typing import Any

import torch

from workbench.core.build.network import CompiledNetwork


def _bits(module: torch.nn.Module, name: str, param: torch.Tensor) -> int:
    declared = getattr(module, "weight_bits", None)
    if declared is not None and name.endswith("weight"):
        return int(declared)
    return torch.finfo(param.dtype).bits if param.is_floating_point() else torch.iinfo(param.dtype).bits


def describe(model: CompiledNetwork) -> dict[str, Any]:
    """Per node: spec, input and output shape, parameter count, bits, bytes; and totals."""
    layers = []
    total_params = total_bits = 0
    for node_id in model.order:
        info = model.report.nodes[node_id]
        module = model.layers[node_id]
        params = bits = 0
        widths: set[int] = set()
        largest = (0, 0)  # (numel, bits) of the layer's largest tensor: its weights
        for sub in module.modules():
            for p_name, p in sub.named_parameters(recurse=False):
                b = _bits(sub, p_name, p)
                widths.add(b)
                params += p.numel()
                bits += p.numel() * b
                largest = max(largest, (p.numel(), b))
        total_params += params
        total_bits += bits
        layers.append({
            "name": node_id,
            "spec": info.spec.id if info.spec else "",
            "in_shape": [list(s) for s in info.in_shapes],
            "out_shape": list(info.out_shape or ()),
            "params": params,
            "bits": sorted(widths),
            "weight_bits": largest[1] if params else None,
            "bytes": bits / 8,
        })
    return {"layers": layers, "params": total_params, "bytes": total_bits / 8,
            "size_mb": total_bits / 8 / 1e6}
