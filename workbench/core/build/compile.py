"""Compile a :class:`~workbench.core.graph.Graph` into a torch module, inferring shapes.

Each node is built by its spec's factory from the shapes of its inputs, then run once on a tiny
zero input (``T = 2, B = 2``, eval mode) to learn its output shape. Any failure is reported per
node ("node 'fc1': expects a [C, H, W] input, got [64]"); :func:`validate` collects them all for
the editor's badges, :func:`compile_graph` raises the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workbench.core.build.report import CompileReport, NodeInfo
from workbench.core.model.errors import CompileError, WorkbenchError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.specs import BlockSpec, NeuronSpec, Spec, SpecLookup

#: shape inference runs every node on a zero tensor ``[T, B, *shape]`` of this size
_PROBE_T, _PROBE_B = 2, 2


def _import_torch():
    import torch

    return torch


def resolve_spec(node: Node, lookup: SpecLookup) -> Spec:
    spec = lookup.get(node.spec)
    if spec is None or node.placeholder:
        plugin = node.spec.split(".", 1)[0]
        raise CompileError(
            f"uses {node.spec!r}, which no installed plugin provides (is the plugin "
            f"{plugin!r} installed and enabled? see `snn-workbench plugins`)",
            node=node.id,
        )
    if not isinstance(spec, (BlockSpec, NeuronSpec)):
        raise CompileError(f"{node.spec!r} is a {spec.KIND}, not a layer or neuron", node=node.id)
    return spec


def _neuron_builder(value: Mapping[str, Any], lookup: SpecLookup, where: str) -> Callable[[], Any]:
    spec = lookup.get(value["id"])
    if not isinstance(spec, NeuronSpec):
        raise WorkbenchError(f"{value['id']!r} is not an installed neuron", where=where)
    params = spec.check_params(value.get("params", {}), where=where)
    return lambda: spec.create(**params)


def build_node(node: Node, lookup: SpecLookup, in_shapes: list[tuple[int, ...]]):
    """Build one node's module; returns ``(module, spec, checked params)``."""
    spec = resolve_spec(node, lookup)
    params = spec.check_params(node.params, where=f"node {node.id!r}")
    if isinstance(spec, NeuronSpec):
        if len(in_shapes) != 1:
            raise CompileError(f"a neuron takes one input, got {len(in_shapes)}", node=node.id)
        return spec.create(**params), spec, params
    if spec.inputs != len(in_shapes):
        raise CompileError(f"takes {spec.inputs} input(s), has {len(in_shapes)}", node=node.id)
    kwargs = dict(params)
    for p in spec.params:  # a neuron choice becomes a builder the block calls per neuron layer
        if p.kind == "neuron":
            kwargs[p.name] = _neuron_builder(params[p.name], lookup, f"node {node.id!r}.{p.name}")
    return spec.create(list(in_shapes), **kwargs), spec, params


def _infer_shape(module, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    torch = _import_torch()
    xs = [torch.zeros(_PROBE_T, _PROBE_B, *s) for s in in_shapes]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(*xs)
    finally:
        module.train(was_training)
    if isinstance(out, tuple):  # attention blocks return (out, maps)
        out = out[0]
    # [T, B, ...] must lead; a read-out may collapse time to a single step ([1, B, ...]).
    if out.dim() < 2 or out.shape[0] not in (_PROBE_T, 1) or out.shape[1] != _PROBE_B:
        raise ValueError(f"returned shape {list(out.shape)}; blocks must keep [T, B, ...] leading")
    return tuple(out.shape[2:])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{exc}" if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"


def _walk(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...], *, stop_on_error: bool):
    report = CompileReport()
    modules: dict[str, Any] = {}
    try:
        graph.check_structure()
        order = graph.topological_order()
    except CompileError as exc:
        report.error = str(exc)
        return report, modules, []
    for node_id in order:
        node = graph.node(node_id)
        info = report.nodes.setdefault(node_id, NodeInfo())
        sources = graph.inputs_of(node_id)
        if sources and any(report.nodes[s].out_shape is None for s in sources):
            info.error = "an input of this node has an error"
            continue
        info.in_shapes = [report.nodes[s].out_shape for s in sources] or [tuple(input_shape)]
        try:
            module, info.spec, info.params = build_node(node, lookup, info.in_shapes)
            info.out_shape = _infer_shape(module, info.in_shapes)
        except CompileError as exc:
            info.error = exc.message
        except Exception as exc:  # plugin code: report it against the node, never crash
            info.error = _describe(exc)
            shapes = ", ".join(str(list(s)) for s in info.in_shapes)
            info.error += f" (input shape{'s' if len(info.in_shapes) > 1 else ''} {shapes})"
        else:
            modules[node_id] = module
        if info.error and stop_on_error:
            break
    sinks = graph.sinks()
    if len(sinks) > 1 and not report.error:
        report.error = f"the network must have one output node, found {len(sinks)}: {', '.join(sinks)}"
    return report, modules, order


def validate(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...]) -> CompileReport:
    """Compile every node that can be compiled and report shapes and errors per node."""
    report, _, _ = _walk(graph, lookup, input_shape, stop_on_error=False)
    return report


def compile_graph(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...]):
    """Build the network as a :class:`CompiledNetwork`; raises :class:`CompileError`."""
    report, modules, order = _walk(graph, lookup, input_shape, stop_on_error=True)
    error = report.first_error()
    if error is not None:
        raise error
    from workbench.core.build.network import CompiledNetwork

    inputs = {node_id: graph.inputs_of(node_id) for node_id in order}
    return CompiledNetwork(modules, order, inputs, report)
