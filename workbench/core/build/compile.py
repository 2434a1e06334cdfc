"""Compile a :class:`~workbench.core.graph.Graph` into a torch module, inferring shapes.

Each node is built by its spec's factory from the shapes of its inputs, then run once on a tiny
zero input (``T = 2, B = 2``, eval mode) to learn its output shape. Any failure is reported per
node ("node 'fc1': expects a [C, H, W] input, got [64]"); :func:`validate` collects them all for
the editor's badges, :func:`compile_graph` raises the first one.

Shape inference allocates nothing real: each node is built under ``torch.device("meta")`` and
run on meta tensors, which carry shapes but no data. That pass also counts the parameters and
the activations per sample, so a graph over the caps of :mod:`workbench.core.build.limits` is
refused by name before a single real byte is asked for. Only then does :func:`compile_graph`
build the real modules, in node order, drawing from torch's random generator exactly as a
build without the meta pass would (the meta pass runs under a forked generator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from workbench.core.build.limits import Limits
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


def _infer_shape(module, in_shapes: list[tuple[int, ...]], device: str = "cpu"
                 ) -> tuple[int, ...]:
    torch = _import_torch()
    xs = [torch.zeros(_PROBE_T, _PROBE_B, *s, device=device) for s in in_shapes]
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


def _state_size(module) -> int:
    """Elements of every parameter and buffer (shared tensors once): what building allocates."""
    seen: dict[int, int] = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        seen[id(tensor)] = tensor.numel()
    return sum(seen.values())


def _preload(node: Node, lookup: SpecLookup) -> None:
    """Import the node's factories outside the meta device: a plugin module imported under it
    would keep meta tensors made at import time for good."""
    spec = lookup.get(node.spec)
    if not isinstance(spec, (BlockSpec, NeuronSpec)) or node.placeholder:
        return  # build_node reports it
    for value in [None, *node.params.values()]:
        target = spec if value is None else (
            lookup.get(value.get("id")) if isinstance(value, Mapping)
            and isinstance(value.get("id"), str) else None)
        if isinstance(target, (BlockSpec, NeuronSpec)):
            try:
                target.resolve()
            except WorkbenchError:
                pass  # reported by the build itself


class _Budget:
    """The running totals one compilation checks against its :class:`Limits`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.params = self.activations = 0

    def add_params(self, count: int) -> None:
        self.params += count
        if self.params > self.limits.max_params:
            raise CompileError(self.limits.params_error(self.params))

    def add_activations(self, shape: tuple[int, ...]) -> None:
        self.activations += math.prod(shape)
        if self.activations > self.limits.max_activations:
            raise CompileError(self.limits.activations_error(self.activations))


def _infer_node(node: Node, lookup: SpecLookup, info: NodeInfo, budget: _Budget) -> None:
    """Fill ``info`` (spec, params, output shape) for one node, allocating nothing real when
    the node's module runs on meta tensors; errors raise."""
    torch = _import_torch()
    _preload(node, lookup)
    try:
        with torch.device("meta"):
            module, info.spec, info.params = build_node(node, lookup, info.in_shapes)
    except WorkbenchError:
        raise  # a bad parameter or shape: the real build says the same
    except Exception:  # noqa: BLE001 - code that cannot run on meta; see below
        module = None
    counted = module is not None
    if module is not None:
        budget.add_params(_state_size(module))
        try:
            info.out_shape = _infer_shape(module, info.in_shapes, "meta")
        except Exception:  # noqa: BLE001 - see below
            info.out_shape = None
    if info.out_shape is None:
        # A block that cannot run on meta (it reads a value with .item(), or runs an op without
        # a meta kernel) gets the real probe, as every block did before the meta pass, and a
        # genuine error (a shape mismatch) reads as it always did. The probe is bounded by
        # what is known: its inputs are within the activation cap (every node before it
        # passed) and its parameters, counted by the meta build, within the parameter cap.
        # What is not known beforehand is its output: the cap refuses it only once the probe
        # made it. A factory that itself fails on meta is built for real before it is
        # counted. Every first-party block runs on meta; this is for third-party code.
        # Forked: the real build after this pass must draw from torch's generator exactly as
        # it would have without this probe (the meta pass itself draws nothing).
        with torch.random.fork_rng(devices=[]):
            module, info.spec, info.params = build_node(node, lookup, info.in_shapes)
            if not counted:
                budget.add_params(_state_size(module))
            info.out_shape = _infer_shape(module, info.in_shapes)
    budget.add_activations(info.out_shape)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{exc}" if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"


def _walk(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...], *, stop_on_error: bool,
          limits: Limits | None = None):
    """The meta pass: every node's shapes and errors, nothing real allocated."""
    report = CompileReport()
    try:
        graph.check_structure()
        order = graph.topological_order()
    except CompileError as exc:
        report.error = str(exc)
        return report, []
    budget = _Budget(limits or Limits.resolve())
    for node_id in order:
        node = graph.node(node_id)
        info = report.nodes.setdefault(node_id, NodeInfo())
        sources = graph.inputs_of(node_id)
        if sources and any(report.nodes[s].out_shape is None for s in sources):
            info.error = "an input of this node has an error"
            continue
        info.in_shapes = [report.nodes[s].out_shape for s in sources] or [tuple(input_shape)]
        try:
            _infer_node(node, lookup, info, budget)
        except CompileError as exc:
            info.error = exc.message
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - plugin code, sys.exit too: the node
            info.error = _describe(exc)
            shapes = ", ".join(str(list(s)) for s in info.in_shapes)
            info.error += f" (input shape{'s' if len(info.in_shapes) > 1 else ''} {shapes})"
        if info.error:
            info.out_shape = None  # the nodes after it say their input has an error
            if stop_on_error:
                break
    sinks = graph.sinks()
    if len(sinks) > 1 and not report.error:
        report.error = f"the network must have one output node, found {len(sinks)}: {', '.join(sinks)}"
    return report, order


def _build_real(graph: Graph, lookup: SpecLookup, report: CompileReport, order: list[str]
                ) -> dict[str, Any]:
    """The real modules, in node order, once the meta pass found every node within limits."""
    modules: dict[str, Any] = {}
    for node_id in order:
        info = report.nodes[node_id]
        try:
            module, _, _ = build_node(graph.node(node_id), lookup, info.in_shapes)
            if _has_lazy_state(module):  # lazy parameters take their shape from a first call
                _infer_shape(module, info.in_shapes)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # fine on meta, fails for real: still the node
            error = exc if isinstance(exc, CompileError) else CompileError(_describe(exc))
            raise CompileError(error.message, node=node_id) from exc
        modules[node_id] = module
    return modules


def _has_lazy_state(module) -> bool:
    from torch.nn.parameter import is_lazy

    return any(is_lazy(t) for t in [*module.parameters(), *module.buffers()])


def validate(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...], *,
             limits: Limits | None = None) -> CompileReport:
    """Infer every node's shape that can be inferred and report shapes and errors per node;
    allocates no parameters or activations. ``limits`` default to
    :meth:`Limits.resolve` (the defaults, or the environment's)."""
    report, _ = _walk(graph, lookup, input_shape, stop_on_error=False, limits=limits)
    return report


def compile_graph(graph: Graph, lookup: SpecLookup, input_shape: tuple[int, ...], *,
                  limits: Limits | None = None):
    """Build the network as a :class:`CompiledNetwork`; raises :class:`CompileError`, also
    when the network is over ``limits`` (then before anything real is built)."""
    report, order = _walk(graph, lookup, input_shape, stop_on_error=True, limits=limits)
    error = report.first_error()
    if error is not None:
        raise error
    from workbench.core.build.network import CompiledNetwork

    modules = _build_real(graph, lookup, report, order)
    inputs = {node_id: graph.inputs_of(node_id) for node_id in order}
    return CompiledNetwork(modules, order, inputs, report)
