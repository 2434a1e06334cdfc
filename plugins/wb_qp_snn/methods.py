"""The quantisation passes of QP-SNN (docs/qp_snn.md): ReScaW and vanilla uniform quantisation
(the pruning passes are in :mod:`wb_qp_snn.pruning`). Each is a generator ``apply(ctx, **params)`` run by
:func:`workbench.core.compress.compress`; it yields progress and returns a
:class:`~workbench.core.compress.CompressionResult`.

Quantisation fine-tunes with fake-quantised weights and then freezes them, so the model that
``compress`` measures is the frozen one. Pruning scores the kernels, rebuilds the network with
fewer kernels and fine-tunes it; a quantised network stays quantised ("quantise first, then
prune", the paper's order): the kept codes are sliced and, when fine-tuning, re-quantised with
the same quantiser at the recorded bit width (:func:`recorded_quantizer`, :func:`fine_tune`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from torch import nn

from wb_qp_snn import quantizers as qz
from workbench.pluginhost import (
    CompiledNetwork,
    CompressionContext,
    CompressionResult,
    CompressionSpec,
    QuantizedTensor,
    layer_name,
    trace_layers,
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


def first_and_last(ctx: CompressionContext, model: CompiledNetwork) -> list[str]:
    """The layers ``keep_first_last`` keeps: every one fed the raw input (both convs of a
    GL-SPS first stage) and the last one called, traced on one training batch."""
    x, _ = next(iter(ctx.batches(1)))
    return [layer_name(name) for name in trace_layers(model, x).ends]


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
    full = set(first_and_last(ctx, model)) if keep_first_last else set()
    targets = {name: module for name, module in layers if name not in full}
    if not targets:
        raise ctx.fail(f"the network has only {len(layers)} conv/linear layer(s), and "
                       "keep_first_last keeps the first and the last at full precision, so "
                       "nothing is left to quantise; switch keep_first_last off",
                       param="keep_first_last")
    yield ctx.log(f"quantising {len(targets)} layer(s) to {bits} bits ({config['method']}); "
                  f"full precision: {', '.join(sorted(full)) or 'none'}")
    history = yield from fine_tune(ctx, model, {m: bits for m in targets.values()}, config,
                                    epochs, lr)
    report_layers = [_quant_summary(name, module.weight_quant, config)
                     for name, module in targets.items()]
    report = {"quantizer": config["method"], "bits": bits,
              **{k: v for k, v in config.items() if k != "method"},
              "keep_first_last": keep_first_last, "full_precision": sorted(full),
              "layers": report_layers, "fine_tune": history}
    return CompressionResult(model, None, report)


def fine_tune(ctx: CompressionContext, model: nn.Module, bits: dict[nn.Module, int],
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


# -- shared with pruning.py ----------------------------------------------------------------------
def recorded_quantizer(ctx: CompressionContext) -> dict[str, Any] | None:
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
