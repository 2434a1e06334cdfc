"""Weights files: safetensors only, checked before use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.core.model.errors import WeightsError
from workbench.core.persistence.weights import load_weights, save_weights


def _net(width: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.BatchNorm1d(width))


def test_round_trip_restores_parameters_and_buffers(tmp_path):
    a, b = _net(), _net()
    a[1].running_mean.fill_(0.5)
    save_weights(a, tmp_path / "w.safetensors")
    load_weights(b, tmp_path / "w.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_wrong_shapes_name_the_tensor_and_leave_the_model_alone(tmp_path):
    save_weights(_net(5), tmp_path / "w.safetensors")
    target = _net(4)
    before = target[0].weight.clone()
    with pytest.raises(WeightsError, match=r"'0.weight' has shape \[5, 3\].*needs \[4, 3\]"):
        load_weights(target, tmp_path / "w.safetensors")
    assert torch.equal(target[0].weight, before)


def test_nan_weights_are_refused(tmp_path):
    from safetensors.torch import save_file

    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    # a file written elsewhere (our own save refuses NaN: see the test below)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(tmp_path / "w.safetensors"))
    with pytest.raises(WeightsError, match="NaN"):
        load_weights(_net(), tmp_path / "w.safetensors")


def test_truncated_and_foreign_files(tmp_path):
    save_weights(_net(), tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cut.safetensors"):
        load_weights(_net(), tmp_path / "cut.safetensors")
    with pytest.raises(WeightsError, match="missing"):
        load_weights(torch.nn.Sequential(_net(), torch.nn.Linear(4, 2)), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(_net(), tmp_path / "absent.safetensors")


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "w.safetensors"
    save_weights(_net(), target)
    good = target.read_bytes()

    real_write = Path.write_bytes

    def broken(self, data):  # the disk fills half way through the new file
        real_write(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", broken)
    with pytest.raises(OSError):
        save_weights(_net(), target)
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_non_finite_weights_never_replace_good_ones(tmp_path):
    import math

    import torch

    from workbench.core.model.errors import WeightsError
    from workbench.core.persistence.weights import save_weights

    model = torch.nn.Linear(3, 2)
    path = save_weights(model, tmp_path / "weights.safetensors")
    good = path.read_bytes()
    with torch.no_grad():
        model.weight[0, 1] = math.nan
    with pytest.raises(WeightsError, match="NaN or infinite.*weight.*last good weights"):
        save_weights(model, path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.safetensors"]  # no temp left
