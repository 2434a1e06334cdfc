"""Weights as ``safetensors``: no pickle ever, checked against the network before use.

A quantised weight (a module with ``weight_quant``, see :mod:`workbench.core.quantized`) is
stored packed at its real bit width: ``<name>.q_codes`` (uint8, ``bits`` per value) and
``<name>.q_scale`` (float32 per channel), described in the file's ``quantized`` metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from workbench.core.build.quantized import QuantizedTensor, attach, quantized_modules
from workbench.core.model.errors import WeightsError
from workbench.core.persistence.atomic import atomic_write_bytes
from workbench.core.persistence.files import regular_file
from workbench.core.persistence.quant_meta import read_quantized_meta

CODES_SUFFIX = ".q_codes"
SCALE_SUFFIX = ".q_scale"


def save_weights(model: torch.nn.Module, path: str | Path) -> Path:
    """Write the model's state (parameters and buffers such as BN statistics) atomically to
    ``path``; quantised weights go in packed. A project's own weights are saved through
    :mod:`workbench.core.persistence.project_store` instead (named by content, switched by
    the project file)."""
    atomic_write_bytes(path, weights_bytes(model, where=str(path)))
    return Path(path)


def weights_bytes(model: torch.nn.Module, *, where: str = "weights") -> bytes:
    """The safetensors file of the model's state, in memory (its hash names the file);
    refused with :class:`WeightsError` naming ``where`` when a value is not finite."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    broken = [k for k, v in state.items()
              if v.is_floating_point() and not bool(v.isfinite().all())]
    if broken:
        # Good weights are never replaced by bad ones: a NaN in the data (or a learning rate
        # that diverged) must not overwrite the last trained state on disk.
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise WeightsError(f"the network's weights hold NaN or infinite values ({broken[0]}"
                           f"{more}); nothing was saved, the file keeps its last good weights. "
                           "Check the data for NaN values or lower the learning rate",
                           where=where)
    quantized: dict[str, dict] = {}
    for module_name, module in quantized_modules(model).items():
        key = f"{module_name}.weight" if module_name else "weight"
        quant: QuantizedTensor = module.weight_quant
        if not torch.equal(module.weight.detach().cpu(), quant.dequantize().to(module.weight.dtype)):
            # The weights left their grid (trained after compression): the codes are stale, so
            # the float values are saved; packing them would silently undo the training.
            continue
        packed = quant.pack()
        state.pop(key, None)
        state[key + CODES_SUFFIX] = packed["codes"]
        state[key + SCALE_SUFFIX] = packed["scale"]
        quantized[key] = quant.meta()
    metadata = {"format": "snn-workbench-weights"}
    if quantized:
        metadata["quantized"] = json.dumps(quantized)
    return save(state, metadata=metadata)


def _unpack_quantized(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None,
                      where: str) -> dict[str, QuantizedTensor]:
    """Replace packed entries of ``tensors`` by their float values; return the records."""
    raw = (metadata or {}).get("quantized")
    if not raw:
        return {}
    # Every size and type is checked against the tensors in the file before anything is
    # allocated from it (WeightsError naming the file and the tensor).
    described = read_quantized_meta(raw, tensors, where, CODES_SUFFIX, SCALE_SUFFIX)
    try:
        found = {}
        for key, meta in described.items():
            quant = QuantizedTensor.unpack({"codes": tensors.pop(key + CODES_SUFFIX),
                                            "scale": tensors.pop(key + SCALE_SUFFIX)},
                                           meta.to_dict())
            tensors[key] = quant.dequantize()
            found[key] = quant
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"the packed quantised weights are damaged ({exc}); re-run the "
                           "compression that wrote them", where=where) from None
    return found


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model`` after checking names, shapes and values.

    Raises :class:`WeightsError` naming the file and the first offending tensor; the model is
    left untouched in that case.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise WeightsError("no such weights file", where=where)
    regular_file(path, WeightsError, what="weights file")  # a FIFO would block the read
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"not a readable safetensors file ({exc}); it may be truncated",
                           where=where) from None
    quantized = _unpack_quantized(tensors, metadata, where)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} tensor(s) the network lacks, e.g. {unexpected[0]!r}")
        raise WeightsError("; ".join(parts) + ": the weights belong to a different network "
                           "(retrain, or undo the graph change)", where=where)
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise WeightsError(
                f"tensor {name!r} has shape {list(got.shape)} in the file but the network needs "
                f"{list(want.shape)} (the graph changed since the weights were saved; retrain "
                "or undo the change)", where=where)
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise WeightsError(f"tensor {name!r} contains NaN or infinite values; the training "
                               "that wrote it diverged — retrain with a lower learning rate",
                               where=where)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    modules = dict(model.named_modules())
    for key, quant in quantized.items():
        attach(modules[key.rpartition(".")[0]], quant, key.rpartition(".")[2])
