"""Structured pruning surgery: which conv kernels can go, in which groups, and removing them.

Channels flow from the conv that makes them, through layers that keep them apart (batch norm,
neurons, pooling, dropout, one flatten, residual adds, branches), to the layers that read them
(convs, linears after the flatten, option-A shortcuts). Convs whose outputs meet at a residual
add carry the same channels, so they form one group with one channel selection. An option-A
shortcut pads by position, so its input and its output belong to different groups (its width
follows the group it feeds); an identity shortcut (same width, stride 1) passes channels through.

A composite node (the ResNet) takes part by describing its inside (``prunable_parts()``, a
list of :class:`Part`) and how its parameters follow new widths (``resized(widths)``).

Pruning rewrites the widths, compiles the smaller graph and copies the kept slices: each
member's kernels and bias / batch-norm entries, any batch norm on the way, and each reader's
input channels (after a flatten, its columns for the kept channels × H×W positions).
Quantised weights keep their codes and scales (sliced).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from workbench.pluginhost import CompiledNetwork, Graph, NeuronSpec, QuantizedTensor, attach

CONVS = ("wb_core.spiking_conv", "wb_core.conv2d")
LINEARS = ("wb_core.linear", "wb_core.spiking_linear")
PASS_THROUGH = ("wb_core.max_pool", "wb_core.avg_pool", "wb_core.batch_norm",
                "wb_core.dropout")
SHORTCUT = "wb_qp_snn.shortcut_a"
#: unit kinds whose output carries the channels of their input(s)
_CARRIERS = ("pass", "neuron", "flatten", "add")
#: the network's input, as a unit id
INPUT = ""


@dataclass
class Part:
    """One piece of a composite node's inside, as the surgery reads it.

    ``kind``: conv, linear, pass, neuron, flatten, add, shortcut (option A) or other.
    ``inputs`` name earlier parts (``""``: the node's input); ``spiking``: a conv whose own
    output is already spikes (conv -> BN -> neuron); ``positions``: H×W per channel after a
    flatten."""

    name: str
    kind: str
    inputs: list[str]
    spiking: bool = False
    positions: int = 1


@dataclass
class _Unit:
    id: str  # a graph node, or "<node>.<part>" inside a composite node
    kind: str
    inputs: list[str]
    module: nn.Module | None
    spiking: bool = False
    positions: int = 0  # a flatten's H×W; 0: it flattens something else than [C, H, W]
    what: str = ""  # the spec, for messages


@dataclass
class Prunable:
    """Convs that lose the same kernels (one group), and where their channels go."""

    members: list[str]  # the convs, in network order; the first names the group
    width: int  # output channels now
    spike_units: dict[str, str]  # member -> unit whose output is its spike map (SVS)
    carriers: list[str]  # channel-keeping units on the way (their batch norms are sliced)
    readers: list[str]  # convs and linears whose input channels follow
    resize: list[str]  # units whose width is rewritten: the members and shortcuts
    flatten: str | None = None
    positions: int = 1  # H×W per channel where it is flattened (1 without a flatten)
    flattened: set[str] = field(default_factory=set)  # carriers and readers after the flatten

    @property
    def name(self) -> str:
        return self.members[0]


# -- reading the network as units ------------------------------------------------------------------
def _graph_kind(spec: str, lookup) -> str:
    if spec in CONVS:
        return "conv"
    if spec in LINEARS:
        return "linear"
    if spec in PASS_THROUGH:
        return "pass"
    if spec == "wb_core.flatten":
        return "flatten"
    if spec == "wb_core.add":
        return "add"
    if spec == SHORTCUT:
        return "shortcut"
    return "neuron" if isinstance(lookup.get(spec), NeuronSpec) else "other"


def read_units(graph: Graph, model: CompiledNetwork, lookup) -> dict[str, _Unit]:
    """The network as units in execution order: graph nodes, and the parts of composite
    nodes."""
    units: dict[str, _Unit] = {}
    output_of: dict[str, str] = {}  # graph node -> the unit that gives its output
    for node_id in graph.topological_order():
        module = model.layers[node_id]
        sources = [output_of[s] for s in graph.inputs_of(node_id)] or [INPUT]
        parts = getattr(module, "prunable_parts", None)
        if callable(parts):
            for part in parts():
                uid = f"{node_id}.{part.name}"
                inputs = [sources[0] if i == "" else f"{node_id}.{i}" for i in part.inputs]
                sub = None if part.kind == "add" else module.get_submodule(part.name)
                units[uid] = _Unit(uid, part.kind, inputs, sub, part.spiking, part.positions,
                                   graph.node(node_id).spec)
                output_of[node_id] = uid
            continue
        spec = graph.node(node_id).spec
        unit = _Unit(node_id, _graph_kind(spec, lookup), sources, module,
                     spec == "wb_core.spiking_conv", what=spec)
        if unit.kind == "flatten":
            shape = model.report.nodes[node_id].in_shapes[0]
            unit.positions = int(shape[1] * shape[2]) if len(shape) == 3 else 0
        units[node_id] = unit
        output_of[node_id] = node_id
    return units


def unit_module(model: CompiledNetwork, unit_id: str) -> nn.Module:
    """The module of a unit: a graph node's, or the part inside a composite node."""
    node, _, part = unit_id.partition(".")
    module = model.layers[node]
    return module.get_submodule(part) if part else module


def _conv_in(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def _passes_channels(unit: _Unit) -> bool:
    """Whether the unit's output carries its input's channels (same indices)."""
    if unit.kind == "shortcut":
        return bool(unit.module.identity)
    return unit.kind in _CARRIERS


# -- finding the groups ----------------------------------------------------------------------------
def find_prunable(graph: Graph, model: CompiledNetwork, lookup,
                  prune_last_conv: bool = False) -> tuple[list[Prunable], dict[str, str]]:
    """Prunable groups in network order (of their first conv), and ``{conv: why not}`` for the
    other convs."""
    units = read_units(graph, model, lookup)
    order = list(units)
    parent = {uid: uid for uid in [INPUT, *order]}

    def root(uid: str) -> str:
        while parent[uid] != uid:
            parent[uid] = parent[parent[uid]]
            uid = parent[uid]
        return uid

    for unit in units.values():
        if _passes_channels(unit):
            for source in unit.inputs:
                parent[root(unit.id)] = root(source)
    spaces: dict[str, list[str]] = {}
    for uid in [INPUT, *order]:
        spaces.setdefault(root(uid), []).append(uid)
    readers: dict[str, list[str]] = {uid: [] for uid in [INPUT, *order]}
    for unit in units.values():
        for source in unit.inputs:
            readers[source].append(unit.id)
    convs = [uid for uid in order if units[uid].kind == "conv"]
    found: list[Prunable] = []
    skipped: dict[str, str] = {}
    for space in spaces.values():
        members = [uid for uid in space if uid in convs]
        if not members:
            continue
        plan = _plan(space, members, units, readers)
        if isinstance(plan, Prunable) and convs[-1] in members and not prune_last_conv:
            plan = ("the last conv layer (feeding the classifier) keeps all its kernels, as in "
                    "the paper" + (f", and so do the convs whose channels meet its at a residual "
                                   f"add ({', '.join(members[:-1])})" if len(members) > 1
                                   else "") + "; set prune_last_conv to prune it")
        if isinstance(plan, str):
            skipped.update(dict.fromkeys(members, plan))
        else:
            found.append(plan)
    found.sort(key=lambda p: order.index(p.name))
    return found, {c: skipped[c] for c in convs if c in skipped}


def _plan(space: list[str], members: list[str], units: dict[str, _Unit],
          readers: dict[str, list[str]]) -> Prunable | str:
    """The group of the convs whose output is ``space``; a string says why it cannot be."""
    inside = set(space)
    for uid in space:
        unit = units.get(uid)
        if unit is None:
            return "its channels are added to the network's input, which cannot shrink with it"
        if unit.kind in ("linear", "other"):
            return (f"its channels meet those of {uid!r} ({unit.what}) at a residual add, and "
                    "that layer cannot lose channels with it")
        if not readers[uid] and unit.kind != "shortcut":
            return "its output is the network's output, no later layer to shrink with it"
    flattens = [uid for uid in space if units[uid].kind == "flatten"]
    if len(flattens) > 1:
        return f"its output is flattened twice (at {flattens[0]!r} and {flattens[1]!r})"
    flatten = flattens[0] if flattens else None
    if flatten is not None and not units[flatten].positions:
        return f"{flatten!r} flattens an input that is not [C, H, W]"
    flattened: set[str] = set()
    reading: list[str] = []  # convs and linears whose input is these channels (members too)
    for uid in [u for u in units if u in inside or any(i in inside for i in units[u].inputs)]:
        unit = units[uid]
        after = uid == flatten or any(i in flattened for i in unit.inputs)
        if after:
            flattened.add(uid)
        if not any(i in inside for i in unit.inputs):
            continue
        if unit.kind == "other":
            return (f"its output goes through {uid!r} ({unit.what}), which the pruner cannot "
                    "follow channel by channel")
        if unit.kind == "linear" and not after:
            return f"its output reaches the linear layer {uid!r} without a flatten"
        if unit.kind in ("conv", "linear"):
            reading.append(uid)
    carriers = [u for u in space if u not in members and _passes_channels(units[u])]
    spike_units = {m: _spike_unit(m, units, readers, inside) for m in members}
    return Prunable(
        members=members,
        width=int(_conv_in(units[members[0]].module).out_channels),
        spike_units=spike_units,
        carriers=carriers,
        readers=reading,
        resize=[u for u in space if units[u].kind in ("conv", "shortcut")],
        flatten=flatten,
        positions=units[flatten].positions if flatten else 1,
        flattened=flattened,
    )


def _spike_unit(member: str, units: dict[str, _Unit], readers: dict[str, list[str]],
                inside: set[str]) -> str:
    """The first neuron after ``member`` (through carriers, before any flatten); a spiking
    conv is its own; without a neuron, the conv's own output [R]."""
    if units[member].spiking:
        return member
    reached: set[str] = set()
    todo = [member]
    while todo:
        for nxt in readers[todo.pop()]:
            if nxt in inside and nxt not in reached and units[nxt].kind != "flatten":
                reached.add(nxt)
                todo.append(nxt)
    neurons = [u for u in units if u in reached and units[u].kind == "neuron"]
    return neurons[0] if neurons else member


# -- the surgery -----------------------------------------------------------------------------------
def prune_network(model: CompiledNetwork, graph: Graph, keep: dict[str, torch.Tensor],
                  plans: dict[str, Prunable],
                  compile_fn: Callable[[Graph], CompiledNetwork]
                  ) -> tuple[CompiledNetwork, Graph]:
    """Remove every kernel of group ``plans[name]`` not in ``keep[name]`` (ascending indices).

    Returns the smaller network (the kept weights, statistics and quantisation records copied)
    and its graph.
    """
    new_graph = graph.copy()
    composite: dict[str, dict[str, int]] = {}
    for name, kept in keep.items():
        for uid in plans[name].resize:
            node, _, part = uid.partition(".")
            if part:
                composite.setdefault(node, {})[part] = int(kept.numel())
            else:
                new_graph.node(node).params["out_channels"] = int(kept.numel())
    for node, widths in composite.items():
        new_graph.node(node).params.update(model.layers[node].resized(widths))
    new_model = compile_fn(new_graph)
    out_idx: dict[str, torch.Tensor] = {}
    in_idx: dict[str, torch.Tensor] = {}
    channel_idx: dict[str, torch.Tensor] = {}
    for name, kept in keep.items():
        plan = plans[name]
        kept = kept.to(torch.int64)
        columns = (kept[:, None] * plan.positions
                   + torch.arange(plan.positions)[None, :]).reshape(-1)
        for uid in plan.members:
            out_idx[uid] = kept
        for uid in plan.carriers:
            channel_idx[uid] = columns if uid in plan.flattened else kept
        for uid in plan.readers:
            in_idx[uid] = columns if uid in plan.flattened else kept
    for node_id in new_model.order:
        old, new = model.layers[node_id], new_model.layers[node_id]
        parts = getattr(old, "prunable_parts", None)
        pieces = [""] if not callable(parts) else [p.name for p in parts() if p.kind != "add"]
        if callable(parts):
            _check_covered(old, pieces, node_id)
        for part in pieces:
            uid = f"{node_id}.{part}" if part else node_id
            _carry(old.get_submodule(part), new.get_submodule(part), out=out_idx.get(uid),
                   inp=in_idx.get(uid), channels=channel_idx.get(uid), node=uid)
    return new_model, new_graph


def _check_covered(module: nn.Module, parts: list[str], node: str) -> None:
    """A composite node's parts must hold all its state, or some would not be carried."""
    covered = {f"{p}.{key}" for p in parts for key in module.get_submodule(p).state_dict()}
    missing = sorted(set(module.state_dict()) - covered)
    if missing:
        raise ValueError(f"node {node!r}: {missing[0]} belongs to no part the pruner knows")


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
