"""Binary spiking self-attention, BSSA (docs/bestformer.md), on ``[T, B, N, D]`` tokens.

::

    X_s     = SN(X)                                  # X: the membrane-like residual stream
    Q, K, V = SN(BN(Linear_bin(X_s)))                # heads [T, B, h, N, d], binary
    quadratic (CIFAR):  A = SN_soft(Q K^T)  [T, B, h, N, N];  Y = (A V) · 0.125 · λ
    linear (ImageNet):  A = SN_soft(K^T V)  [T, B, h, d, d];  Y = (Q A) · 0.125 · λ
    Y_s     = SN_0.5(Y)                              # threshold 0.5
    out     = BN(Linear_bin(Y_s))                    # back to the residual stream

``A`` is the 1-bit attention map: ``SN_soft`` is the layer's neuron (LIF A, tau 2, V_th 1 by
default) with a soft reset. ``λ`` is learnable, one value per step and head (``[T, 1, h, 1, 1]``,
initial 1), stored for ``time_steps`` steps; a shorter run uses the leading ones. The
``Linear_bin`` layers are the released code's 1×1 convolutions written as linear layers on
tokens (the same function).

Like the SNN-ViT attentions, the module returns ``(out, maps)`` and has two switches:

- ``record_maps``: ``maps = {"kind": "ssa", "variant": "quadratic", "attention": A}`` (the
  SNN-ViT attention view draws the ``N × N`` map) or, for the linear variant,
  ``{"kind": "bssa_linear", "variant": "linear", "kv": A [T, B, h, d, d]}``; else ``{}``.
- ``count_ops``: ``last_ops = {"macs", "sops", "products"}`` of the attention core for the
  batch (the projections are ``nn.Linear`` layers that the energy meter counts by itself).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from wb_bestformer._layers import (
    NeuronBuilder,
    Shape,
    TokenBatchNorm,
    head_merge,
    head_split,
    need_tokens,
    neuron_variant,
)
from wb_bestformer.binary import BinaryLinear
from workbench.pluginhost import spike_product_ops

VARIANTS = ("quadratic", "linear")
#: Y is scaled by this constant times λ (the released code's 0.125)
SCALE = 0.125


class BinaryProjection(nn.Sequential):
    """``Linear_bin (no bias) -> BN -> (neuron)`` on tokens."""

    def __init__(self, d_in: int, d_out: int, *, binary: bool,
                 neuron: NeuronBuilder | None = None) -> None:
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            fc=BinaryLinear(d_in, d_out, bias=False, binary=binary), bn=TokenBatchNorm(d_out))
        if neuron is not None:
            parts["neuron"] = neuron()
        super().__init__(parts)


class BSSA(nn.Module):
    """Binary spiking self-attention.

    Parameters
    ----------
    dim : int
        Token width D.
    heads : int
        Heads h (``d = D / h``).
    neuron : callable
        Zero-argument builder of a multi-step spiking neuron (every SN; the attention-map and
        output neurons are variants of it with soft reset and threshold 0.5).
    variant : {"quadratic", "linear"}
        ``Q K^T`` first (``N × N`` map, CIFAR) or ``K^T V`` first (``d × d``, ImageNet).
    time_steps : int
        Largest T: size of λ.
    binary : bool
        Binary Q/K/V/output weights (fake-quant with the straight-through estimator); off: full
        precision (the teacher).
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronBuilder, *,
                 variant: str = "quadratic", time_steps: int = 4, binary: bool = True) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"the token width {dim} is not divisible by {heads} heads")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if time_steps < 1:
            raise ValueError(f"time_steps must be at least 1, got {time_steps}")
        self.dim, self.heads, self.variant = dim, heads, variant
        self.input_neuron = neuron()
        self.q = BinaryProjection(dim, dim, binary=binary, neuron=neuron)
        self.k = BinaryProjection(dim, dim, binary=binary, neuron=neuron)
        self.v = BinaryProjection(dim, dim, binary=binary, neuron=neuron)
        self.attn_neuron = neuron_variant(neuron, soft_reset=True)
        self.lam = nn.Parameter(torch.ones(time_steps, 1, heads, 1, 1))
        self.out_neuron = neuron_variant(neuron, v_th=0.5)
        self.proj = BinaryProjection(dim, dim, binary=binary)
        self.record_maps = False
        self.count_ops = False
        self.last_ops: dict[str, float] | None = None

    def _scale(self, steps: int) -> torch.Tensor:
        if steps > self.lam.shape[0]:
            raise ValueError(f"the input has {steps} time steps but the attention was built for "
                             f"at most {self.lam.shape[0]}; raise the time_steps parameter")
        return SCALE * self.lam[:steps]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention core on spikes ``q, k, v [T, B, N, D]``: returns ``Y`` (before
        ``SN_0.5``, heads merged) and the binary map ``A``."""
        qh, kh, vh = (head_split(t, self.heads) for t in (q, k, v))
        if self.variant == "quadratic":
            a = self.attn_neuron(qh @ kh.transpose(-1, -2))
            y = a @ vh
        else:
            a = self.attn_neuron(kh.transpose(-1, -2) @ vh)
            y = qh @ a
        return head_merge(y * self._scale(q.shape[0])), a

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"expects tokens [T, B, N, {self.dim}], got {list(x.shape)}")
        xs = self.input_neuron(x)
        q, k, v = self.q(xs), self.k(xs), self.v(xs)
        y, a = self.attend(q, k, v)
        out = self.proj(self.out_neuron(y))
        if self.count_ops:
            self.last_ops = self.core_ops(q, k, v, a)
        maps: dict = {}
        if self.record_maps:
            if self.variant == "quadratic":
                maps = {"kind": "ssa", "variant": "quadratic", "attention": a.detach()}
            else:
                maps = {"kind": "bssa_linear", "variant": "linear", "kv": a.detach()}
        return out, maps

    def core_ops(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 a: torch.Tensor) -> dict:
        """Exact counts (docs/energy.md): one AC per non-zero product term of the two binary
        products (quadratic: ``Q K^T`` and ``A V``; linear: ``K^T V`` and ``Q A``), both listed
        in ``products`` for the meter's ``rate`` mode. The factor ``0.125·λ`` folds into the
        threshold of ``SN_0.5`` when every λ in use is positive (no MAC); otherwise each entry
        of ``Y`` costs one MAC."""
        qh, kh, vh = (head_split(t, self.heads) for t in (q, k, v))
        if self.variant == "quadratic":
            products = [spike_product_ops(qh, kh.transpose(-1, -2)), spike_product_ops(a, vh)]
        else:
            products = [spike_product_ops(kh.transpose(-1, -2), vh), spike_product_ops(qh, a)]
        folded = bool((self.lam[: q.shape[0]] > 0).all())
        macs = 0.0 if folded else float(q.numel())
        return {"macs": macs, "sops": sum(p["terms"] for p in products), "products": products}


def bssa(in_shapes: list[Shape], neuron: NeuronBuilder, heads: int = 4,
         variant: str = "quadratic", time_steps: int = 4, binary: bool = True) -> BSSA:
    """AttentionSpec factory: tokens ``[N, D] -> [N, D]``."""
    _, dim = need_tokens(in_shapes, "binary spiking self-attention")
    return BSSA(dim, heads, neuron, variant=variant, time_steps=time_steps, binary=binary)
