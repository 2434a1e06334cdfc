"""The compression passes of QP-SNN (docs/qp_snn.md): ReScaW and vanilla uniform quantisation,
SVS and L1 structured pruning. Each is a generator ``apply(ctx, **params)`` run by
:func:`workbench.core.compress.compress`; it yields progress and returns a
:class:`~workbench.core.compress.CompressionResult`.

Quantisation fine-tunes with fake-quantised weights and then freezes them, so the model that
``compress`` measures is the frozen one. Pruning scores the kernels, rebuilds the network with
fewer kernels and fine-tunes it; a quantised network stays quantised ("quantise first, then
prune", the paper's order): the kept codes are sliced and, when fine-tuning, re-quantised with
the same quantiser at the recorded bit width.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import torch
from torch import nn

from wb_qp_snn import quantizers as qz
from wb_qp_snn.scores import keep_count, keep_indices, l1_scores, svs_scores
from wb_qp_snn.surgery import Prunable, find_prunable, prune_network
from workbench.pluginhost import (
    CompiledNetwork,
    CompressionContext,
    CompressionResult,
    CompressionSpec,
    QuantizedTensor,
    quantized_modules,
)

Events = Generator[Any, None, CompressionResult]
#: the quantisation passes of this plugin, whose settings a later pruning pass reuses
_OWN_QUANTIZERS = {"wb_qp_snn.rescaw": "rescaw", "wb_qp_snn.uniform": "uniform"}


def synaptic_layers(model: CompiledNetwork) -> list[tuple[str, nn.Module]]:
    """Conv and linear layers in execution order, as ``(qualified name, module)``."""
    found = []
    for node_id in model.order:
        for name, module in model.layers[node_id].named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                found.append((f"{node_id}.{name}" if name else node_id, module))
    return found


# -- quantisation ----------------------------------------------------------------------------------
def rescaw(ctx: CompressionContext, *, bits: int, gamma: str, granularity: str, ste: str,
           percentile: float, keep_first_last: bool, finetune_epochs: int, lr: float) -> Events:
    """ReScaW quantisation (docs/qp_snn.md, Quantisation)."""
    config = {"method": "rescaw", "gamma": gamma, "granularity": granularity, "ste": ste,
              "percentile": percentile}
    return (yield from _quantize(ctx, bits, config, keep_first_last, finetune_epochs, lr))


def uniform(ctx: CompressionContext, *, bits: int, ste: str, keep_first_last: bool,
            finetune_epochs: int, lr: float) -> Events:
    """The vanilla uniform quantiser, weights clipped to [-1, 1] (docs/qp_snn.md)."""
    config = {"method": "uniform", "ste": ste}
    return (yield from _quantize(ctx, bits, config, keep_first_last, finetune_epochs, lr))


def _quantize(ctx: CompressionContext, bits: int, config: dict[str, Any],
              keep_first_last: bool, epochs: int, lr: float) -> Events:
    model = ctx.model
    layers = synaptic_layers(model)
    if not layers:
        raise ctx.fail("the network has no convolution or linear layer whose weights could be "
                       "quantised")
    full = {layers[0][0], layers[-1][0]} if keep_first_last else set()
    targets = {name: module for name, module in layers if name not in full}
    if not targets:
        raise ctx.fail(f"the network has only {len(layers)} conv/linear layer(s), and "
                       "keep_first_last keeps the first and the last at full precision, so "
                       "nothing is left to quantise; switch keep_first_last off",
                       param="keep_first_last")
    yield ctx.log(f"quantising {len(targets)} layer(s) to {bits} bits ({config['method']}); "
                  f"full precision: {', '.join(sorted(full)) or 'none'}")
    history = yield from _fine_tune(ctx, model, {m: bits for m in targets.values()}, config,
                                    epochs, lr)
    report_layers = [_quant_summary(name, module.weight_quant, config)
                     for name, module in targets.items()]
    report = {"quantizer": config["method"], "bits": bits,
              **{k: v for k, v in config.items() if k != "method"},
              "keep_first_last": keep_first_last, "full_precision": sorted(full),
              "layers": report_layers, "fine_tune": history}
    return CompressionResult(model, None, report)


def _fine_tune(ctx: CompressionContext, model: nn.Module, bits: dict[nn.Module, int],
               config: dict[str, Any] | None, epochs: int, lr: float, *,
               frozen: Sequence[nn.Module] = ()) -> Generator[Any, None, list[dict[str, float]]]:
    """Fine-tune ``model`` with the ``bits`` layers fake-quantised by ``config``, then freeze
    them. ``frozen`` layers (quantised by an unknown quantiser) keep their weights fixed."""
    quant_args = {k: v for k, v in (config or {}).items() if k != "ste"}
    history: list[dict[str, float]] = []
    if epochs > 0:
        for module, b in bits.items():
            qz.fake_quantize(module, b, **(config or {}))
        for module in frozen:
            module.weight.requires_grad_(False)
        try:
            history = yield from ctx.fine_tune(model, epochs=epochs, lr=lr,
                                               label="fine-tune (fake-quantised)"
                                               if bits else "fine-tune")
        finally:
            for module in frozen:
                module.weight.requires_grad_(True)
            for module in bits:
                qz.unfake(module)
    for module, b in bits.items():
        qz.freeze(module, b, **quant_args)
    return history


def _quant_summary(name: str, quant: QuantizedTensor, config: dict[str, Any]) -> dict[str, Any]:
    gamma = quant.scale.double() * qz.intervals(quant.bits)
    used = qz.levels_used(quant).double()
    return {"layer": name, "bits": quant.bits, "levels": quant.levels,
            "levels_used_mean": round(float(used.mean()), 2),
            "gamma_min": float(gamma.min()), "gamma_max": float(gamma.max()),
            "granularity": config.get("granularity", "fixed (γ = 1)")}


# -- pruning ---------------------------------------------------------------------------------------
def svs_prune(ctx: CompressionContext, *, ratio: float, batches: int, eps: float,
              prune_last_conv: bool, finetune_epochs: int, lr: float) -> Events:
    """Structured pruning by the SVS criterion (docs/qp_snn.md, Structured pruning)."""
    return (yield from _prune(ctx, "svs", ratio, prune_last_conv, finetune_epochs, lr,
                              batches=batches, eps=eps))


def l1_prune(ctx: CompressionContext, *, ratio: float, prune_last_conv: bool,
             finetune_epochs: int, lr: float) -> Events:
    """Structured pruning by kernel L1 norm (the baseline)."""
    return (yield from _prune(ctx, "l1", ratio, prune_last_conv, finetune_epochs, lr))


def _prune(ctx: CompressionContext, criterion: str, ratio: float, prune_last_conv: bool,
           epochs: int, lr: float, *, batches: int = 0, eps: float = 0.0) -> Events:
    if not 0.0 < ratio < 1.0:
        raise ctx.fail(f"ratio is the fraction of kernels removed per layer and must lie "
                       f"strictly between 0 and 1, got {ratio}", param="ratio")
    model = ctx.model
    plans, skipped = find_prunable(ctx.graph, model, ctx.lookup, prune_last_conv)
    if not plans:
        raise _nothing_to_prune(ctx, skipped)
    for plan in plans:
        if keep_count(plan.width, ratio) < 1:
            raise ctx.fail(f"ratio {ratio} would remove all {plan.width} kernels of conv "
                           f"{plan.node!r}; use a smaller ratio", param="ratio")
    yield ctx.log(f"scoring the kernels of {', '.join(p.node for p in plans)} ({criterion})")
    if criterion == "svs":
        scores = yield from _svs(ctx, model, plans, batches, eps)
    else:
        scores = {p.node: l1_scores(_conv_of(model, p.node).weight) for p in plans}
    keep = {node: keep_indices(s, ratio) for node, s in scores.items()}
    pruned, graph = prune_network(model, ctx.graph, keep, {p.node: p for p in plans},
                                  ctx.compile)
    yield ctx.log("pruned " + ", ".join(f"{p.node} {p.width}->{keep[p.node].numel()}"
                                        for p in plans))
    quantised = quantized_modules(pruned)
    config = _recorded_quantizer(ctx)
    bits = {m: m.weight_bits for m in quantised.values()} if config else {}
    frozen = [] if config else list(quantised.values())
    history = yield from _fine_tune(ctx, pruned, bits, config, epochs, lr, frozen=frozen)
    report = {
        "criterion": criterion, "ratio": ratio,
        **({"batches": batches, "eps": eps} if criterion == "svs" else {}),
        "layers": [_prune_summary(p, keep[p.node], scores[p.node]) for p in plans],
        "not_pruned": skipped,
        # named as in the quantisation report ("conv2.conv"), without CompiledNetwork's "layers."
        "quantized_layers": {name.removeprefix("layers."): m.weight_bits
                             for name, m in quantized_modules(pruned).items()},
        "requantized_with": config if (config and epochs > 0) else None,
        "fine_tune": history,
    }
    return CompressionResult(pruned, graph, report)


def _nothing_to_prune(ctx: CompressionContext, skipped: dict[str, str]):
    if not skipped:
        return ctx.fail("this method prunes convolution kernels (output channels) and this "
                        "network has no convolution layer; use a quantisation method instead")
    reasons = "; ".join(f"{node}: {why}" for node, why in skipped.items())
    only_last = all("prune_last_conv" in why for why in skipped.values())
    return ctx.fail(f"no convolution layer can be pruned ({reasons})",
                    param="prune_last_conv" if only_last else "")


def _conv_of(model: CompiledNetwork, node_id: str) -> nn.Conv2d:
    return next(m for m in model.layers[node_id].modules() if isinstance(m, nn.Conv2d))


def _svs(ctx: CompressionContext, model: CompiledNetwork, plans: list[Prunable], batches: int,
         eps: float) -> Generator[Any, None, dict[str, torch.Tensor]]:
    """Mean SVS score per kernel over ``batches`` training mini-batches (eval mode, no grad)."""
    sums = {p.node: torch.zeros(p.width, dtype=torch.float64) for p in plans}
    seen = 0

    def recorder(node_id: str):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            sums[node_id] += svs_scores(out, eps).cpu() * out.shape[1]
        return hook

    handles = [model.layers[p.spike_node].register_forward_hook(recorder(p.node))
               for p in plans]
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
    return {node: total / seen for node, total in sums.items()}


def _recorded_quantizer(ctx: CompressionContext) -> dict[str, Any] | None:
    """The settings of the last quantisation pass, when it was one of this plugin's (then the
    pruned layers are re-quantised the same way); ``None`` otherwise."""
    for record in reversed(ctx.project.compression):
        spec = ctx.lookup.get(record.get("method", ""))
        if isinstance(spec, CompressionSpec) and spec.kind == "prune":
            continue
        method = _OWN_QUANTIZERS.get(record.get("method", ""))
        if method is None:
            return None
        params = record.get("params", {})
        config = {"method": method, "ste": params.get("ste", "paper")}
        if method == "rescaw":
            config.update(gamma=params.get("gamma", "mean"),
                          granularity=params.get("granularity", "channel"),
                          percentile=params.get("percentile", qz.PERCENTILE))
        return config
    return None


def _prune_summary(plan: Prunable, kept: torch.Tensor, scores: torch.Tensor) -> dict[str, Any]:
    return {"node": plan.node, "width_before": plan.width, "width_after": int(kept.numel()),
            "kept": kept.tolist(),
            "scores": {"min": float(scores.min()), "mean": float(scores.mean()),
                       "max": float(scores.max())}}
