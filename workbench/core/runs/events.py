"""Typed run events: the control plane between a run and whoever shows it (CLI, GUI).

Every event carries the ``run_id`` of the run that made it, so a view can drop events of a run
it no longer shows. ``to_dict`` gives the JSON line the CLI prints with ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class RunEvent:
    run_id: str

    @property
    def name(self) -> str:
        return _NAMES[type(self)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON line of the event; in-memory results (``RunFinished.result``) stay out."""
        return {"event": self.name, **{f.name: getattr(self, f.name) for f in fields(self)
                                       if f.metadata.get("json", True)}}


@dataclass(frozen=True)
class RunStarted(RunEvent):
    kind: str  # "train", "evaluate", ...
    total: int  # batches the run will take
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress(RunEvent):
    done: int
    total: int
    epoch: int = 0
    message: str = ""


@dataclass(frozen=True)
class MetricSample(RunEvent):
    """``step`` counts batches from the run's start; epoch-end samples have ``epoch_end``."""

    epoch: int
    step: int
    values: dict[str, float]
    epoch_end: bool = False


@dataclass(frozen=True)
class EnergySample(RunEvent):
    samples: int
    report: dict[str, Any]


@dataclass(frozen=True)
class StepStarted(RunEvent):
    """A named step of a run began (a deploy's convert, synthesis, place-and-route…); made by
    the run from its progress messages, so every driver lists the same steps."""

    step: str


@dataclass(frozen=True)
class Artifact(RunEvent):
    path: str
    kind: str


@dataclass(frozen=True)
class Log(RunEvent):
    level: str
    message: str


@dataclass(frozen=True)
class RunFinished(RunEvent):
    """``status`` is "ok", "cancelled" or "failed"; a failure on bad input has
    ``error_kind == "input"`` (the user can fix it), else "internal"."""

    status: str
    error: str = ""
    error_kind: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    traceback: str = ""
    #: for an input error, the file, field or option it names (``error`` starts with it), so a
    #: driver can name it its own way (the CLI says ``--limit`` for the field ``limit``)
    error_where: str = ""
    #: what the run made in memory for an in-process driver (probe records, a compressed
    #: variant, an imported project); never written to a record or printed
    result: Any = field(default=None, compare=False, repr=False, metadata={"json": False})


_NAMES = {RunStarted: "run_started", Progress: "progress", MetricSample: "metric",
          EnergySample: "energy", StepStarted: "step", Artifact: "artifact", Log: "log",
          RunFinished: "run_finished"}
