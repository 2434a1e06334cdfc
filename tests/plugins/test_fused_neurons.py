"""The fused multi-step kernels against the eager loop they replace: the same spikes bit for
bit, gradients within 1e-6, and the eager loop again when compiling fails."""

from __future__ import annotations

import logging

import pytest
import torch
from wb_core import fused
from wb_core.neurons import integrate_and_fire, lif, lif_b

from workbench.core.build import compute
from workbench.core.model.errors import WorkbenchError

T = 4  # one forward kernel per T: every case shares it, and one backward kernel per surrogate

CASES = {
    "lif_a_hard_detach": lambda: lif(tau=2.0, v_reset=0.0),
    "lif_a_soft_keep": lambda: lif(tau=3.0, reset="soft", detach_reset=False),
    "lif_a_hard_keep_reset": lambda: lif(tau=2.0, v_reset=-0.2, detach_reset=False),
    "lif_b_hard_keep": lambda: lif_b(lam=0.5),
    "lif_b_soft_detach": lambda: lif_b(lam=0.8, reset="soft", detach_reset=True),
    "if_hard_detach": lambda: integrate_and_fire(),
    "if_soft_keep": lambda: integrate_and_fire(reset="soft", detach_reset=False),
}


def _run(neuron, x, mode, monkeypatch):
    monkeypatch.setattr(compute, "_KERNEL_MODE", mode)
    x = x.clone().requires_grad_(True)
    spikes = neuron(x)
    weights = torch.linspace(-1.0, 1.0, spikes.numel()).reshape(spikes.shape).to(x.device)
    (spikes * weights).sum().backward()
    return spikes.detach(), x.grad


#: the CPU always; CUDA (the Triton kernels) where this machine has a GPU
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_equals_the_eager_loop(case, device, monkeypatch):
    torch.manual_seed(0)
    neuron = CASES[case]()
    # around the threshold: some steps fire, some do not
    x = (torch.rand(T, 3, 5, 7) * 2.0).to(device)
    eager_spikes, eager_grad = _run(neuron, x, "eager", monkeypatch)
    fused_spikes, fused_grad = _run(neuron, x, "fused", monkeypatch)
    assert fused.broken() is None
    assert 0 < eager_spikes.sum() < eager_spikes.numel()
    assert torch.equal(fused_spikes, eager_spikes)
    assert eager_grad.abs().max() > 0
    assert (fused_grad - eager_grad).abs().max().item() <= 1e-6


def test_a_layer_of_another_size_reuses_the_kernel(monkeypatch):
    neuron = lif()
    for shape in ((T, 2, 9), (T, 6, 11)):  # the neuron count is dynamic
        x = torch.rand(shape) * 2.0
        eager_spikes, _ = _run(neuron, x, "eager", monkeypatch)
        fused_spikes, _ = _run(neuron, x, "fused", monkeypatch)
        assert torch.equal(fused_spikes, eager_spikes)


def test_auto_fuses_only_large_layers(monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "run", lambda *a, **k: calls.append(k["shape"]))
    monkeypatch.setattr(compute, "_KERNEL_MODE", "auto")
    neuron = lif()
    with torch.no_grad():
        neuron(torch.rand(2, 4, 8))
        assert calls == []
        neuron(torch.rand(2, fused.AUTO_MIN_NEURONS))
    assert calls == [torch.Size([2, fused.AUTO_MIN_NEURONS])]


def test_a_failing_compiler_falls_back_to_the_eager_loop_once(monkeypatch, caplog):
    def no_compiler(fn):
        def kernel(*args):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found\ndetails")
        return kernel

    monkeypatch.setattr(fused, "_compile", no_compiler)
    monkeypatch.setattr(fused, "_kernels", {})
    monkeypatch.setattr(fused, "_broken", None)
    # hand-worked: IF, threshold 1, inputs 0.6 per step: fires at steps 2 and 4 (1.2, 1.2)
    expected = [0.0, 1.0, 0.0, 1.0]
    monkeypatch.setattr(compute, "_KERNEL_MODE", "auto")
    with caplog.at_level(logging.WARNING, logger="wb_core.fused"), torch.no_grad():
        big = integrate_and_fire()(torch.full((4, fused.AUTO_MIN_NEURONS), 0.6))
        again = integrate_and_fire()(torch.full((4, fused.AUTO_MIN_NEURONS), 0.6))
    assert big[:, 0].tolist() == expected and torch.equal(big, again)
    lines = [r for r in caplog.records if r.name == "wb_core.fused"]
    assert len(lines) == 1 and "eager" in lines[0].getMessage()  # logged once, not per call

    monkeypatch.setattr(compute, "_KERNEL_MODE", "fused")  # asked for by name: an input error
    with pytest.raises(WorkbenchError) as err:
        integrate_and_fire()(torch.full((4, 3), 0.6))
    assert err.value.where == "compute.kernels" and "InvalidCxxCompiler" in str(err.value)
