"""Projects: a folder holding ``project.json``, its weights file and ``runs/``.

The weights file is named by its content (``weights-<hash>.safetensors``) and chosen by the
project file's ``weights`` field, so one rename of ``project.json`` switches project and weights
together (:mod:`workbench.core.persistence.project_store`). A project file without the field
is from before that layout and uses ``weights.safetensors``.

``project.json`` is versioned (``format_version``) and human-readable. Loading checks every
field and names the bad one ("digits/project.json: training.epochs: expected an integer");
files from a newer format are refused, older ones migrated step by step. Node parameters hold
only what differs from the spec's defaults, so a spec's improved defaults reach old projects.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.model.errors import ProjectError
from workbench.core.model.graph import Graph, Node
from workbench.core.model.specs import SpecLookup

FORMAT = "snn-workbench-project"
FORMAT_VERSION = 1
PROJECT_FILE = "project.json"
#: the weights of a project file without a ``weights`` field (the layout before content names)
WEIGHTS_FILE = "weights.safetensors"
RUNS_DIR = "runs"
#: the largest training seed: numpy's seeds stop at 2**32 - 1, and one range everywhere means
#: the GUI shows every seed the CLI accepts
SEED_MAX = 2**32 - 1

#: format_version N -> function upgrading a version-N dict to N+1 (filled as the format grows)
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass
class Component:
    """A chosen contribution and the parameters set on it."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "params": dict(self.params)}


@dataclass
class Training:
    rule: Component = field(default_factory=lambda: Component("wb_core.bptt"))
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0


@dataclass
class EnergySettings:
    table: str = "wb_core.fp32_45nm"
    encode_once: bool = True
    sop_counting: str = "exact"
    #: a user-defined table ``{"e_mac_pj": .., "e_ac_pj": .., "source": ..}`` used when
    #: ``table == "custom"``
    custom: dict[str, Any] | None = None


#: where runs compute: ``auto`` picks CUDA, then Apple's MPS, then the CPU
DEVICES = ("auto", "cpu", "cuda", "mps")
#: the arithmetic of forward passes: fp32, or bf16/fp16 under torch's automatic mixed precision
PRECISIONS = ("fp32", "bf16", "fp16")
#: how spiking neurons run their time loop: ``fused`` compiled kernels, the ``eager`` loop, or
#: ``auto`` (fused for layers large enough to repay the compile, where a compiler works)
KERNELS = ("auto", "eager", "fused")
#: default caps on a network's size, checked before anything real is allocated (see
#: workbench.core.build.limits): 10^8 activations per sample and time step is ten times a
#: ViT-Base's, 10^9 parameters (4 GB of fp32) more than a desktop trains
DEFAULT_MAX_ACTIVATIONS = 10**8
DEFAULT_MAX_PARAMS = 10**9
#: the largest cap a project may set
LIMIT_HIGH = 10**15


@dataclass
class ComputeSettings:
    """Where and in what precision every run of the project computes.

    ``threads`` 0 picks the count from the cores and the machine's current load
    (:func:`workbench.core.build.compute.auto_threads`); ``kernels`` chooses the neurons'
    time-loop kernels; ``compile`` runs the whole network through ``torch.compile`` in training."""

    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0
    kernels: str = "auto"
    compile: bool = False
    #: caps on the network's size (activations per sample and time step; parameters)
    max_activations: int = DEFAULT_MAX_ACTIVATIONS
    max_params: int = DEFAULT_MAX_PARAMS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "precision": self.precision,
                               "threads": self.threads}
        # the caps and the newer switches are written only when changed, so projects that keep
        # them stay as they were
        if self.kernels != "auto":
            out["kernels"] = self.kernels
        if self.compile:
            out["compile"] = True
        if self.max_activations != DEFAULT_MAX_ACTIVATIONS:
            out["max_activations"] = self.max_activations
        if self.max_params != DEFAULT_MAX_PARAMS:
            out["max_params"] = self.max_params
        return out


@dataclass
class Project:
    name: str
    graph: Graph
    dataset: Component = field(default_factory=lambda: Component("wb_datasets.digits"))
    encoder: Component = field(default_factory=lambda: Component("wb_core.direct"))
    time_steps: int = 4
    training: Training = field(default_factory=Training)
    energy: EnergySettings = field(default_factory=EnergySettings)
    compute: ComputeSettings = field(default_factory=ComputeSettings)
    description: str = ""
    compression: list[dict[str, Any]] = field(default_factory=list)
    deploy: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: the folder the project was loaded from or saved to (None for a new project)
    folder: Path | None = None
    #: the name of the weights file in :attr:`folder` (None: not trained); set by saves
    weights_file: str | None = None

    @property
    def weights_path(self) -> Path | None:
        """The project's weights file (None without a folder or weights; it may not exist)."""
        if self.folder is None or self.weights_file is None:
            return None
        return self.folder / self.weights_file

    @property
    def file(self) -> Path | None:
        return self.folder / PROJECT_FILE if self.folder else None

    def copy(self) -> Project:
        twin = copy.deepcopy(self)
        return twin

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for n in self.graph.nodes:
            item: dict[str, Any] = {"id": n.id, "spec": n.spec, "spec_version": n.spec_version,
                                    "params": dict(n.params)}
            if n.position is not None:
                item["position"] = [float(n.position[0]), float(n.position[1])]
            nodes.append(item)
        energy: dict[str, Any] = {"table": self.energy.table,
                                  "encode_once": self.energy.encode_once,
                                  "sop_counting": self.energy.sop_counting}
        if self.energy.custom is not None:
            energy["custom"] = dict(self.energy.custom)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "description": self.description,
            "dataset": self.dataset.to_dict(),
            "encoder": {**self.encoder.to_dict(), "time_steps": self.time_steps},
            "graph": {"nodes": nodes, "edges": [list(e) for e in self.graph.edges]},
            "training": {"rule": self.training.rule.to_dict(), "epochs": self.training.epochs,
                         "batch_size": self.training.batch_size, "seed": self.training.seed},
            "energy": energy,
            "compute": self.compute.to_dict(),
            "compression": copy.deepcopy(self.compression),
            "deploy": copy.deepcopy(self.deploy),
            "extras": copy.deepcopy(self.extras),
            "weights": self.weights_file,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "project") -> Project:
        r = _Reader(where)
        data = r.mapping(data, "")
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise ProjectError(f"this is not an SNN Workbench project (format {fmt!r})",
                               where=where)
        version = r.integer(data, "format_version", low=0)
        if version > FORMAT_VERSION:
            raise ProjectError(
                f"saved by a newer SNN Workbench (format version {version}; this version reads "
                f"up to {FORMAT_VERSION}); update SNN Workbench to open it", where=where)
        while version < FORMAT_VERSION:
            if version not in MIGRATIONS:
                raise ProjectError(f"format version {version} is too old to migrate", where=where)
            data = MIGRATIONS[version](copy.deepcopy(data))
            version += 1
        encoder = r.mapping(data.get("encoder", {}), "encoder")
        graph_data = r.mapping(data.get("graph"), "graph")
        training = r.mapping(data.get("training", {}), "training")
        energy = r.mapping(data.get("energy", {}), "energy")
        custom = energy.get("custom")
        compute = r.mapping(data.get("compute", {}), "compute")
        return cls(
            name=r.text(data, "name", default="untitled"),
            description=r.text(data, "description", default=""),
            dataset=r.component(data.get("dataset"), "dataset", "wb_datasets.digits"),
            encoder=r.component(encoder, "encoder", "wb_core.direct"),
            time_steps=r.integer(encoder, "time_steps", "encoder", default=4, low=1, high=10_000),
            graph=r.graph(graph_data),
            training=Training(
                rule=r.component(training.get("rule", {}), "training.rule", "wb_core.bptt"),
                epochs=r.integer(training, "epochs", "training", default=10, low=0),
                batch_size=r.integer(training, "batch_size", "training", default=64, low=1),
                seed=r.integer(training, "seed", "training", default=0, low=0, high=SEED_MAX),
            ),
            energy=EnergySettings(
                table=r.text(energy, "table", "energy", default="wb_core.fp32_45nm"),
                encode_once=r.boolean(energy, "encode_once", "energy", default=True),
                sop_counting=r.choice(energy, "sop_counting", "energy", ("exact", "rate"),
                                      default="exact"),
                custom=None if custom is None else r.custom_table(custom),
            ),
            compute=ComputeSettings(
                device=r.choice(compute, "device", "compute", DEVICES, default="auto"),
                precision=r.choice(compute, "precision", "compute", PRECISIONS, default="fp32"),
                threads=r.integer(compute, "threads", "compute", default=0, low=0, high=1024),
                kernels=r.choice(compute, "kernels", "compute", KERNELS, default="auto"),
                compile=r.boolean(compute, "compile", "compute", default=False),
                max_activations=r.integer(compute, "max_activations", "compute", low=1,
                                          default=DEFAULT_MAX_ACTIVATIONS, high=LIMIT_HIGH),
                max_params=r.integer(compute, "max_params", "compute", low=1,
                                     default=DEFAULT_MAX_PARAMS, high=LIMIT_HIGH),
            ),
            compression=r.list_of_mappings(data.get("compression", []), "compression"),
            deploy=None if data.get("deploy") is None else r.mapping(data["deploy"], "deploy"),
            extras=r.mapping(data.get("extras", {}), "extras"),
            # no field: a project saved before weights were named by content
            weights_file=(r.file_name(data, "weights") if "weights" in data else WEIGHTS_FILE),
        )


class _Reader:
    """Typed field access whose errors name the file and the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field_path: str, message: str) -> ProjectError:
        return ProjectError(message, where=f"{self.where}: {field_path}" if field_path
                            else self.where)

    @staticmethod
    def _path(parent: str, key: str) -> str:
        return f"{parent}.{key}" if parent else key

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None and path:
            raise self.fail(path, "missing")
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object {{...}}, got {type(value).__name__}")
        return value

    def text(self, data: dict[str, Any], key: str, parent: str = "", *, default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            raise self.fail(self._path(parent, key), f"expected text, got {value!r}")
        return value

    def boolean(self, data: dict[str, Any], key: str, parent: str = "", *, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(self._path(parent, key), f"expected true or false, got {value!r}")
        return value

    def integer(self, data: dict[str, Any], key: str, parent: str = "", *, default: int | None = None,
                low: int | None = None, high: int | None = None) -> int:
        path = self._path(parent, key)
        if key not in data and default is None:
            raise self.fail(path, "missing")
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(path, f"{value} is outside [{low}, {high if high is not None else '∞'}]")
        return value

    def file_name(self, data: dict[str, Any], key: str) -> str | None:
        """A file beside ``project.json`` (or null): a plain name, so a hand-edited project
        can never make a save read or delete a file outside its folder."""
        value = data.get(key)
        if value is None:
            return None
        if (not isinstance(value, str) or not value.strip() or "/" in value or "\\" in value
                or ".." in value or "\0" in value or value.startswith(".")):
            raise self.fail(key, f"expected a file name in the project folder (like "
                                 f"'weights-0123456789abcdef.safetensors') or null, got {value!r}")
        return value

    def choice(self, data: dict[str, Any], key: str, parent: str, options: tuple[str, ...], *,
               default: str) -> str:
        value = data.get(key, default)
        if value not in options:
            raise self.fail(self._path(parent, key), f"expected one of {', '.join(options)}, "
                                                     f"got {value!r}")
        return value

    def component(self, value: Any, path: str, default_id: str) -> Component:
        value = self.mapping({} if value is None else value, path)
        spec_id = self.text(value, "id", path, default=default_id)
        params = self.mapping(value.get("params", {}), f"{path}.params")
        return Component(spec_id, dict(params))

    def list_of_mappings(self, value: Any, path: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return [self.mapping(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def custom_table(self, value: Any) -> dict[str, Any]:
        table = self.mapping(value, "energy.custom")
        for key in ("e_mac_pj", "e_ac_pj"):
            v = table.get(key)
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                    or v < 0):
                raise self.fail(f"energy.custom.{key}", f"expected a finite number >= 0 (pJ), "
                                                        f"got {v!r}")
        self.text(table, "source", "energy.custom", default="user-defined")
        return dict(table)

    def graph(self, data: dict[str, Any]) -> Graph:
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list):
            raise self.fail("graph.nodes", "expected a list of nodes")
        nodes = []
        for i, raw in enumerate(raw_nodes):
            path = f"graph.nodes[{i}]"
            raw = self.mapping(raw, path)
            node_id = raw.get("id")
            if not isinstance(node_id, str) or not node_id:
                raise self.fail(f"{path}.id", f"expected a node id, got {node_id!r}")
            spec = raw.get("spec")
            if not isinstance(spec, str) or "." not in spec:
                raise self.fail(f"{path}.spec", f"expected a spec id like 'wb_core.linear', "
                                                f"got {spec!r}")
            position = raw.get("position")
            if position is not None:
                if (not isinstance(position, list) or len(position) != 2
                        or not all(isinstance(v, (int, float)) for v in position)):
                    raise self.fail(f"{path}.position", f"expected [x, y], got {position!r}")
                position = (float(position[0]), float(position[1]))
            nodes.append(Node(
                id=node_id, spec=spec,
                params=dict(self.mapping(raw.get("params", {}), f"{path}.params")),
                spec_version=self.integer(raw, "spec_version", path, default=1, low=1),
                position=position,
            ))
        raw_edges = data.get("edges", [])
        if not isinstance(raw_edges, list):
            raise self.fail("graph.edges", "expected a list of [from, to] pairs")
        edges = []
        for i, e in enumerate(raw_edges):
            if not (isinstance(e, list) and len(e) == 2 and all(isinstance(v, str) for v in e)):
                raise self.fail(f"graph.edges[{i}]", f"expected [from, to], got {e!r}")
            edges.append((e[0], e[1]))
        graph = Graph(nodes, edges)
        try:
            graph.check_structure()
        except ProjectError:
            raise
        except Exception as exc:  # CompileError: say where in the file
            raise self.fail("graph", str(exc)) from None
        return graph


def bind_specs(project: Project, lookup: SpecLookup) -> list[str]:
    """Match the graph's nodes to installed specs; return notes for the user.

    Unknown specs become placeholder nodes (kept, not dropped, so saving loses nothing);
    ids renamed through a spec's ``replaces`` are updated; parameters saved by an older spec
    version are migrated; a newer spec version than installed is refused.
    """
    notes: list[str] = []
    for node in project.graph.nodes:
        spec = lookup.get(node.spec)
        where = f"{project.file or 'project'}: node {node.id!r}"
        if spec is None:
            node.placeholder = True
            notes.append(f"node {node.id!r} uses {node.spec!r}, which no installed plugin "
                         "provides; it is kept as a placeholder")
            continue
        node.placeholder = False
        if spec.id != node.spec:
            notes.append(f"node {node.id!r}: {node.spec!r} is now {spec.id!r}")
            node.spec = spec.id
        if node.spec_version > spec.spec_version:
            raise ProjectError(
                f"saved with version {node.spec_version} of {spec.id}, newer than the installed "
                f"version {spec.spec_version}; update the plugin {spec.plugin!r}", where=where)
        if node.spec_version < spec.spec_version:
            if spec.migrate is None:
                raise ProjectError(f"{spec.id} cannot migrate parameters from version "
                                   f"{node.spec_version}", where=where)
            node.params = spec.migrate(dict(node.params), node.spec_version)
            notes.append(f"node {node.id!r}: parameters migrated from {spec.id} version "
                         f"{node.spec_version} to {spec.spec_version}")
            node.spec_version = spec.spec_version
    return notes
