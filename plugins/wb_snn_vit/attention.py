"""Spiking attention on ``[T, B, N, D]`` tokens: SSSA (SNN-ViT) and Spikformer's SSA.

Both modules return ``(out, maps)`` (an AttentionSpec's contract) and share two switches:

- ``record_maps`` (default off): when on, ``maps`` holds detached tensors for the attention view
  (SSSA: ``{"kind": "sssa", "mask": S[T, B, h, N], "salience": P[T, B, h, N]}``; SSA:
  ``{"kind": "ssa", "attention": scores[T, B, h, N, N]}``); when off, ``maps = {}`` at no cost.
- ``count_ops`` (default off): when on, each forward sets ``last_ops = {"macs", "sops",
  "products"}``, the operations of the attention *core* for the whole batch, counted exactly,
  and the spike × spike products among the SOPs, to which the energy meter applies the
  project's ``sop_counting`` (the Q/K/V/output projections are ``nn.Linear`` layers that the
  meter counts by itself). The rules are in ``docs/snn_vit.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from wb_snn_vit._layers import (
    NeuronBuilder,
    Shape,
    SpikingLinear,
    head_merge,
    head_split,
    need_tokens,
)
from wb_snn_vit._saccade import SaccadicNeuron
from workbench.pluginhost import spike_product_ops

MODES = ("train_v1", "v2")
SALIENCE_NORMS = ("rate", "count")


def head_counts(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Per-token spike counts in each head: ``[T, B, N, D] -> [T, B, h, N]`` (Q', K')."""
    return x.unflatten(-1, (heads, x.shape[-1] // heads)).sum(-1).transpose(2, 3)


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    # float64: counts stay exact integers far beyond float32's 2**24
    return (x != 0).to(torch.float64)


class _SpikingAttention(nn.Module):
    """Q, K, V = SN(BN(Linear(X))) and the output projection Linear -> BN -> SN."""

    def __init__(self, dim: int, heads: int, neuron: NeuronBuilder) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"the token width {dim} is not divisible by {heads} heads")
        self.dim, self.heads = dim, heads
        self.q = SpikingLinear(dim, dim, neuron)
        self.k = SpikingLinear(dim, dim, neuron)
        self.v = SpikingLinear(dim, dim, neuron)
        self.proj = SpikingLinear(dim, dim, neuron)  # [R] Spikformer's Linear -> BN -> SN
        self.record_maps = False
        self.count_ops = False
        self.last_ops: dict | None = None

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"expects tokens [T, B, N, {self.dim}], got {list(x.shape)}")


class SSSA(_SpikingAttention):
    """Saccadic spike self-attention (SNN-ViT, Wang et al. 2025; see docs/snn_vit.md).

    Parameters
    ----------
    dim : int
        Token width D.
    heads : int
        Number of heads h (``d = D / h`` channels each).
    neuron : callable
        Zero-argument builder of a multi-step spiking neuron (Q, K, V and the output
        projection).
    mode : {"train_v1", "v2"}
        ``train_v1``: salience ``P = Q'·α`` mixed over time by the saccadic neuron (steps 1–4);
        ``v2``: the per-step rule of step 5 (exactly equal for a diagonal ``M_w``).
    salience_norm : {"rate", "count"}
        ``rate`` [R]: ``q = Q'/d``, ``κ = α/(N·d)``, ``P = q·κ`` in [0, 1]; ``count``: raw
        counts.
    sacc_surrogate_norm : bool
        Surrogate on ``(H - V_th)/σ_H[t]`` with a running std ``σ_H`` [R]; off: on ``H - V_th``.
    time_steps : int
        Largest T (size of ``M_w`` and ``V_th``); fewer steps use the leading block.
    threshold_units : {"std", "salience"}
        Units of the learnable threshold vector: multiples of the running std of ``H[t]`` [R],
        or the salience itself (see :mod:`wb_snn_vit._saccade`).
    threshold_rule : {"selective", "median"}
        ``selective`` [R]: a positive threshold starting where at most half of the tokens are
        selected; ``median``: a free one starting at the median of ``H[t]``.
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronBuilder, *, mode: str = "train_v1",
                 salience_norm: str = "rate", sacc_surrogate_norm: bool = True,
                 time_steps: int = 4, threshold_units: str = "std",
                 threshold_rule: str = "selective") -> None:
        super().__init__(dim, heads, neuron)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if salience_norm not in SALIENCE_NORMS:
            raise ValueError(f"salience_norm must be one of {SALIENCE_NORMS}, "
                             f"got {salience_norm!r}")
        self.mode = mode
        self.salience_norm = salience_norm
        self.saccade = SaccadicNeuron(time_steps, surrogate_norm=sacc_surrogate_norm,
                                      threshold_units=threshold_units,
                                      threshold_rule=threshold_rule)

    def _normalised(self, qc: torch.Tensor, kc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q, κ)``: query counts ``[T, B, h, N]`` and key activity ``[T, B, h]``."""
        alpha = kc.sum(-1)
        if self.salience_norm == "count":
            return qc, alpha
        d, n = self.dim // self.heads, qc.shape[-1]
        return qc / d, alpha / (n * d)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The attention core on spikes ``q, k, v [T, B, N, D]``.

        Returns ``(Y, S, P)``: ``Y = S ⊙ V`` with heads merged ``[T, B, N, D]`` (before the
        output projection), the mask ``S`` and the salience ``P``, both ``[T, B, h, N]``. No
        ``N × N`` tensor is formed.
        """
        qn, kappa = self._normalised(head_counts(q, self.heads), head_counts(k, self.heads))
        p = qn * kappa.unsqueeze(-1)
        if self.mode == "v2":
            s = self.saccade.forward_v2(qn, kappa)
        else:
            s = self.saccade(p)
        y = head_merge(head_split(v, self.heads) * s.unsqueeze(-1))
        return y, s, p

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        self._check(x)
        q, k, v = self.q(x), self.k(x), self.v(x)
        y, s, p = self.attend(q, k, v)
        if self.count_ops:
            self.last_ops = self.core_ops(q, k)
        maps: dict = {}
        if self.record_maps:
            maps = {"kind": "sssa", "mask": s.detach(), "salience": p.detach()}
        return self.proj(y), maps

    def core_ops(self, q: torch.Tensor, k: torch.Tensor) -> dict:
        """Operations of the attention core for this batch (docs/snn_vit.md, "Energy").

        - ``Q'``: one AC per Q spike; ``α``: one AC per K spike (α is the head's total key
          spike count, so the per-token ``K'`` are never needed on their own);
        - the ``rate`` scalings ``1/d``, ``1/(N·d)`` are constants folded into ``V_th``: free;
        - ``train_v1``: salience ``Q'·α`` one MAC per token, head and step (``T·B·h·N``);
          time mixing by the lower-triangular ``M_w``: ``T(T+1)/2`` MACs per token and head;
        - ``v2``: one MAC per (step, sample, head) for ``(M_w^{-1}V_th)[t] / α[t]``
          (``M_w^{-1}V_th`` depends on parameters only and is computed once);
        - threshold comparisons are neuron updates (not counted, docs/energy.md) and ``S ⊙ V`` is a
          mask: zero cost.

        No spike × spike product is computed (``products`` is empty), so the counts are the
        same under both ``sop_counting`` modes.
        """
        with torch.no_grad():
            steps, batch, tokens = q.shape[0], q.shape[1], q.shape[2]
            sops = float(_nonzero(q).sum() + _nonzero(k).sum())
            heads = self.heads
            if self.mode == "v2":
                macs = float(steps * batch * heads)
            else:
                macs = float(steps * batch * heads * tokens
                             + batch * heads * tokens * steps * (steps + 1) // 2)
        return {"macs": macs, "sops": sops, "products": []}


class _ThresholdScaled(nn.Module):
    """Runs ``neuron`` on ``x * factor``: a threshold of ``v_th / factor`` for neurons whose
    state is linear in the input with a zero reset potential (fallback for neurons whose
    threshold cannot be set directly)."""

    def __init__(self, neuron: nn.Module, factor: float) -> None:
        super().__init__()
        self.neuron, self.factor = neuron, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x * self.factor)


def neuron_with_threshold(neuron: NeuronBuilder, threshold: float) -> nn.Module:
    """A neuron from ``neuron`` firing at ``threshold``.

    A workbench neuron whose ``dynamics`` is a named tuple with ``v_th`` (every ``wb_core``
    neuron) gets the threshold replaced, keeping leak, reset and surrogate. Any other neuron is
    fed ``x · (its threshold / threshold)``, equivalent for a zero reset potential.
    """
    n = neuron()
    dynamics = getattr(n, "dynamics", None)
    if dynamics is not None and hasattr(dynamics, "_replace") and hasattr(dynamics, "v_th"):
        n.dynamics = dynamics._replace(v_th=float(threshold))
        return n
    own = float(getattr(n, "threshold", 1.0))
    return _ThresholdScaled(n, own / float(threshold))


class SSA(_SpikingAttention):
    """Spikformer's spiking self-attention.

    ``attn = Q K^T · scale`` per head, ``Y = SN_0.5(attn V)`` (heads merged), then the output
    projection ``Linear -> BN -> SN``.

    Parameters
    ----------
    dim, heads, neuron
        As for :class:`SSSA`.
    scale : float
        Factor on ``Q K^T`` (Spikformer: 0.125).
    attn_threshold : float
        Threshold of the neuron after ``attn V`` (Spikformer: 0.5).
    """

    def __init__(self, dim: int, heads: int, neuron: NeuronBuilder, *, scale: float = 0.125,
                 attn_threshold: float = 0.5) -> None:
        super().__init__(dim, heads, neuron)
        self.scale = float(scale)
        self.attn_neuron = neuron_with_threshold(neuron, attn_threshold)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attn V)`` with heads merged ``[T, B, N, D]`` (before the neuron) and the scores
        ``attn [T, B, h, N, N]``."""
        qh, kh, vh = (head_split(t, self.heads) for t in (q, k, v))
        attn = (qh @ kh.transpose(-1, -2)) * self.scale
        return head_merge(attn @ vh), attn

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        self._check(x)
        q, k, v = self.q(x), self.k(x), self.v(x)
        y, attn = self.attend(q, k, v)
        if self.count_ops:
            self.last_ops = self.core_ops(q, k, v, attn)
        maps: dict = {}
        if self.record_maps:
            maps = {"kind": "ssa", "attention": attn.detach()}
        return self.proj(self.attn_neuron(y)), maps

    def core_ops(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 attn: torch.Tensor) -> dict:
        """Exact counts (docs/energy.md): one AC per non-zero product term of ``Q K^T``
        (``sum((Q≠0) @ (K≠0)^T)``) and of ``attn V`` (``sum((attn≠0) @ (V≠0))``: V is
        binary, so each term adds an ``attn`` entry, no multiply); both products are listed in
        ``products`` for the meter's ``rate`` mode. The constant ``scale`` folds into the
        attention neuron's threshold: no MACs."""
        qh, kh, vh = (head_split(t, self.heads) for t in (q, k, v))
        products = [spike_product_ops(qh, kh.transpose(-1, -2)), spike_product_ops(attn, vh)]
        return {"macs": 0.0, "sops": sum(p["terms"] for p in products), "products": products}


# -- factories (BlockSpec contract: factory(in_shapes, **params)) --------------------------------


def sssa(in_shapes: list[Shape], neuron: NeuronBuilder, heads: int = 4, mode: str = "train_v1",
         salience_norm: str = "rate", sacc_surrogate_norm: bool = True,
         time_steps: int = 4, threshold_units: str = "std",
         threshold_rule: str = "selective") -> SSSA:
    _, dim = need_tokens(in_shapes, "SSSA")
    return SSSA(dim, heads, neuron, mode=mode, salience_norm=salience_norm,
                sacc_surrogate_norm=sacc_surrogate_norm, time_steps=time_steps,
                threshold_units=threshold_units, threshold_rule=threshold_rule)


def ssa(in_shapes: list[Shape], neuron: NeuronBuilder, heads: int = 4, scale: float = 0.125,
        attn_threshold: float = 0.5) -> SSA:
    _, dim = need_tokens(in_shapes, "SSA")
    return SSA(dim, heads, neuron, scale=scale, attn_threshold=attn_threshold)


ATTENTIONS: dict[str, Callable[..., nn.Module]] = {"sssa": SSSA, "ssa": SSA}
