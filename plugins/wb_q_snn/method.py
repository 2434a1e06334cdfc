"""The ``wb_q_snn.q_snn`` compression pass: Q-SNN with weight-spike dual regulation.

Steps (docs/q_snn.md explains each):

1. rewrite the graph: every neuron becomes the quantised-membrane LIF ``wb_q_snn.qlif``
   (``wb_core.lif_b`` with the same B dynamics when ``quantize_membrane`` is off);
2. compile it and copy the trained weights (state-dict names are unchanged);
3. fake-quantise: the first and the last conv/linear layer with the 8-bit rule, every one in
   between with the binary quantiser (WS-DR or plain sign);
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
from workbench.pluginhost import (
    CompressionContext,
    CompressionResult,
    Graph,
    NeuronSpec,
    attach,
    is_neuron_module,
)

QLIF_ID = "wb_q_snn.qlif"
#: the same LIF (B) dynamics without quantisation, for ``quantize_membrane=False``
PLAIN_LIF_B = {"id": "wb_core.lif_b",
               "params": {"lam": 0.5, "theta": 1.0, "reset": "hard", "detach_reset": False,
                          "surrogate": "triangle", "surrogate_alpha": 1.0}}
_WEIGHT_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


def replacement_neuron(quantize_membrane: bool, membrane_bits: int) -> dict[str, Any]:
    """The neuron choice every spiking layer gets."""
    if not quantize_membrane:
        return {"id": PLAIN_LIF_B["id"], "params": dict(PLAIN_LIF_B["params"])}
    return {"id": QLIF_ID, "params": {"membrane_bits": int(membrane_bits)}}


def swap_neurons(graph: Graph, lookup: Any, neuron: dict[str, Any]) -> list[str]:
    """Point every neuron of ``graph`` (in place) at ``neuron``: node parameters of kind
    ``neuron`` and nodes that are neurons themselves. Returns ``node.param`` names changed."""
    changed = []
    neuron_spec = lookup.get(neuron["id"])
    for node in graph.nodes:
        spec = lookup.get(node.spec)
        if spec is None:
            continue
        if isinstance(spec, NeuronSpec):
            node.spec = neuron["id"]
            node.params = dict(neuron["params"])
            node.spec_version = getattr(neuron_spec, "spec_version", 1)
            changed.append(node.id)
            continue
        for p in spec.params:
            if p.kind == "neuron":
                node.params[p.name] = {"id": neuron["id"], "params": dict(neuron["params"])}
                changed.append(f"{node.id}.{p.name}")
    return changed


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
    layers = weight_layers(ctx.model)
    if len(layers) < 3:
        names = ", ".join(q for _, q, _ in layers) or "none"
        raise ctx.fail(f"Q-SNN keeps the first and the last conv/linear layer at 8 bits and "
                       f"binarises those between, but this network has {len(layers)} ({names}): "
                       "nothing to binarise. Add a hidden spiking layer",
                       node=layers[-1][0] if layers else "")
    for _node, qualified, module in (layers[0], layers[-1]):
        m = stem_scale_value(module.weight, stem_scale)
        if not m > 0:
            raise ctx.fail(f"layer {qualified!r} has {stem_scale}(w) = {m:g}, so the 8-bit rule "
                           "round(w/m·127) is undefined; use stem_scale='absmax'",
                           param="stem_scale")

    graph = ctx.graph.copy()
    neuron = replacement_neuron(quantize_membrane, membrane_bits)
    changed = swap_neurons(graph, ctx.lookup, neuron)
    yield ctx.log(f"neurons -> {neuron['id']} in {len(changed)} place(s): {', '.join(changed)}")
    model = ctx.compile(graph)
    dropped = _copy_weights(ctx, ctx.model, model)

    new_layers = weight_layers(model)
    stem_and_head = {new_layers[0][1], new_layers[-1][1]}
    binary: dict[str, BinaryWeight] = {}
    eight_bit: dict[str, EightBitWeight] = {}
    for _, qualified, module in new_layers:
        fq: BinaryWeight | EightBitWeight
        if qualified in stem_and_head:
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
    regulated: list[str] = []
    with RateRecorder(model) as recorder:
        if finetune_epochs > 0:
            history = yield from ctx.fine_tune(model, epochs=finetune_epochs, lr=lr,
                                               loss=QSNNLoss(recorder, spike_reg),
                                               on_epoch=on_epoch, label="Q-SNN fine-tune")
        regulated = recorder.names[1:-1]
    if spike_reg > 0 and not regulated:
        yield ctx.log("spike regulation had no layer to act on: it skips the first and the last "
                      "neuron layer, and this network has fewer than three", "warning")

    report = _freeze(ctx, new_layers, {**binary, **eight_bit})
    report.update({
        "neuron": neuron,
        "neurons_replaced": changed,
        "dropped_neuron_state": dropped,
        "binarized": list(binary),
        "eight_bit": list(eight_bit),
        "estimator": "ws_dr" if ws_dr else "sign_ste",
        "stem_scale": stem_scale,
        "spike_reg": spike_reg,
        "spike_reg_layers": regulated,
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
