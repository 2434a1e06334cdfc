"""The ``wb_q_snn.q_snn`` compression pass: Q-SNN with weight-spike dual regulation.

Steps (docs/q_snn.md explains each):

1. rewrite the graph: every neuron becomes the quantised-membrane LIF ``wb_q_snn.qlif``
   (``wb_core.lif_b`` with the same B dynamics when ``quantize_membrane`` is off), its
   threshold matched to the trained weights (:mod:`wb_q_snn.swap`);
2. compile it and copy the trained weights (state-dict names are unchanged);
3. fake-quantise: the first layer (every conv/linear fed the raw input) and the last one with
   the 8-bit rule, every one in between with the binary quantiser (WS-DR or plain sign);
4. fine-tune with TET + spike regulation, the estimator's ``(k, t)`` set before every epoch;
5. freeze: attach the integer records, so the project saves 1-bit / 8-bit packed weights.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import torch
from torch.nn.utils import parametrize

from wb_q_snn.binarize import BinaryWeight, EightBitWeight, estimator_schedule, stem_scale_value
from wb_q_snn.regulation import QSNNLoss, RateRecorder
from wb_q_snn.swap import replacement_neuron, swap_neurons
from workbench.pluginhost import (
    CompressionContext,
    CompressionResult,
    attach,
    is_neuron_module,
    layer_name,
    trace_layers,
)

_WEIGHT_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


def weight_layers(model: Any) -> list[tuple[str, str, torch.nn.Module]]:
    """``(node id, qualified name, module)`` of every conv/linear layer, in execution order."""
    found = []
    for node_id in model.order:
        for name, module in model.layers[node_id].named_modules():
            if isinstance(module, _WEIGHT_LAYERS):
                found.append((node_id, f"{node_id}.{name}" if name else node_id, module))
    return found


def _copy_weights(ctx: CompressionContext, source: torch.nn.Module,
                  target: torch.nn.Module) -> list[str]:
    """Load ``source``'s state into ``target``; only neuron-owned entries may differ. Returns
    the dropped names (state of the replaced neurons)."""
    neuron_prefixes = tuple(f"{q}." for q, m in target.named_modules() if q and is_neuron_module(m))
    state = source.state_dict()
    missing, unexpected = target.load_state_dict(state, strict=False)
    lost = [k for k in missing if not k.startswith(neuron_prefixes)]
    if lost:
        raise ctx.fail(f"the network with Q-SNN neurons has no trained value for {lost[0]!r}; "
                       "the graph's neuron layers own parameters the method cannot carry over",
                       node=lost[0].split(".")[1] if lost[0].startswith("layers.") else "")
    return list(unexpected)


def apply(ctx: CompressionContext, *, ws_dr: bool = True, membrane_bits: int = 8,
          spike_reg: float = 5e-3, stem_scale: str = "max", finetune_epochs: int = 4,
          lr: float = 1e-3, quantize_membrane: bool = True
          ) -> Generator[Any, None, CompressionResult]:
    """Binarise, quantise the membrane, fine-tune and freeze (Q-SNN; see docs/q_snn.md)."""
    x, _ = next(iter(ctx.batches(1)))
    layers = weight_layers(ctx.model)
    modules = {qualified: module for _, qualified, module in layers}
    # the 8-bit layers: every one fed the raw input (both GL-SPS first-stage convs) and the last
    ends = [layer_name(n) for n in trace_layers(ctx.model, x).ends]
    if len(layers) <= len(ends):
        names = ", ".join(q for _, q, _ in layers) or "none"
        raise ctx.fail(f"Q-SNN keeps the first layer (every one fed the input) and the last "
                       f"conv/linear layer at 8 bits and binarises those between, but this "
                       f"network has {len(layers)} ({names}): nothing to binarise. Add a hidden "
                       "spiking layer", node=layers[-1][0] if layers else "")
    for qualified in ends:
        m = stem_scale_value(modules[qualified].weight, stem_scale)
        if not m > 0:
            raise ctx.fail(f"layer {qualified!r} has {stem_scale}(w) = {m:g}, so the 8-bit rule "
                           "round(w/m·127) is undefined; use stem_scale='absmax'",
                           param="stem_scale")

    graph = ctx.graph.copy()
    neuron = replacement_neuron(quantize_membrane, membrane_bits)
    thresholds = swap_neurons(graph, ctx.lookup, neuron)
    yield ctx.log(f"neurons -> {neuron['id']} in {len(thresholds)} place(s): "
                  + ", ".join(f"{place} (theta {theta:g})" if theta is not None else place
                              for place, theta in thresholds.items()))
    unmatched = [place for place, theta in thresholds.items() if theta is None]
    if unmatched:
        yield ctx.log(f"the input gain of the neuron in {', '.join(unmatched)} could not be "
                      "measured: its replacement keeps theta 1, so the trained weights may "
                      "drive it harder or softer than before", "warning")
    model = ctx.compile(graph)
    dropped = _copy_weights(ctx, ctx.model, model)

    new_layers = weight_layers(model)
    binary: dict[str, BinaryWeight] = {}
    eight_bit: dict[str, EightBitWeight] = {}
    for _, qualified, module in new_layers:
        fq: BinaryWeight | EightBitWeight
        if qualified in ends:
            fq = eight_bit[qualified] = EightBitWeight(stem_scale)
        else:
            fq = binary[qualified] = BinaryWeight(ws_dr)
        parametrize.register_parametrization(module, "weight", fq)
    yield ctx.log(f"8-bit: {', '.join(eight_bit)}; 1-bit ({'WS-DR' if ws_dr else 'sign'}): "
                  f"{', '.join(binary)}")

    schedule: list[dict[str, float]] = []

    def on_epoch(epoch: int) -> None:
        k, t = estimator_schedule(epoch, finetune_epochs)
        for fq in binary.values():
            fq.set_schedule(k, t)
        schedule.append({"epoch": epoch, "k": k, "t": t})

    history: list[dict[str, float]] = []
    with RateRecorder(model) as recorder:
        rates_before = recorder.measure(x)
        regulated = recorder.names[1:-1]
        if finetune_epochs > 0:
            history = yield from ctx.fine_tune(model, epochs=finetune_epochs, lr=lr,
                                               loss=QSNNLoss(recorder, spike_reg),
                                               on_epoch=on_epoch, label="Q-SNN fine-tune")
        rates_after = recorder.measure(x)
    if spike_reg > 0 and not regulated:
        yield ctx.log("spike regulation had no layer to act on: it skips the first and the last "
                      "neuron layer, and this network has fewer than three", "warning")

    report = _freeze(ctx, new_layers, {**binary, **eight_bit})
    report.update({
        "neuron": neuron,
        "neurons_replaced": list(thresholds),
        "thresholds": thresholds,
        "dropped_neuron_state": dropped,
        "binarized": list(binary),
        "eight_bit": list(eight_bit),
        "estimator": "ws_dr" if ws_dr else "sign_ste",
        "stem_scale": stem_scale,
        "spike_reg": spike_reg,
        "spike_reg_layers": regulated,
        "spike_rates": {"before": rates_before, "after": rates_after},
        "schedule": schedule,
        "finetune": history,
    })
    return CompressionResult(model, graph, report)


def _freeze(ctx: CompressionContext, layers: list[tuple[str, str, torch.nn.Module]],
            quantizers: dict[str, BinaryWeight | EightBitWeight]) -> dict[str, Any]:
    """Drop the parametrisations (the latent float weight comes back under ``weight``) and
    attach the integer records; returns per-layer bits and, for 8-bit layers, the code range."""
    layer_bits: dict[str, int] = {}
    code_range: dict[str, list[int]] = {}
    for _node, qualified, module in layers:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        fq = quantizers[qualified]
        try:
            quant = fq.freeze(module.weight)
        except ValueError as exc:
            raise ctx.fail(f"layer {qualified!r} cannot be frozen: {exc}; use "
                           "stem_scale='absmax'", param="stem_scale") from None
        attach(module, quant)
        layer_bits[qualified] = quant.bits
        if isinstance(fq, EightBitWeight):
            ints = quant.ints
            code_range[qualified] = [int(ints.min()), int(ints.max())]
    return {"layer_bits": layer_bits, "eight_bit_codes": code_range}
