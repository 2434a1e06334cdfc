"""The pruning passes of QP-SNN (docs/qp_snn.md, Structured pruning): SVS and the L1 baseline.

Each is a generator ``apply(ctx, **params)`` run by :func:`workbench.core.compress.compress`.
It finds the groups of convs that must lose the same kernels (:mod:`wb_qp_snn.surgery`), gives
each group its ratio, scores the kernels, rebuilds the network with fewer kernels and
fine-tunes it. A quantised network stays quantised ("quantise first, then prune", the paper's
order): the kept codes are sliced and, when fine-tuning, re-quantised with the same quantiser at
the recorded bit width.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import torch

from wb_qp_snn.methods import fine_tune, recorded_quantizer
from wb_qp_snn.scores import keep_count, keep_indices, l1_scores, svs_scores
from wb_qp_snn.surgery import Prunable, find_prunable, prune_network, unit_module
from workbench.pluginhost import (
    CompiledNetwork,
    CompressionContext,
    CompressionResult,
    quantized_modules,
)

Events = Generator[Any, None, CompressionResult]
Ratio = float | list[float]


def svs_prune(ctx: CompressionContext, *, ratio: Ratio, batches: int, eps: float,
              prune_last_conv: bool, finetune_epochs: int, lr: float) -> Events:
    """Structured pruning by the SVS criterion."""
    return (yield from _prune(ctx, "svs", ratio, prune_last_conv, finetune_epochs, lr,
                              batches=batches, eps=eps))


def l1_prune(ctx: CompressionContext, *, ratio: Ratio, prune_last_conv: bool,
             finetune_epochs: int, lr: float) -> Events:
    """Structured pruning by kernel L1 norm (the baseline)."""
    return (yield from _prune(ctx, "l1", ratio, prune_last_conv, finetune_epochs, lr))


def group_ratios(ratio: Ratio, plans: list[Prunable]) -> list[float]:
    """One ratio per group: ``ratio`` for every group, or the list, one entry per group in
    network order (0 keeps a group whole). ``ValueError`` says what is wrong."""
    if not isinstance(ratio, list):
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio is the fraction of kernels removed per layer and must lie "
                             f"strictly between 0 and 1, got {ratio}")
        return [float(ratio)] * len(plans)
    if len(ratio) != len(plans):
        names = "; ".join(f"{i + 1}. {_label(p)}" for i, p in enumerate(plans))
        raise ValueError(f"ratio lists {len(ratio)} value(s), but the network has {len(plans)} "
                         f"prunable layer(s) or group(s); give one ratio, or one per group in "
                         f"this order: {names}")
    bad = [r for r in ratio if not 0.0 <= r < 1.0]
    if bad:
        raise ValueError(f"every ratio in the list must lie in [0, 1) (0 keeps the group "
                         f"whole), got {bad[0]}")
    return [float(r) for r in ratio]


def _label(plan: Prunable) -> str:
    more = len(plan.members) - 1
    return plan.name + (f" (+{more} conv{'s' if more > 1 else ''} sharing its channels)"
                        if more else "")


def _prune(ctx: CompressionContext, criterion: str, ratio: Ratio, prune_last_conv: bool,
           epochs: int, lr: float, *, batches: int = 0, eps: float = 0.0) -> Events:
    model = ctx.model
    plans, skipped = find_prunable(ctx.graph, model, ctx.lookup, prune_last_conv)
    if not plans:
        raise _nothing_to_prune(ctx, skipped)
    try:
        ratios = dict(zip([p.name for p in plans], group_ratios(ratio, plans), strict=True))
    except ValueError as exc:
        raise ctx.fail(str(exc), param="ratio") from None
    for plan in plans:
        if keep_count(plan.width, ratios[plan.name]) < 1:
            raise ctx.fail(f"ratio {ratios[plan.name]} would remove all {plan.width} kernels "
                           f"of {_label(plan)}; use a smaller ratio", param="ratio")
    yield ctx.log(f"scoring the kernels of {', '.join(_label(p) for p in plans)} ({criterion})")
    if criterion == "svs":
        scores = yield from _svs(ctx, model, plans, batches, eps)
    else:
        scores = {p.name: _group_mean([l1_scores(_conv(model, m).weight) for m in p.members])
                  for p in plans}
    keep = {name: keep_indices(s, ratios[name]) for name, s in scores.items()}
    pruned, graph = prune_network(model, ctx.graph, keep, {p.name: p for p in plans},
                                  ctx.compile)
    yield ctx.log("pruned " + ", ".join(f"{p.name} {p.width}->{keep[p.name].numel()}"
                                        for p in plans))
    quantised = quantized_modules(pruned)
    config = recorded_quantizer(ctx)
    bits = {m: m.weight_bits for m in quantised.values()} if config else {}
    frozen = [] if config else list(quantised.values())
    history = yield from fine_tune(ctx, pruned, bits, config, epochs, lr, frozen=frozen)
    report = {
        "criterion": criterion, "ratio": ratio,
        **({"batches": batches, "eps": eps} if criterion == "svs" else {}),
        "layers": [_summary(p, ratios[p.name], keep[p.name], scores[p.name]) for p in plans],
        "not_pruned": skipped,
        # named as in the quantisation report ("conv2.conv"), without CompiledNetwork's "layers."
        "quantized_layers": {name.removeprefix("layers."): m.weight_bits
                             for name, m in quantized_modules(pruned).items()},
        "requantized_with": config if (config and epochs > 0) else None,
        "fine_tune": history,
    }
    return CompressionResult(pruned, graph, report)


def _group_mean(scores: list[torch.Tensor]) -> torch.Tensor:
    """A group's score per channel: the mean of its convs' scores (ranks like their sum)."""
    return torch.stack(scores).mean(0)


def _nothing_to_prune(ctx: CompressionContext, skipped: dict[str, str]):
    if not skipped:
        return ctx.fail("this method prunes convolution kernels (output channels) and this "
                        "network has no convolution layer; use a quantisation method instead")
    reasons = "; ".join(f"{node}: {why}" for node, why in skipped.items())
    only_last = all("prune_last_conv" in why for why in skipped.values())
    return ctx.fail(f"no convolution layer can be pruned ({reasons})",
                    param="prune_last_conv" if only_last else "")


def _conv(model: CompiledNetwork, unit: str) -> torch.nn.Conv2d:
    return next(m for m in unit_module(model, unit).modules()
                if isinstance(m, torch.nn.Conv2d))


def _svs(ctx: CompressionContext, model: CompiledNetwork, plans: list[Prunable], batches: int,
         eps: float) -> Generator[Any, None, dict[str, torch.Tensor]]:
    """Mean SVS score per kernel over ``batches`` training mini-batches (eval mode, no grad):
    each conv scored on its spike map, a group's score the mean of its convs'."""
    sums = {m: torch.zeros(p.width, dtype=torch.float64) for p in plans for m in p.members}
    seen = 0

    def recorder(member: str):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            sums[member] += svs_scores(out, eps).cpu() * out.shape[1]
        return hook

    handles = [unit_module(model, p.spike_units[m]).register_forward_hook(recorder(m))
               for p in plans for m in p.members]
    model.eval()
    try:
        for i, (x, _) in enumerate(ctx.batches(batches)):
            ctx.check_cancel()
            with torch.no_grad():  # not around the yield: grad mode is global to the thread
                model(x)
            seen += x.shape[1]
            yield ctx.progress(i + 1, batches, "scoring kernels (SVS)")
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        raise ctx.fail("the training split gave no batch to score the kernels on",
                       param="batches")
    return {p.name: _group_mean([sums[m] / seen for m in p.members]) for p in plans}


def _summary(plan: Prunable, ratio: float, kept: torch.Tensor, scores: torch.Tensor
             ) -> dict[str, Any]:
    return {"node": plan.name, "members": plan.members, "ratio": ratio,
            "width_before": plan.width, "width_after": int(kept.numel()),
            "kept": kept.tolist(),
            "scores": {"min": float(scores.min()), "mean": float(scores.mean()),
                       "max": float(scores.max())}}
