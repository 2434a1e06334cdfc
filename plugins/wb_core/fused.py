"""Fused multi-step kernels: the neuron's time loop compiled into one pass over memory.

The eager loop of :mod:`wb_core.neurons` makes about eight full-size temporaries per time step
forward and twelve backward; on the CPU that memory traffic, not arithmetic, is half a training
step. Here the same loops are compiled by ``torch.compile`` (the inductor backend: C++/OpenMP on
the CPU, Triton on CUDA) so each element's whole sequence runs in registers.

- One kernel serves every neuron of a network: the dynamics' numbers and switches are a small
  tensor argument, so only the surrogate, the dtype, the device and ``T`` pick a kernel; the
  neuron count is marked dynamic, so layers of different sizes share it.
- Spikes are bit-identical to the eager loop at fp32 (the same operations in the same order, no
  contraction into FMAs); gradients agree to rounding (tests: within 1e-6).
- A machine without a working compiler falls back to the eager loop, saying so once in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from wb_core.surrogates import surrogate_grad

log = logging.getLogger(__name__)

#: per-step neuron count from which ``auto`` fuses: below it the one-off compile (seconds to a
#: minute) outweighs what a run saves, and small test networks stay on the eager loop
AUTO_MIN_NEURONS = 1 << 18

Kernel = Callable[..., tuple[torch.Tensor, ...]]
_kernels: dict[tuple, Kernel] = {}
_broken: str | None = None  # why compiling failed in this process, once it has


def _forward(x: torch.Tensor, v: torch.Tensor, p: torch.Tensor):
    """The eager loop's forward on ``[T, N]`` with the dynamics in ``p`` (see :func:`params`)."""
    a, b, c, v_th, v_reset, hard, at_zero, _keep, _alpha = p.unbind()
    spikes, charged = [], []
    for t in range(x.shape[0]):
        h = a * v + b * x[t] + c
        u = h - v_th
        s = torch.where(at_zero > 0, u >= 0, u > 0).to(x.dtype)
        v = torch.where(hard > 0, h * (1.0 - s) + v_reset * s, h - v_th * s)
        spikes.append(s)
        charged.append(h)
    return torch.stack(spikes), torch.stack(charged)


def _backward(surrogate: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    def backward(grad_spikes: torch.Tensor, spikes: torch.Tensor, charged: torch.Tensor,
                 p: torch.Tensor):
        a, b, _c, v_th, v_reset, hard, _at_zero, keep, alpha = p.unbind()
        grad_v = torch.zeros_like(charged[0])
        grads = []
        for t in range(charged.shape[0] - 1, -1, -1):
            h, s = charged[t], spikes[t]
            sg = surrogate_grad(surrogate, h - v_th, alpha)
            # the reset path through S[t] counts only without detach_reset (keep = 1)
            dv_dh = torch.where(hard > 0,
                                torch.where(keep > 0, (1.0 - s) + (v_reset - h) * sg, 1.0 - s),
                                torch.where(keep > 0, 1.0 - v_th * sg, torch.ones_like(h)))
            grad_h = grad_spikes[t] * sg + grad_v * dv_dh
            grads.append(b * grad_h)
            grad_v = a * grad_h
        return torch.stack(grads[::-1]), grad_v
    return backward


def params(d, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The dynamics as the kernels' argument: ``[a, b, c, v_th, v_reset, hard, at_zero,
    keep_reset_grad, alpha]``, in the data's dtype (fp32 for half formats)."""
    dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    return torch.tensor([d.a, d.b, d.c, d.v_th, d.v_reset, float(d.hard_reset),
                         float(d.at_zero), float(not d.detach_reset), d.alpha],
                        dtype=dtype, device=device)


def _compile(fn: Callable) -> Kernel:
    return torch.compile(fn, backend="inductor", fullgraph=True)


def _kernel(kind: str, surrogate: str, x: torch.Tensor) -> Kernel:
    key = (kind, surrogate if kind == "backward" else "", x.dtype, x.device.type)
    kernel = _kernels.get(key)
    if kernel is None:
        kernel = _kernels[key] = _compile(_forward if kind == "forward" else _backward(surrogate))
    return kernel


def broken() -> str | None:
    """Why the fused kernels failed to compile in this process (None while they work)."""
    return _broken


def _flat(t: torch.Tensor, sequence: bool) -> torch.Tensor:
    """``[T, N]`` for a sequence, ``[N]`` for a state, with ``N`` marked dynamic."""
    flat = t.reshape(t.shape[0], -1) if sequence else t.reshape(-1)
    if flat.shape[-1] > 1:
        torch._dynamo.mark_dynamic(flat, flat.dim() - 1)
    return flat


def run(kind: str, surrogate: str, *tensors: torch.Tensor, p: torch.Tensor,
        shape: torch.Size) -> tuple[torch.Tensor, ...] | None:
    """Run a fused kernel on ``[T, ...]`` tensors (the first one sets the dtype and device);
    None when compiling failed, after one log line: the caller then runs the eager loop."""
    global _broken
    if _broken is not None:
        return None
    flat = [_flat(t, t.dim() == len(shape)) for t in tensors]
    try:
        out = _kernel(kind, surrogate, flat[0])(*flat, p)
    except Exception as exc:  # noqa: BLE001 -- no compiler, any platform gap: eager still works
        _broken = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        log.warning("fused spiking kernels unavailable, using the eager loop (%s)", _broken)
        return None
    return tuple(o.reshape(shape if o.dim() == 2 else shape[1:]) for o in out)
