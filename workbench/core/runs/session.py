"""A project bound to the installed plugins: its data, encoder, network and runs.

The CLI and the GUI both work through a :class:`Session`; neither builds networks or loads data
on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from workbench.core.build.compile import compile_graph, validate
from workbench.core.build.compute import Compute, on_device
from workbench.core.build.compute import resolve as resolve_compute
from workbench.core.build.encoding import Encoding
from workbench.core.build.energy import CostTable
from workbench.core.build.limits import Limits
from workbench.core.build.network import CompiledNetwork
from workbench.core.build.quantized import detach_quant, quantized_modules
from workbench.core.build.report import CompileReport
from workbench.core.build.spike_code import node_problems, rule_problem
from workbench.core.data.splits import DatasetSplits
from workbench.core.model.errors import CompileError, DatasetError, ProjectError, WorkbenchError
from workbench.core.model.project import Component, ComputeSettings, Project, bind_specs
from workbench.core.model.specs import (
    DatasetSpec,
    EncoderSpec,
    EnergyModelSpec,
    LearningRuleSpec,
    Spec,
    SpecLookup,
)
from workbench.core.persistence.project_store import commit_weights
from workbench.core.persistence.weights import load_weights, save_weights, weights_bytes
from workbench.core.runs import distributed, session_runs
from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import Run
from workbench.core.runs.events import Log, RunEvent, RunFinished, RunStarted
from workbench.core.runs.training import evaluate, train


class Session:
    def __init__(self, project: Project, lookup: SpecLookup) -> None:
        self.project = project
        self.lookup = lookup
        self.notes = bind_specs(project, lookup)
        self.model: CompiledNetwork | None = None
        self.weights_loaded = False
        self._data: DatasetSplits | None = None
        self._data_key: str | None = None
        #: the last compression result of this session: (project, model)
        self.compressed: tuple[Project, CompiledNetwork] | None = None
        self.trained_in_session = False
        #: compute settings for this session only (the CLI's --device/--precision); the
        #: project's own settings, and every variant saved from it, stay as they were
        self.compute_override: ComputeSettings | None = None

    # -- parts -------------------------------------------------------------------------------
    def _where(self, field_path: str) -> str:
        return f"{self.project.file or 'project'}: {field_path}"

    def _spec(self, component: Component, cls: type[Spec], field_path: str) -> Spec:
        spec = self.lookup.get(component.id)
        if spec is None:
            raise ProjectError(f"{component.id!r} is not provided by any installed plugin "
                               "(see `snn-workbench plugins`)", where=self._where(field_path))
        if not isinstance(spec, cls):
            raise ProjectError(f"{component.id!r} is a {spec.KIND}, not a {cls.KIND}",
                               where=self._where(field_path))
        return spec

    def _params(self, spec: Spec, component: Component, field_path: str) -> dict[str, Any]:
        return spec.check_params(component.params, where=self._where(field_path))

    def data(self) -> DatasetSplits:
        """Load the project's dataset (cached until the dataset or its params change)."""
        component = self.project.dataset
        key = repr((component.id, sorted(component.params.items())))
        if self._data is None or key != self._data_key:
            spec = self._spec(component, DatasetSpec, "dataset")
            params = self._params(spec, component, "dataset")
            try:
                data = spec.create(**params)
            except WorkbenchError:
                raise
            except Exception as exc:  # plugin code: report, don't crash
                raise DatasetError(f"{type(exc).__name__}: {exc}",
                                   where=f"dataset {component.id}") from exc
            if not isinstance(data, DatasetSplits):
                raise DatasetError(f"the plugin returned {type(data).__name__}, not DatasetSplits",
                                   where=f"dataset {component.id}")
            self._data, self._data_key = data, key
        return self._data

    def declared_shape(self) -> tuple[tuple[int, ...], int] | None:
        """``(input_shape, n_classes)`` as the dataset declares them without loading its data
        (:attr:`DatasetSpec.shape`), or None when it declares nothing."""
        component = self.project.dataset
        spec = self._spec(component, DatasetSpec, "dataset")
        shape_of = spec.resolve_shape()
        if shape_of is None:
            return None
        params = self._params(spec, component, "dataset")
        try:
            input_shape, n_classes = shape_of(**params)
            return tuple(int(n) for n in input_shape), int(n_classes)
        except WorkbenchError:
            raise
        except Exception as exc:  # plugin code: report, don't crash
            raise DatasetError(f"{type(exc).__name__}: {exc}",
                               where=f"dataset {component.id} (declared shape)") from exc

    def encoding(self) -> Encoding:
        """The project's encoder with the optional parts of its contract filled in."""
        spec = self._spec(self.project.encoder, EncoderSpec, "encoder")
        encoder = spec.create(**self._params(spec, self.project.encoder, "encoder"))
        return Encoding(encoder, self.project.time_steps)

    def encoder(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x[B, ...] -> [T, B, ...]`` with the project's encoder and time steps."""
        return self.encoding()

    def step_shape(self) -> tuple[int, ...]:
        """The per-step shape the network's first node sees (the encoder may change it)."""
        return self.encoding().step_shape(self.data().input_shape)

    def time_steps(self) -> int:
        """T as the runs use it: the project's, unless the encoder sets it from the data."""
        return self.encoding().time_steps(self.data().input_shape)

    def rule_spec(self) -> LearningRuleSpec:
        return self._spec(self.project.training.rule, LearningRuleSpec, "training.rule")

    def readout(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``out -> class scores [B, C]``: the learning rule's readout (mean over T unless the
        rule says otherwise, e.g. the earliest spike)."""
        return self.rule_spec().resolve_readout()

    def compute(self) -> Compute:
        """The project's device, precision and threads, checked (an unavailable device is an
        input error naming ``compute.device``)."""
        return resolve_compute(self.compute_settings(), where=self._where("compute"))

    def compute_settings(self) -> ComputeSettings:
        """The settings runs use: this session's override, else the project's."""
        return self.compute_override or self.project.compute

    def cost_table(self, table: str | None = None) -> CostTable:
        """The project's cost table, or ``table`` (an energy-model id, or "custom") instead."""
        settings = self.project.energy
        if table is not None and table != "custom":
            # chosen for this run (the CLI's --table): a wrong id is the option's, not the file's
            spec = self.lookup.get(table)
            if not isinstance(spec, EnergyModelSpec):
                raise WorkbenchError(f"{table!r} is not an installed energy model (see "
                                     "`snn-workbench plugins`)", where="table")
            return CostTable.from_spec(spec)
        table = table or settings.table
        if table == "custom":
            custom = settings.custom or {}
            if "e_mac_pj" not in custom or "e_ac_pj" not in custom:
                raise ProjectError('table "custom" needs energy.custom with e_mac_pj and e_ac_pj',
                                   where=self._where("energy.custom"))
            return CostTable("custom", "User-defined", float(custom["e_mac_pj"]),
                             float(custom["e_ac_pj"]), str(custom.get("source", "user-defined")))
        spec = self._spec(Component(table), EnergyModelSpec, "energy.table")
        return CostTable.from_spec(spec)

    # -- network -----------------------------------------------------------------------------
    def validate(self) -> CompileReport:
        """Every node's shape and errors, a node that disagrees with the encoder on how spikes
        travel (:mod:`workbench.core.build.spike_code`) included."""
        report = validate(self.project.graph, self.lookup, self.step_shape(),
                          limits=self.limits())
        for node_id, message in self.spike_code_problems().items():
            info = report.nodes.get(node_id)
            if info is not None and not info.error:
                info.error = message
        return report

    def spike_code_problems(self) -> dict[str, str]:
        """``{node id: why}`` for the layers that take another spike code than the encoder
        emits (spike trains vs firing times)."""
        encoder = self._spec(self.project.encoder, EncoderSpec, "encoder")
        return node_problems(self.project.graph, self.lookup, encoder)

    def limits(self) -> Limits:
        """The caps on the network's size: the project's, or the environment's."""
        return Limits.resolve(self.compute_settings())

    def build(self, *, load_saved_weights: bool = True,
              shape: tuple[tuple[int, ...], int] | None = None) -> CompiledNetwork:
        """Compile the graph (seeded, so the initial weights are reproducible) and load
        ``weights.safetensors`` when the project has one.

        ``shape`` = ``(input_shape, n_classes)`` compiles for that shape without loading the
        data (see :meth:`declared_shape`); by default the data says."""
        if shape is None:
            data = self.data()
            shape = (data.input_shape, data.n_classes)
        input_shape, n_classes = shape
        for node_id, message in self.spike_code_problems().items():
            raise CompileError(message, node=node_id)
        torch.manual_seed(self.project.training.seed)
        model = compile_graph(self.project.graph, self.lookup,
                              self.encoding().step_shape(input_shape), limits=self.limits())
        self.trained_in_session = False
        out = model.output_shape
        if not out or out[-1] != n_classes:
            raise CompileError(
                f"the network outputs {list(out)} per step, but the dataset has {n_classes} "
                f"classes; the last layer needs {n_classes} outputs", node=model.output_node)
        weights = self.project.weights_path
        self.weights_loaded = False
        if load_saved_weights and weights is not None and weights.exists():
            load_weights(model, weights)
            self.weights_loaded = True
        self.model = model
        return model

    def save_weights(self, path: str | Path | None = None) -> Path:
        """Write the network's weights to ``path``, or by default as the project's weights:
        a new content-named file that the project file on disk then names (only its
        ``weights`` field changes, see :func:`~workbench.core.persistence.project_store.
        commit_weights`). Returns the file written."""
        if self.model is None:
            raise WorkbenchError("there is no network to save yet; build or train it first")
        if path is not None:
            return save_weights(self.model, path)
        folder = self.project.folder
        if folder is None:
            raise ProjectError("the project has no folder yet; save the project first")
        return commit_weights(self.project, weights_bytes(self.model, where=str(folder)))

    # -- runs ------------------------------------------------------------------------------
    # Start runs through workbench.core.runs.catalog (recorded, guarded, on the project's
    # device); these two methods are the shortcuts for train and evaluate.
    def train(self, **options: Any) -> Run:
        """``catalog.train(self, ...)``: a recorded training run."""
        return session_runs.train(self, **options)

    def evaluate(self, **options: Any) -> Run:
        """``catalog.evaluate(self, ...)``: accuracy and the energy ledger."""
        return session_runs.evaluate(self, **options)

    def train_events(self, *, epochs: int | None, fresh: bool, cancel: CancelToken, run_id: str,
                     on_batch: Callable[[], None] | None,
                     load_saved_weights: bool) -> Iterator[RunEvent]:
        """The body of a training run (the catalog wraps it)."""
        training = self.project.training
        spec = self.rule_spec()
        params = self._params(spec, training.rule, "training.rule")
        mismatch = rule_problem(spec, self._spec(self.project.encoder, EncoderSpec, "encoder"))
        if mismatch:
            raise ProjectError(mismatch, where=self._where("training.rule"))
        compute = self.compute()
        compute.enter()
        world = distributed.world(compute)  # under torchrun: this rank, on its own GPU
        if self.model is None or fresh:
            self.build(load_saved_weights=load_saved_weights and not fresh)
        data = self.data()
        epochs = training.epochs if epochs is None else epochs
        quantized = quantized_modules(self.model)
        for module in quantized.values():
            detach_quant(module)
        config = {"project": self.project.name, "rule": spec.id, "epochs": epochs,
                  "batch_size": training.batch_size, "time_steps": self.time_steps(),
                  "seed": training.seed, "dataset": self.project.dataset.id}

        def make_trainer(model: torch.nn.Module, **schedule: Any) -> Any:
            return spec.create(model, **schedule, **params)

        torch.manual_seed(training.seed)
        with on_device(self.model, compute):
            for event in train(self.model, self.encoder(), data.train, data.test, make_trainer,
                               epochs=epochs, batch_size=training.batch_size, seed=training.seed,
                               cancel=cancel, run_id=run_id, on_batch=on_batch, config=config,
                               compute=compute, readout=spec.resolve_readout(), world=world):
                if isinstance(event, RunFinished) and event.status == "ok":
                    self.trained_in_session = True
                yield event
                if isinstance(event, RunStarted) and quantized:
                    yield Log(run_id, "warning",
                              f"training moves the quantised weights of {len(quantized)} "
                              "layer(s) off their grid: they are saved at full precision from "
                              "now on; compress the trained network again to quantise it")

    @property
    def has_trained_model(self) -> bool:
        """A network with trained weights is in memory (loaded from the project, or trained in
        this session), so it can be compressed or deployed without a file."""
        return self.model is not None and (self.weights_loaded or self.trained_in_session)

    def evaluate_events(self, *, cancel: CancelToken, run_id: str, limit: int | None = None,
                        batch_size: int = 256, table: str | None = None) -> Iterator[RunEvent]:
        """The body of an evaluation run (the catalog wraps it)."""
        compute = self.compute()
        compute.enter()
        if self.model is None:
            self.build()
        settings = self.project.energy
        torch.manual_seed(self.project.training.seed)  # the rate encoder draws random spikes
        with on_device(self.model, compute):
            yield from evaluate(self.model, self.encoder(), self.data().test,
                                self.cost_table(table),
                                batch_size=batch_size, encode_once=settings.encode_once,
                                sop_counting=settings.sop_counting, limit=limit, cancel=cancel,
                                run_id=run_id, compute=compute, readout=self.readout())
