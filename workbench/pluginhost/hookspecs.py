"""Hook specifications: what a plugin may contribute.

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
    RunnerSpec,
    ViewSpec,
)

PROJECT_NAME = "snn_workbench"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def wb_neurons() -> list[NeuronSpec]:
    """Spiking neurons. ``factory(**params)`` builds a module with explicit state:
    ``initial_state(x)``, ``step(x, state) -> (spikes, state)`` and a multi-step
    ``forward(x[T, B, ...]) -> spikes[T, B, ...]``."""


@hookspec
def wb_blocks() -> list[BlockSpec]:
    """Layers and composite blocks: ``factory(in_shapes, **params) -> nn.Module``, where
    ``in_shapes`` are the per-sample shapes of the block's inputs (no time or batch axis)."""


@hookspec
def wb_attention() -> list[AttentionSpec]:
    """Attention blocks, built like blocks; their modules return ``(out, maps)``."""


@hookspec
def wb_encoders() -> list[EncoderSpec]:
    """Encoders: ``factory(**params)`` builds an object with ``encode(x, T)`` turning
    ``x[B, ...]`` into ``spikes[T, B, ...]`` (or ``(spikes, side)``); it may also offer
    ``step_shape(input_shape)``, ``time_steps(input_shape, T)`` and ``decode(spikes, side)``
    (:mod:`workbench.core.build.encoding`, protocol :class:`~.protocols.Encoder`)."""


@hookspec
def wb_compressions() -> list[CompressionSpec]:
    """Compression methods. The factory is a generator function
    ``apply(ctx: CompressionContext, **params)``: it changes ``ctx.model`` (or builds a new one
    with ``ctx.compile(graph)``), yields events (``ctx.progress``, ``ctx.log``,
    ``yield from ctx.fine_tune(...)``) and returns a :class:`CompressionResult`
    (:mod:`workbench.core.runs.compress`)."""


@hookspec
def wb_learning_rules() -> list[LearningRuleSpec]:
    """Learning rules: ``factory(model, *, epochs, steps_per_epoch, **params)`` builds a
    trainer whose ``train_step(x, y)`` returns at least ``loss``, ``correct`` and ``count``;
    any other number is an extra metric, summed or averaged over an epoch as the trainer's
    ``metric_reductions`` says. The spec's ``readout`` (lazy ``"module:attr"``) turns outputs
    into class scores (protocol :class:`~.protocols.Trainer`)."""


@hookspec
def wb_datasets() -> list[DatasetSpec]:
    """Datasets: ``factory(**params)`` returns :class:`DatasetSplits` (of ``ArraySplit`` or
    ``StreamSplit``); the optional ``shape`` declares ``(input_shape, n_classes)`` without
    loading the data."""


@hookspec
def wb_backends() -> list[BackendSpec]:
    """Simulator, hardware and exchange backends. ``factory(**params)`` builds an object with
    ``targets()``, ``check(ctx)``, and the generators ``deploy(ctx)`` and ``run(ctx)``
    (:mod:`workbench.core.runs.deploy`); with ``formats=("nir",)`` on the spec it also has
    ``export_file(session, path)`` and ``read_file(path, ctx) -> (Project, model)``
    (:mod:`workbench.core.runs.exchange`). Protocols :class:`~.protocols.Backend` and
    :class:`~.protocols.ExchangeBackend`; a class that lacks a method is refused."""


@hookspec
def wb_energy_models() -> list[EnergyModelSpec]:
    """Cost tables for the energy ledger (pJ per MAC and per accumulate), with their source."""


@hookspec
def wb_runners() -> list[RunnerSpec]:
    """Places a training run can be sent to instead of this machine (a cluster, a batch
    queue). ``factory(**params)`` builds a runner whose ``submit(folder, command, *, excludes,
    env)`` returns a job to ``poll()`` and ``stop()`` (protocols :class:`~.protocols.Runner`
    and :class:`~.protocols.RemoteJob`; the run is :mod:`workbench.core.runs.remote`)."""


@hookspec
def wb_gui_views() -> list[ViewSpec]:
    """Extra GUI panels; factories live in a plugin's ``_qt`` module and are imported lazily."""


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
    "wb_runners": RunnerSpec,
    "wb_gui_views": ViewSpec,
}
