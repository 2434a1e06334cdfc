"""Read a NIR graph back as a workbench graph and its weights (docs/nir.md).

A synaptic node (Affine, Linear, Conv2d) whose only consumer is a LIF/IF node, and that node's
only input, become one spiking block (``wb_core.spiking_linear`` / ``spiking_conv``, without
batch norm); any other synaptic node becomes ``wb_core.linear`` / ``conv2d``, a lone neuron a
neuron node. A node with several incoming edges gets their sum (``wb_core.add`` nodes), as NIR
prescribes. Files we wrote carry our neuron choice in their metadata and come back with it;
other files get the wb_core neuron that steps the same (see :mod:`wb_nir.neurons`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wb_nir.export import META_KEY
from wb_nir.neurons import DEFAULT_DT, Unsupported, same_dynamics
from wb_nir.neurons import from_nir as neuron_from_nir
from workbench.pluginhost import (
    CompileError,
    Component,
    DeployError,
    Graph,
    NeuronSpec,
    Node,
    Project,
    WorkbenchError,
    regular_file,
)

_WHY_NOT = {
    "CubaLIF": "a current-based LIF (with a synaptic current state) has no workbench neuron",
    "CubaLI": "a leaky integrator without spikes has no workbench neuron",
    "LI": "a leaky integrator without spikes has no workbench neuron",
    "I": "an integrator without spikes has no workbench neuron",
    "NIRGraph": "nested sub-graphs (such as snnTorch's recurrent RLeaky/RSynaptic) are not "
                "supported",
    "Conv1d": "1-D convolutions have no workbench block",
    "SumPool2d": "sum pooling has no workbench block (average pooling does)",
    "Delay": "synaptic delays have no workbench block",
    "Scale": "element-wise scaling has no workbench block",
    "Threshold": "a bare threshold has no workbench block",
}
_SYNAPSES = ("Affine", "Linear", "Conv2d")
_NEURONS = ("LIF", "IF")
_SUPPORTED = {"Input", "Output", "Flatten", "AvgPool2d", *_SYNAPSES, *_NEURONS}


def read_graph(path: str | Path):
    """``nir.read`` with errors a user can act on. Types are not re-checked: older writers
    leave some unset, and the import checks shapes itself when it builds the network."""
    import nir

    regular_file(path, DeployError, what="NIR file")  # HDF5 would block on a FIFO
    try:
        return nir.read(str(path), type_check=False)
    except FileNotFoundError:
        raise DeployError("no such file", where=str(path)) from None
    except Exception as exc:  # noqa: BLE001 - h5py/nir raise many kinds for damaged files
        raise DeployError(f"not a readable NIR file ({type(exc).__name__}: {exc})",
                          where=str(path)) from None


def graph_metadata(graph: Any) -> dict[str, Any]:
    """What our exporter recorded on the graph (project, time steps, encoder, dt), or {}."""
    return _decode(getattr(graph, "metadata", None))


def file_dt(graph: Any) -> float | None:
    """The Euler step the file records: our exporter's ``dt``, else a plain ``dt`` entry in the
    graph's metadata (NIR has no standard field for it; Norse and snnTorch write none)."""
    plain = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    for raw in (graph_metadata(graph).get("dt"), plain.get("dt")):
        try:
            value = float(np.asarray(raw, dtype=np.float64).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


def choose_dt(graph: Any, given: float | None = None) -> tuple[float, str]:
    """The Euler step to read ``graph``'s time constants with, and where it comes from:
    ``"given"`` (the caller's, which wins), ``"file"`` or ``"default"`` (1e-4, snnTorch's)."""
    if given:
        return float(given), "given"
    recorded = file_dt(graph)
    if recorded is not None:
        return recorded, "file"
    return DEFAULT_DT, "default"


_DT_SOURCES = {"given": "as given", "file": "recorded in the file", "default": "assumed"}


def default_dt_warning(graph: Any) -> str:
    """The warning for a file read with the default step, "" when ``dt`` does not matter (no
    LIF node: an IF steps the same at any ``dt``)."""
    if not any(_kind(node) == "LIF" for node in graph.nodes.values()):
        return ""
    return (f"the file records no time step and none was given: its LIF time constants are "
            f"read with dt = {DEFAULT_DT:g} s (snnTorch's); if it was written with another "
            "(Norse's default is 0.001 s), import it again giving that dt")


def _decode(metadata: Any) -> dict[str, Any]:
    raw = (metadata or {}).get(META_KEY) if isinstance(metadata, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _kind(node: Any) -> str:
    return type(node).__name__


def _order(graph: Any) -> list[str]:
    """NIR node names so that every node comes after its inputs (Kahn, ties by file order)."""
    names = list(graph.nodes)
    indegree = {n: 0 for n in names}
    for _src, dst in graph.edges:
        indegree[dst] += 1
    ready = [n for n in names if indegree[n] == 0]
    order = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for src, dst in graph.edges:
            if src == current:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    if len(order) != len(names):
        stuck = next(n for n in names if n not in order)
        raise DeployError("the graph is recurrent (a cycle runs through this node); recurrent "
                          "NIR graphs are not supported", where=f"node {stuck!r}")
    return order


def _check_supported(graph: Any) -> None:
    bad = []
    for name, node in graph.nodes.items():
        kind = _kind(node)
        if kind not in _SUPPORTED:
            reason = _WHY_NOT.get(kind, "this NIR node type has no workbench block")
            bad.append((name, f"({kind})", reason))
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                bad.append((end, f"(in the edge {src} -> {dst})", "no such node in the graph"))
    if len(bad) == 1:  # the error's ``where`` names the node: the message does not repeat it
        name, what, reason = bad[0]
        raise DeployError(f"cannot import this NIR node {what}: {reason}",
                          where=f"node {name!r}")
    if bad:
        raise DeployError(f"cannot import {len(bad)} NIR nodes: " + "; ".join(
            f"node {name!r} {what}: {reason}" for name, what, reason in bad), where="NIR graph")
    for kind in ("Input", "Output"):
        found = [n for n, node in graph.nodes.items() if _kind(node) == kind]
        if len(found) != 1:
            raise DeployError(f"the graph must have exactly one {kind} node, found "
                              f"{len(found)}; multi-input/-output graphs are not supported")


class _Builder:
    """Collects our nodes, edges and state while walking the NIR graph once."""

    def __init__(self, graph: Any, lookup: Any, dt: float) -> None:
        self.nir = graph
        self.lookup = lookup
        self.dt = dt
        self.nodes: list[Node] = []
        self.edges: list[tuple[str, str]] = []
        self.state: dict[str, torch.Tensor] = {}
        #: NIR node name -> our node producing its output (None: the graph input)
        self.produced: dict[str, str | None] = {}
        #: what the NIR Input node stands for (a flatten node when the data needs one)
        self.input_node: str | None = None

    # -- naming ----------------------------------------------------------------------------
    def new_id(self, stem: str) -> str:
        stem = re.sub(r"\W", "_", stem) or "node"
        if not re.match(r"[A-Za-z_]", stem):
            stem = f"layer{stem}"
        taken = {n.id for n in self.nodes}
        if stem not in taken:
            return stem
        i = 1
        while f"{stem}_{i}" in taken:
            i += 1
        return f"{stem}_{i}"

    def stem(self, *names: str) -> str:
        meta = _decode(getattr(self.nir.nodes[names[0]], "metadata", None))
        if isinstance(meta.get("node"), str):
            return meta["node"]
        prefixes = {n.split(".")[0] for n in names}
        return prefixes.pop() if len(prefixes) == 1 else names[0]

    # -- graph -----------------------------------------------------------------------------
    def inputs(self, name: str) -> list[str]:
        return [src for src, dst in self.nir.edges if dst == name]

    def outputs(self, name: str) -> list[str]:
        return [dst for src, dst in self.nir.edges if src == name]

    def source(self, name: str) -> str | None:
        """Our node feeding NIR node ``name``; several inputs are summed by add nodes."""
        feeds = [self.produced[src] for src in self.inputs(name)]
        if len(feeds) == 1:
            return feeds[0]
        if not feeds:
            raise DeployError("this node has no input", where=f"node {name!r}")
        if None in feeds:
            raise DeployError("sums that include the graph input directly are not supported",
                              where=f"node {name!r}")
        total = feeds[0]
        for other in feeds[1:]:
            total = self.add_node(self.new_id(f"{self.stem(name)}_sum"), "wb_core.add", {},
                                  [total, other])
        return total

    def add_node(self, node_id: str, spec: str, params: dict[str, Any],
                 sources: list[str | None]) -> str:
        found = self.lookup.get(spec)
        if found is not None:
            try:
                params = _non_default(found, params)
            except WorkbenchError as exc:
                raise DeployError(exc.message, where=f"node {node_id!r}") from None
        self.nodes.append(Node(node_id, spec, params, position=(0.0, 90.0 * len(self.nodes))))
        self.edges.extend((s, node_id) for s in sources if s is not None)
        return node_id

    # -- nodes -----------------------------------------------------------------------------
    def neuron(self, name: str) -> dict[str, Any]:
        """Our neuron choice ``{"id", "params"}`` for NIR neuron ``name``."""
        node = self.nir.nodes[name]
        recorded = _decode(getattr(node, "metadata", None)).get("neuron")
        if isinstance(recorded, dict) and isinstance(recorded.get("id"), str):
            spec = self.lookup.get(recorded["id"])
            if isinstance(spec, NeuronSpec):
                try:
                    params = spec.check_params(recorded.get("params") or {})
                    module = spec.create(**params)
                    if same_dynamics(module.dynamics, node, self.dt):
                        return {"id": spec.id, "params": _non_default(spec, params)}
                except (WorkbenchError, AttributeError, TypeError, ValueError):
                    pass  # metadata that does not fit the numbers: trust the numbers
        try:
            spec_id, params = neuron_from_nir(node, self.dt, f"node {name!r}")
        except Unsupported as exc:
            raise DeployError(str(exc), where=f"node {name!r}") from None
        spec = self.lookup.get(spec_id)
        if not isinstance(spec, NeuronSpec):
            raise DeployError(f"needs the neuron {spec_id}, which no installed plugin provides "
                              "(is wb_core enabled?)", where=f"node {name!r}")
        try:
            params = spec.check_params(params, where=f"node {name!r}")
        except WorkbenchError as exc:
            raise DeployError(exc.message, where=exc.where) from None
        return {"id": spec_id, "params": _non_default(spec, params)}

    def synapse(self, name: str, prefix: str) -> dict[str, Any]:
        """Block parameters of a synaptic node; stores its weight and bias (zeros for a NIR
        Linear, which has none) under ``prefix``."""
        node = self.nir.nodes[name]
        weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
        where = f"node {name!r}"
        if _kind(node) == "Conv2d":
            params = _conv_params(node, weight, where)
        elif weight.dim() != 2:
            raise DeployError(f"expected a 2-D weight, got shape {list(weight.shape)}",
                              where=where)
        else:
            params = {"out_features": int(weight.shape[0])}
        bias = getattr(node, "bias", None)
        self.state[f"{prefix}.weight"] = weight
        self.state[f"{prefix}.bias"] = (torch.zeros(weight.shape[0]) if bias is None else
                                        torch.as_tensor(np.asarray(bias, np.float32).reshape(-1)))
        return params

    def run(self, order: list[str]) -> None:
        done: set[str] = set()
        for name in order:
            node = self.nir.nodes[name]
            kind = _kind(node)
            if name in done:
                continue
            if kind == "Input":
                self.produced[name] = self.input_node
                continue
            src = self.source(name)  # several inputs: summed by add nodes
            if kind == "Output":
                continue
            after = self.outputs(name)
            if (kind in _SYNAPSES and len(after) == 1
                    and _kind(self.nir.nodes[after[0]]) in _NEURONS
                    and self.inputs(after[0]) == [name]):
                neuron_name = after[0]
                node_id = self.new_id(self.stem(name, neuron_name))
                part = "conv" if kind == "Conv2d" else "fc"
                params = self.synapse(name, f"layers.{node_id}.{part}")
                params["batch_norm"] = False  # the bias of our block's layer then exists
                params["neuron"] = self.neuron(neuron_name)
                spec = "wb_core.spiking_conv" if kind == "Conv2d" else "wb_core.spiking_linear"
                self.add_node(node_id, spec, params, [src])
                self.produced[name] = self.produced[neuron_name] = node_id
                done.add(neuron_name)
                continue
            node_id = self.new_id(self.stem(name))
            if kind in _SYNAPSES:
                params = self.synapse(name, f"layers.{node_id}")
                if kind == "Conv2d":
                    self.add_node(node_id, "wb_core.conv2d", {**params, "bias": True}, [src])
                elif kind == "Affine":
                    self.add_node(node_id, "wb_core.linear", {**params, "bias": True}, [src])
                else:  # NIR Linear: no bias
                    del self.state[f"layers.{node_id}.bias"]
                    self.add_node(node_id, "wb_core.linear", {**params, "bias": False}, [src])
            elif kind in _NEURONS:
                choice = self.neuron(name)
                self.add_node(node_id, choice["id"], choice["params"], [src])
            elif kind == "Flatten":
                _check_flatten(node, name)
                self.add_node(node_id, "wb_core.flatten", {}, [src])
            elif kind == "AvgPool2d":
                self.add_node(node_id, "wb_core.avg_pool", _pool_params(node, name), [src])
            self.produced[name] = node_id


def _non_default(spec: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the spec's defaults, as project files keep it (values are
    checked against the spec on the way)."""
    defaults = spec.check_params({})
    checked = spec.check_params(params)
    return {k: params[k] for k in params if checked[k] != defaults[k]}


def _square(value: Any, what: str, where: str) -> int:
    values = np.asarray(value).reshape(-1)
    if values.size == 0 or not np.all(values == values[0]):
        raise DeployError(f"{what} {values.tolist()} is not square; workbench blocks take one "
                          "value for both directions", where=where)
    return int(values[0])


def _conv_params(node: Any, weight: torch.Tensor, where: str) -> dict[str, Any]:
    if weight.dim() != 4:
        raise DeployError(f"expected a [C_out, C_in, kH, kW] weight, got {list(weight.shape)}",
                          where=where)
    if int(np.asarray(node.groups)) != 1:
        raise DeployError("grouped convolutions are not supported", where=where)
    if _square(node.dilation, "dilation", where) != 1:
        raise DeployError("dilated convolutions are not supported", where=where)
    kernel = _square(weight.shape[-2:], "kernel", where)
    stride = _square(node.stride, "stride", where)
    padding = node.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == "valid":
            padding = 0
        elif padding == "same" and stride == 1 and kernel % 2 == 1:
            padding = kernel // 2
        else:
            raise DeployError(f"padding {padding!r} with kernel {kernel} and stride {stride} "
                              "has no symmetric equivalent", where=where)
    else:
        padding = _square(padding, "padding", where)
    return {"out_channels": int(weight.shape[0]), "kernel_size": kernel, "stride": stride,
            "padding": padding}


def _pool_params(node: Any, name: str) -> dict[str, Any]:
    where = f"node {name!r}"
    if _square(node.padding, "padding", where) != 0:
        raise DeployError("padded average pooling is not supported", where=where)
    return {"kernel_size": _square(node.kernel_size, "kernel", where),
            "stride": _square(node.stride, "stride", where)}


def _check_flatten(node: Any, name: str) -> None:
    start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
    shape = (node.input_type or {}).get("input") if isinstance(node.input_type, dict) else None
    rank = len(np.asarray(shape).reshape(-1)) if shape is not None else None
    if start != 0 or not (end == -1 or (rank is not None and end == rank - 1)):
        raise DeployError(f"Flatten(start_dim={start}, end_dim={end}) flattens part of a sample; "
                          "only a whole-sample flatten (start_dim 0, NIR shapes have no batch "
                          "dimension) has a workbench block", where=f"node {name!r}")


def _input_shape(graph: Any) -> tuple[int, ...] | None:
    node = next(n for n in graph.nodes.values() if _kind(n) == "Input")
    shape = (node.input_type or {}).get("input")
    if shape is None:
        return None
    return tuple(int(s) for s in np.asarray(shape).reshape(-1))


def from_nir(graph: Any, lookup: Any, input_shape: tuple[int, ...] | None = None, *,
             dt: float | None = None) -> tuple[Graph, dict[str, torch.Tensor]]:
    """Our graph and the state dict (keys as in :class:`CompiledNetwork`) of a ``NIRGraph``.

    ``input_shape`` is what the data will feed (the dataset's per-sample shape); when the NIR
    input is flat and the data is not, a flatten node is put first. ``dt`` is the Euler step
    the file's time constants assume (default: the one the file records, else 1e-4, the value
    snnTorch uses; see :func:`choose_dt`). Raises :class:`DeployError` naming every
    unsupported node.
    """
    _check_supported(graph)
    order = _order(graph)
    dt, _source = choose_dt(graph, dt)
    builder = _Builder(graph, lookup, dt)
    file_shape = _input_shape(graph)
    if input_shape is not None and file_shape is not None:
        input_shape = tuple(int(s) for s in input_shape)
        if file_shape != input_shape:
            if len(file_shape) != 1 or int(np.prod(input_shape)) != file_shape[0]:
                raise DeployError(f"the NIR graph expects inputs of shape {list(file_shape)}, "
                                  f"but the data gives {list(input_shape)}; choose a dataset "
                                  "with matching samples", where="input")
            # a flat NIR input fed with images: flatten them first
            builder.input_node = builder.add_node("flat_input", "wb_core.flatten", {}, [])
    builder.run(order)
    ours = Graph(builder.nodes, builder.edges)
    try:
        ours.check_structure()
    except CompileError as exc:
        raise DeployError(f"the imported graph is invalid: {exc.message}",
                          where=exc.where) from None
    return ours, builder.state


def build_model(graph: Graph, state: dict[str, torch.Tensor], lookup: Any,
                input_shape: tuple[int, ...]):
    """Compile ``graph`` and load ``state``; shape mismatches name the node."""
    from workbench.pluginhost import compile_graph

    try:
        model = compile_graph(graph, lookup, tuple(input_shape))
    except CompileError as exc:
        raise DeployError(f"the imported network does not compile: {exc.message}",
                          where=exc.where) from None
    expected = model.state_dict()
    for key, want in expected.items():
        got = state.get(key)
        if got is None:
            raise DeployError(f"the file has no values for {key!r}", where="weights")
        if tuple(got.shape) != tuple(want.shape):
            node = key.split(".")[1]
            raise DeployError(f"{key} has shape {list(got.shape)} in the file but the network "
                              f"needs {list(want.shape)}", where=f"node {node!r}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise DeployError(f"the file has values the network lacks, e.g. {extra[0]!r}",
                          where="weights")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    return model


def _component(recorded: Any, lookup: Any, fallback: str) -> Any:
    """A dataset/encoder choice recorded by our exporter, if its plugin is installed."""

    if (isinstance(recorded, dict) and isinstance(recorded.get("id"), str)
            and lookup.get(recorded["id"]) is not None):
        return Component(recorded["id"], dict(recorded.get("params") or {}))
    return Component(fallback)


def read_project(path: str | Path, ctx: Any, *, dataset: str = "", time_steps: int = 0,
                 name: str = "", dt: float | None = None) -> tuple[Any, Any]:
    """Read the NIR file ``path`` as a project and its network (with the file's weights).

    The dataset is ``dataset`` when given, else the one our exporter recorded (if installed),
    else the embedded digits; likewise the encoder and the time steps (default 4). ``dt``
    (when given) overrides the Euler step the file records; with neither, 1e-4 is assumed and
    ``ctx.warn`` says so. ``ctx`` is the core's import context: it gives the installed specs
    and the dataset's input shape; the core checks the outputs against the classes and saves
    the project.
    """
    path = Path(path)
    lookup = ctx.lookup
    nir_graph = read_graph(path)
    meta = graph_metadata(nir_graph)
    dt, source = choose_dt(nir_graph, dt)
    warning = default_dt_warning(nir_graph) if source == "default" else ""
    if warning:
        ctx.warn(warning)
    project = Project(
        name=name or str(meta.get("project") or path.stem),
        graph=Graph(),
        dataset=(Component(dataset) if dataset
                 else _component(meta.get("dataset"), lookup, "wb_datasets.digits")),
        encoder=_component(meta.get("encoder"), lookup, "wb_core.direct"),
        time_steps=int(time_steps or meta.get("time_steps") or 4),
        description=f"Imported from the NIR file {path.name} (time step dt = {dt:g} s, "
                    f"{_DT_SOURCES[source]}).",
    )
    input_shape = ctx.input_shape(project)
    graph, state = from_nir(nir_graph, lookup, input_shape, dt=dt)
    project.graph = graph
    return project, build_model(graph, state, lookup, input_shape)
