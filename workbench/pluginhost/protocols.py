"""The objects a plugin's factories build, as :class:`typing.Protocol` classes.

A plugin never subclasses these: any object with the methods fits (``isinstance`` works, they are
``runtime_checkable``, though it only looks at the method names). The plugin host checks a
backend's class against :class:`Backend` (and :class:`ExchangeBackend` when its spec lists
``formats``) when it registers the spec, and ``BackendSpec.create`` refuses an object that lacks
one of the methods, so a run never meets a half-made backend.

The type names in the signatures are those of :mod:`workbench.pluginhost`; they are imported
only for type checkers, so this module stays free of torch.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from workbench.core.build.network import CompiledNetwork
    from workbench.core.model.project import Project
    from workbench.core.runs.deploy import DeployContext, FitIssue
    from workbench.core.runs.events import RunEvent
    from workbench.core.runs.exchange import ImportContext
    from workbench.core.runs.remote import JobUpdate
    from workbench.core.runs.session import Session


@runtime_checkable
class Backend(Protocol):
    """A simulator or hardware target, built by ``BackendSpec.factory(**params)``.

    The deploy run calls ``check``, then ``deploy``, then ``run``; ``deploy`` and ``run`` are
    generators that yield ``ctx.progress(...)``/``ctx.log(...)`` events and *return* their
    JSON-able result (``run`` yields ``ctx.live_energy(...)`` as samples finish).
    """

    def targets(self) -> Mapping[str, str]:
        """Target name -> one-line description; the first is the default."""
        ...

    def check(self, ctx: DeployContext) -> Iterable[FitIssue]:
        """What does not fit ``ctx.target``, naming the node; runs before any tool."""
        ...

    def deploy(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        """Convert, build (synthesise); return the report: resources, latency, energy…"""
        ...

    def run(self, ctx: DeployContext) -> Generator[RunEvent, None, dict[str, Any]]:
        """Run up to ``ctx.limit`` test samples; return ``{"accuracy", "samples", ...}``."""
        ...


@runtime_checkable
class ExchangeBackend(Protocol):
    """A backend that reads and writes a file format (its spec has ``formats=("nir",)``)."""

    def targets(self) -> Mapping[str, str]: ...

    def export_file(self, session: Session, path: str | Path) -> dict[str, Any]:
        """Write the session's network to ``path``; return details for the run's summary."""
        ...

    def read_file(self, path: str | Path, ctx: ImportContext
                  ) -> tuple[Project, CompiledNetwork]:
        """Read ``path`` into a new project and its network with the weights (the core saves
        both); ``ctx.input_shape(project)`` tells the shape the project's data gives."""
        ...


@runtime_checkable
class Trainer(Protocol):
    """A learning rule's trainer, ``LearningRuleSpec.factory(model, *, epochs, steps_per_epoch,
    **params)``. It may also have ``lr`` (shown while training) and ``metric_reductions``
    (``{"name": "sum" | "mean"}`` for its extra metrics)."""

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> Mapping[str, float]:
        """One optimisation step on ``x[T, B, ...]``; returns at least ``loss``, ``correct``
        and ``count``; every other number is an extra metric."""
        ...


@runtime_checkable
class Encoder(Protocol):
    """An encoder, ``EncoderSpec.factory(**params)``. It may also offer ``step_shape``,
    ``time_steps`` and ``decode(spikes, side)`` (see :mod:`workbench.core.build.encoding`)."""

    def encode(self, x: torch.Tensor, steps: int) -> Any:
        """``x[B, ...] -> spikes[T, B, ...]``, or ``(spikes, side)``."""
        ...


@runtime_checkable
class RemoteJob(Protocol):
    """A job a :class:`Runner` started: ``id`` (the cluster's), ``where`` (how a message names
    it: "Ray job raysubmit_x at http://host:8265")."""

    id: str
    where: str

    def poll(self) -> JobUpdate:
        """The output since the last poll, the state and, once it ended, the cluster's reason;
        a lost connection is a ``WorkbenchError`` saying the job may still be running."""
        ...

    def stop(self) -> None:
        """Ask the cluster to stop the job (``poll`` then reports "stopped")."""
        ...


@runtime_checkable
class Runner(Protocol):
    """Where a training run can be sent, ``RunnerSpec.factory(**params)``; building it connects
    (an unreachable cluster is a ``WorkbenchError`` naming the address)."""

    def submit(self, folder: Path, command: list[str], *, excludes: list[str],
               env: Mapping[str, str]) -> RemoteJob:
        """Send ``folder`` (less the ``excludes``, gitignore patterns) as the job's working
        directory and run ``command`` there with ``env`` added to its environment."""
        ...


def protocol_methods(protocol: type) -> tuple[str, ...]:
    """The method names a protocol asks for, in the order they are declared."""
    return tuple(name for name, value in vars(protocol).items()
                 if callable(value) and not name.startswith("_"))
