"""Write a trained network as a NIR graph (docs/nir.md).

A NIR graph is stepped once per time step; the encoder stays outside it (feed the encoded
``x[t]``). Our nodes map to NIR nodes as follows; BatchNorm is folded into the weights before it
(eval mode, running statistics), dropout is the identity at inference and a residual add becomes
two edges into the same node (NIR sums a node's incoming edges).

==========================  =====================================================
``wb_core.spiking_linear``  ``<id>.fc``: Affine (or Linear) -> ``<id>.lif``/``.if``
``wb_core.spiking_conv``    ``<id>.conv``: Conv2d -> ``<id>.lif``/``.if``
``wb_core.linear``          Affine (or Linear without bias)
``wb_core.conv2d``          Conv2d
``wb_core.flatten``         Flatten (start_dim 0: NIR shapes have no batch dimension)
``wb_core.avg_pool``        AvgPool2d
neuron nodes                LIF / IF (see :mod:`wb_nir.neurons`)
==========================  =====================================================

A neuron behind quantised weights gets its threshold one float32 step lower, so that NIR's
``v > v_threshold`` fires at the ties our ``H >= V_th`` fires at
(:func:`wb_nir.neurons.nir_threshold`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wb_nir.neurons import DEFAULT_DT, Unsupported, check_dynamics
from wb_nir.neurons import to_nir as neuron_to_nir
from workbench.pluginhost import (
    SPIKE_TIMES,
    AttentionSpec,
    DeployError,
    NeuronSpec,
    QuantizedTensor,
)

#: key of our JSON metadata on the NIR graph and its nodes
META_KEY = "wb_nir"
META_FORMAT = 1

_SPIKING = {"wb_core.spiking_linear": "fc", "wb_core.spiking_conv": "conv"}
_PASS_THROUGH = {"wb_core.dropout"}
_REASONS = {
    "wb_core.max_pool": "NIR has no max-pool node (it has AvgPool2d and SumPool2d); use an "
                        "average pool instead",
    "wb_core.mean_readout": "NIR graphs are stepped one time step at a time and have no node "
                            "that averages over time; read the mean outside the graph",
    # QT-SNN (wb_qt_snn): deploy it with wb_sim or wb_fpga, which run it bit-exactly
    "wb_qt_snn.qt_linear": "a QT-SNN layer: NIR has no ternary neuron (it fires 0 or 1, never "
                           "-1) and no membrane stored as a b-bit code",
    "wb_qt_snn.qt_readout": "a read-out with learnt-step (LSQ) weights: this exporter does not "
                            "write it (NIR's Affine could hold its weights as floats)",
    "wb_qt_snn.qt_snn": "a whole QT-SNN classifier in one node: NIR needs its layers as nodes, "
                        "and has no ternary neuron or b-bit membrane",
    "wb_qt_snn.qt_conv1d": "a causal convolution over time: each step also reads a window "
                           "of past input steps (a delay line), which no NIR node keeps (NIR "
                           "is stepped one time step at a time; its Conv1d runs over space); "
                           "and NIR has no ternary neuron",
}
_RESERVED = {"input", "output"}


@dataclass(frozen=True)
class Problem:
    """Something in the network NIR cannot express (``severity`` "error") or a caveat."""

    node: str
    spec: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.spec}): {self.message}"


def _spec_of(model: Any, node_id: str) -> Any:
    return model.report.nodes[node_id].spec


def _node_problem(model: Any, graph: Any, node_id: str) -> str:
    """Why ``node_id`` cannot be written ("" when it can)."""
    spec_id = graph.node(node_id).spec
    module = model.layers[node_id]
    info = model.report.nodes[node_id]
    spec = info.spec
    in_shape = info.in_shapes[0] if info.in_shapes else ()
    try:
        if isinstance(spec, NeuronSpec):
            check_dynamics(module)
        elif spec_id in _SPIKING:
            if spec_id == "wb_core.spiking_linear" and len(in_shape) != 1:
                return ("NIR's Affine maps one vector per step; token inputs "
                        f"{list(in_shape)} are not supported")
            check_dynamics(module.neuron)
        elif spec_id == "wb_core.linear":
            if len(in_shape) != 1:
                return ("NIR's Affine maps one vector per step; token inputs "
                        f"{list(in_shape)} are not supported")
        elif spec_id == "wb_core.batch_norm":
            if _fold_target(model, graph, node_id) is None:
                return ("NIR has no batch-norm node; it is folded into the conv or linear "
                        "layer right before it, and this one follows something else")
        elif spec_id in _REASONS:
            return _REASONS[spec_id]
        elif getattr(spec, "spike_code", None) == SPIKE_TIMES:
            return ("a time-to-first-spike layer: it passes one firing time per neuron, and "
                    "NIR's neurons integrate spike trains over time steps")
        elif isinstance(spec, AttentionSpec):
            return "NIR has no attention block (its spike-by-spike products have no NIR node)"
        elif spec_id not in {"wb_core.flatten", "wb_core.conv2d", "wb_core.avg_pool",
                             "wb_core.add", *_PASS_THROUGH}:
            return f"NIR has no node for {spec_id}"
    except Unsupported as exc:
        return str(exc)
    return ""


def _fold_target(model: Any, graph: Any, node_id: str) -> str | None:
    """The plain conv/linear node a batch norm can be folded into, if any."""
    sources = model.inputs[node_id]
    if len(sources) != 1:
        return None
    source = sources[0]
    if graph.node(source).spec not in ("wb_core.conv2d", "wb_core.linear"):
        return None
    if graph.outputs_of(source) != [node_id]:
        return None  # another consumer needs the unnormalised output
    return source


def export_problems(model: Any, project: Any) -> list[Problem]:
    """Everything in ``model`` that NIR cannot express, one :class:`Problem` per node, plus
    caveats (severity "warning") that peer tools need to know about."""
    problems = []
    for node_id in model.order:
        spec_id = project.graph.node(node_id).spec
        reason = _node_problem(model, project.graph, node_id)
        if reason:
            problems.append(Problem(node_id, spec_id, reason))
            continue
        neuron = _neuron_module(model, project.graph, node_id)
        if neuron is not None and neuron.dynamics.v_reset != 0.0:
            problems.append(Problem(
                node_id, spec_id, f"resets to v_reset = {neuron.dynamics.v_reset:g}; snnTorch's "
                "NIR importer only takes v_leak = v_reset = 0 (Norse and Sinabs honour it)",
                "warning"))
    return problems


def raise_unsupported(problems: list[Problem]) -> None:
    """One :class:`DeployError` naming every node NIR cannot express."""
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listed = "; ".join(str(p) for p in errors)
        raise DeployError(f"NIR cannot express {len(errors)} node(s): {listed}",
                          where=f"node {errors[0].node!r}")


def _neuron_module(model: Any, graph: Any, node_id: str) -> Any:
    spec_id = graph.node(node_id).spec
    if spec_id in _SPIKING:
        return model.layers[node_id].neuron
    if isinstance(_spec_of(model, node_id), NeuronSpec):
        return model.layers[node_id]
    return None


def _quantised(module: Any) -> bool:
    """Whether ``module``'s weight is quantised (it carries a ``weight_quant`` record)."""
    return isinstance(getattr(module, "weight_quant", None), QuantizedTensor)


def _array(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().to(torch.float32).numpy().copy()


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: torch.nn.Module):
    """Weights and bias of ``bn(layer(x))`` in eval mode, computed in float64."""
    w = weight.detach().double()
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().double()
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = w * scale.reshape(-1, *[1] * (w.dim() - 1))
    b = (b - bn.running_mean.double()) * scale + bn.bias.detach().double()
    return w.float(), b.float()


def _synapse(module: torch.nn.Module, in_shape: tuple[int, ...], meta: dict[str, Any],
             bn: torch.nn.Module | None = None):
    """The NIR node of a torch Linear or Conv2d (``bn`` folded in)."""
    import nir

    weight, bias = module.weight, module.bias
    if bn is not None:
        weight, bias = _fold_bn(weight, bias, bn)
    if isinstance(module, torch.nn.Conv2d):
        zeros = torch.zeros(module.out_channels)
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=_array(weight),
                          stride=tuple(module.stride), padding=tuple(module.padding),
                          dilation=tuple(module.dilation), groups=int(module.groups),
                          bias=_array(bias if bias is not None else zeros), metadata=meta)
    if bias is None:
        return nir.Linear(weight=_array(weight), metadata=meta)
    return nir.Affine(weight=_array(weight), bias=_array(bias), metadata=meta)


def _meta(**fields: Any) -> dict[str, str]:
    # NIR's HDF5 writer stores flat strings reliably; nested values travel as JSON text.
    return {META_KEY: json.dumps(fields, sort_keys=True)}


def _name(node_id: str, part: str = "") -> str:
    base = f"{node_id}.node" if node_id in _RESERVED and not part else node_id
    return f"{base}.{part}" if part else base


def to_nir(model: Any, project: Any, *, dt: float = DEFAULT_DT):
    """Convert the compiled network of ``project`` to a ``nir.NIRGraph``.

    Raises :class:`DeployError` naming every node NIR cannot express.
    """
    import nir

    graph = project.graph
    raise_unsupported(export_problems(model, project))
    model.eval()
    in_shape = tuple(int(s) for s in model.input_shape)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges: list[tuple[str, str]] = []
    exits: dict[str, list[str]] = {}  # our node -> NIR nodes whose summed output it is
    folded: dict[str, str] = {}  # conv/linear node -> batch norm folded into it

    for node_id in model.order:
        if graph.node(node_id).spec == "wb_core.batch_norm":
            folded[_fold_target(model, graph, node_id)] = node_id

    for node_id in model.order:
        spec_id = graph.node(node_id).spec
        module = model.layers[node_id]
        info = model.report.nodes[node_id]
        node_in = tuple(int(s) for s in info.in_shapes[0])
        sources = model.inputs[node_id]
        feeds = [e for s in sources for e in exits[s]] if sources else ["input"]
        meta = {"node": node_id, "spec": spec_id}

        def add(name: str, nir_node: Any, inputs: list[str]) -> None:
            nodes[name] = nir_node
            edges.extend((src, name) for src in inputs)

        if spec_id in _PASS_THROUGH:
            exits[node_id] = feeds
        elif spec_id == "wb_core.add":
            exits[node_id] = feeds  # NIR sums every edge into a node
        elif spec_id == "wb_core.batch_norm":
            exits[node_id] = feeds  # already folded into the layer before it
        elif spec_id in _SPIKING:
            part = _SPIKING[spec_id]
            syn_name = _name(node_id, part)
            add(syn_name, _synapse(getattr(module, part), node_in, _meta(**meta, part=part),
                                   getattr(module, "bn", None)), feeds)
            d = module.neuron.dynamics
            kind = "if" if d.a == 1.0 else "lif"
            neuron_meta = _meta(**meta, part="neuron", neuron=info.params["neuron"])
            out_shape = tuple(int(s) for s in info.out_shape)
            add(_name(node_id, kind), neuron_to_nir(d, out_shape, dt, neuron_meta,
                                                    _quantised(getattr(module, part))),
                [syn_name])
            exits[node_id] = [_name(node_id, kind)]
        elif isinstance(info.spec, NeuronSpec):
            neuron_meta = _meta(**meta, neuron={"id": spec_id, "params": info.params})
            quantised = bool(sources) and all(_quantised(model.layers[s]) for s in sources)
            add(_name(node_id), neuron_to_nir(module.dynamics, node_in, dt, neuron_meta,
                                              quantised), feeds)
            exits[node_id] = [_name(node_id)]
        elif spec_id in ("wb_core.linear", "wb_core.conv2d"):
            bn = model.layers[folded[node_id]] if node_id in folded else None
            add(_name(node_id), _synapse(module, node_in, _meta(**meta), bn), feeds)
            exits[node_id] = [_name(node_id)]
        elif spec_id == "wb_core.flatten":
            add(_name(node_id), nir.Flatten(input_type={"input": np.array(node_in)}, start_dim=0,
                                            end_dim=-1, metadata=_meta(**meta)), feeds)
            exits[node_id] = [_name(node_id)]
        elif spec_id == "wb_core.avg_pool":
            k, s, p = (_pair(module.kernel_size), _pair(module.stride or module.kernel_size),
                       _pair(module.padding))
            add(_name(node_id), nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s),
                                              padding=np.array(p), metadata=_meta(**meta)), feeds)
            exits[node_id] = [_name(node_id)]
        else:  # export_problems lets nothing else through
            raise AssertionError(f"unhandled node {node_id!r} ({spec_id})")

    out_shape = tuple(int(s) for s in model.output_shape)
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.extend((src, "output") for src in exits[model.output_node])
    metadata = _meta(format=META_FORMAT, exporter="SNN Workbench wb_nir", dt=dt,
                     project=project.name, time_steps=project.time_steps,
                     encoder=project.encoder.to_dict(), dataset=project.dataset.to_dict())
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def file_name(project_name: str) -> str:
    """``<project name>.nir`` with characters that are awkward in file names replaced."""
    return (re.sub(r"[^\w.-]+", "_", project_name).strip("._") or "network") + ".nir"


def write_nir(model: Any, project: Any, path: str | Path, *, dt: float = DEFAULT_DT
              ) -> dict[str, Any]:
    """Convert and write ``path``; returns the report: node counts, edges, bytes, dt."""
    import nir

    graph = to_nir(model, project, dt=dt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        nir.write(tmp, graph)
        tmp.replace(path)  # a reader never sees a half-written file
    finally:
        tmp.unlink(missing_ok=True)
    counts = Counter(type(n).__name__ for n in graph.nodes.values())
    return {"file": str(path), "nodes": dict(sorted(counts.items())), "edges": len(graph.edges),
            "bytes": path.stat().st_size, "dt": dt, "nir_version": nir.version}
