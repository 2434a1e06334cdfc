"""Hook specifications (design.md §4).

Contribution hooks are declarative: they take no arguments, return lists of frozen spec objects
and must be cheap (no torch, no device I/O). Heavy code runs later, when a spec's lazy factory is
resolved for a run. Arguments may be added to a hook later; implementations may always accept
fewer than the spec offers (pluggy's opt-in arguments), so adding one breaks no plugin.
"""

from __future__ import annotations

import pluggy

from workbench.core.model.specs import (
    AttentionSpec,
    BackendSpec,
    BlockSpec,
    CompressionSpec,
    DatasetSpec,
    EncoderSpec,
    EnergyModelSpec,
    LearningRuleSpec,
    NeuronSpec,
    ParamEditorSpec,
    ViewSpec,
)

PROJECT_NAME = "snn_workbench"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def wb_neurons() -> list[NeuronSpec]:
    """Spiking neurons: modules with explicit state, ``step(x, state) -> (spikes, state)``."""


@hookspec
def wb_blocks() -> list[BlockSpec]:
    """Layers and composite blocks, built as ``factory(in_shapes, **params)``."""


@hookspec
def wb_attention() -> list[AttentionSpec]:
    """Attention blocks whose modules return ``(out, maps)``."""


@hookspec
def wb_encoders() -> list[EncoderSpec]:
    """Encoders: ``encode(x, T) -> [T, B, ...]``."""


@hookspec
def wb_compressions() -> list[CompressionSpec]:
    """Compression passes: ``apply(model, data, **params) -> (model, report)``."""


@hookspec
def wb_learning_rules() -> list[LearningRuleSpec]:
    """Learning rules: trainers with ``train_step(x, y) -> metrics``."""


@hookspec
def wb_datasets() -> list[DatasetSpec]:
    """Datasets: factories returning :class:`workbench.core.data.DatasetSplits`."""


@hookspec
def wb_backends() -> list[BackendSpec]:
    """Simulator and hardware backends."""


@hookspec
def wb_energy_models() -> list[EnergyModelSpec]:
    """Cost tables for the energy ledger (pJ per MAC and per accumulate)."""


@hookspec
def wb_gui_views() -> list[ViewSpec]:
    """Extra GUI panels; factories live in a plugin's ``_qt`` module and are imported lazily."""


@hookspec
def wb_gui_param_editors() -> list[ParamEditorSpec]:
    """GUI editors for parameter kinds."""


#: hook name -> the spec class its items must be.
CONTRIBUTION_HOOKS: dict[str, type] = {
    "wb_neurons": NeuronSpec,
    "wb_blocks": BlockSpec,
    "wb_attention": AttentionSpec,
    "wb_encoders": EncoderSpec,
    "wb_compressions": CompressionSpec,
    "wb_learning_rules": LearningRuleSpec,
    "wb_datasets": DatasetSpec,
    "wb_backends": BackendSpec,
    "wb_energy_models": EnergyModelSpec,
    "wb_gui_views": ViewSpec,
    "wb_gui_param_editors": ParamEditorSpec,
}
