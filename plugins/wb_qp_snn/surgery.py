"""Structured pruning surgery: which conv layers can lose kernels, and removing them for real.

A conv node is prunable when its output reaches exactly one conv or linear layer through layers
that keep the channels apart (pooling, batch norm, neurons, dropout, flatten) and no branch or
residual add. Pruning rewrites the node's ``out_channels``, compiles the smaller graph and
copies the kept slices: the kernels and their bias / batch-norm entries, any batch norm on the
way, and the consumer's matching input channels (after a flatten, its columns for the kept
channels × H×W positions). Quantised weights keep their codes and scales (sliced).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from workbench.pluginhost import CompiledNetwork, Graph, NeuronSpec, QuantizedTensor, attach

CONVS = ("wb_core.spiking_conv", "wb_core.conv2d")
CONSUMERS = (*CONVS, "wb_core.linear", "wb_core.spiking_linear")
PASS_THROUGH = ("wb_core.max_pool", "wb_core.avg_pool", "wb_core.batch_norm",
                "wb_core.dropout", "wb_core.flatten")


@dataclass
class Prunable:
    """A conv node that can lose kernels, and what its channels flow into."""

    node: str
    width: int  # output channels now
    path: list[str]  # channel-preserving nodes between the conv and the consumer
    consumer: str  # the conv or linear node whose input channels follow
    flatten: str | None  # the flatten node on the path, if any
    positions: int  # H×W per channel where it is flattened (1 without a flatten)
    spike_node: str  # node whose output is the kernel's spike map (for SVS)


def find_prunable(graph: Graph, model: CompiledNetwork, lookup,
                  prune_last_conv: bool = False) -> tuple[list[Prunable], dict[str, str]]:
    """Prunable conv nodes in topological order, and ``{node: why not}`` for the other convs."""
    order = graph.topological_order()
    convs = [n for n in order if graph.node(n).spec in CONVS]
    found: list[Prunable] = []
    skipped: dict[str, str] = {}
    for node_id in convs:
        if node_id == convs[-1] and not prune_last_conv:
            skipped[node_id] = ("the last conv layer (feeding the classifier) keeps all its "
                                "kernels, as in the paper; set prune_last_conv to prune it")
            continue
        plan = _follow(graph, model, lookup, node_id)
        if isinstance(plan, str):
            skipped[node_id] = plan
        else:
            found.append(plan)
    return found, skipped


def _is_neuron(graph: Graph, lookup, node_id: str) -> bool:
    return isinstance(lookup.get(graph.node(node_id).spec), NeuronSpec)


def _follow(graph: Graph, model: CompiledNetwork, lookup, conv: str) -> Prunable | str:
    """Walk from ``conv`` to the layer that consumes its channels; a string says why not."""
    path: list[str] = []
    flatten = None
    positions = 1
    # SVS scores the first spike map after the conv; without a neuron, the conv's own output
    spike_node = conv if graph.node(conv).spec == "wb_core.spiking_conv" else None
    current = conv
    while True:
        outs = graph.outputs_of(current)
        if not outs:
            return "its output is the network's output, no later layer to shrink with it"
        if len(outs) > 1:
            return (f"its output feeds {len(outs)} layers (a branch); removing kernels there "
                    "needs one channel selection shared by every branch")
        nxt = outs[0]
        spec = graph.node(nxt).spec
        if len(graph.inputs_of(nxt)) > 1:
            return f"its output reaches {nxt!r}, which has several inputs (a residual add)"
        if spec in CONSUMERS:
            return Prunable(conv, int(model.report.nodes[conv].out_shape[0]), path, nxt,
                            flatten, positions, spike_node or conv)
        if spec in PASS_THROUGH or _is_neuron(graph, lookup, nxt):
            if spec == "wb_core.flatten":
                if flatten is not None:
                    return f"its output is flattened twice (at {flatten!r} and {nxt!r})"
                shape = model.report.nodes[nxt].in_shapes[0]
                if len(shape) != 3:
                    return f"{nxt!r} flattens a {list(shape)} input, not [C, H, W]"
                flatten, positions = nxt, int(shape[1] * shape[2])
            if spike_node is None and _is_neuron(graph, lookup, nxt):
                spike_node = nxt
            path.append(nxt)
            current = nxt
            continue
        return (f"its output goes through {nxt!r} ({spec}), which the pruner cannot follow "
                "channel by channel")


# -- the surgery -----------------------------------------------------------------------------------
def prune_network(model: CompiledNetwork, graph: Graph, keep: dict[str, torch.Tensor],
                  plans: dict[str, Prunable],
                  compile_fn: Callable[[Graph], CompiledNetwork]
                  ) -> tuple[CompiledNetwork, Graph]:
    """Remove every kernel of ``plans[node]`` not in ``keep[node]`` (ascending indices).

    Returns the smaller network (the kept weights, statistics and quantisation records copied)
    and its graph.
    """
    new_graph = graph.copy()
    for node_id, kept in keep.items():
        new_graph.node(node_id).params["out_channels"] = int(kept.numel())
    new_model = compile_fn(new_graph)
    out_idx: dict[str, torch.Tensor] = {}
    in_idx: dict[str, torch.Tensor] = {}
    path_idx: dict[str, torch.Tensor] = {}
    for node_id, kept in keep.items():
        plan = plans[node_id]
        kept = kept.to(torch.int64)
        out_idx[node_id] = kept
        columns = (kept[:, None] * plan.positions
                   + torch.arange(plan.positions)[None, :]).reshape(-1)
        flattened = False
        for step in plan.path:
            flattened = flattened or step == plan.flatten
            path_idx[step] = columns if flattened else kept
        in_idx[plan.consumer] = columns if plan.flatten else kept
    for node_id in new_model.order:
        _carry(model.layers[node_id], new_model.layers[node_id], out=out_idx.get(node_id),
               inp=in_idx.get(node_id), channels=path_idx.get(node_id), node=node_id)
    return new_model, new_graph


def _take(t: torch.Tensor, dim: int, index: torch.Tensor | None) -> torch.Tensor:
    return t if index is None else t.index_select(dim, index)


def _carry(old: nn.Module, new: nn.Module, *, out, inp, channels, node: str) -> None:
    """Copy ``old``'s state into the smaller ``new``, slicing what the pruning changed."""
    old_modules = dict(old.named_modules())
    with torch.no_grad():
        for name, target in new.named_modules():
            source = old_modules[name]
            for attr, value in [*target.named_parameters(recurse=False),
                                *target.named_buffers(recurse=False)]:
                sliced = _slice(source, attr, getattr(source, attr), out=out, inp=inp,
                                channels=channels)
                if tuple(sliced.shape) != tuple(value.shape):
                    raise ValueError(f"node {node!r}: cannot carry {name or 'the layer'}.{attr} "
                                     f"{list(sliced.shape)} into {list(value.shape)}")
                value.copy_(sliced)
            quant = getattr(source, "weight_quant", None)
            if isinstance(quant, QuantizedTensor):
                codes = quant.codes
                scale = quant.scale
                if isinstance(source, nn.Conv2d):
                    codes, scale = _take(codes, 0, out), _take(scale, 0, out)
                if isinstance(source, (nn.Conv2d, nn.Linear)):
                    codes = _take(codes, 1, inp)
                attach(target, QuantizedTensor(codes, quant.bits, scale, quant.q_step,
                                               quant.q_zero))


def _slice(module: nn.Module, attr: str, value: torch.Tensor, *, out, inp, channels
           ) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        if attr == "weight":
            return _take(_take(value, 0, out), 1, inp)
        if attr == "bias":
            return _take(value, 0, out)
    if isinstance(module, nn.Linear) and attr == "weight":
        return _take(value, 1, inp)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and value.dim() == 1:
        return _take(value, 0, out if out is not None else channels)
    return value
