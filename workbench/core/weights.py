"""Weights as ``safetensors``: no pickle ever, checked against the network before use."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.core.atomic import atomic_path
from workbench.core.errors import WeightsError


def save_weights(model: torch.nn.Module, path: str | Path) -> Path:
    """Write the model's state (parameters and buffers such as BN statistics) atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "snn-workbench-weights"})
    return Path(path)


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model`` after checking names, shapes and values.

    Raises :class:`WeightsError` naming the file and the first offending tensor; the model is
    left untouched in that case.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise WeightsError("no such weights file", where=where)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"not a readable safetensors file ({exc}); it may be truncated",
                           where=where) from None
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
