"""How big a network may get before anything real is allocated for it.

Shape inference runs every node on meta tensors (no memory), so it can count what a graph would
hold before building it: the **activations per sample** (every node's output elements for one
sample at one time step, summed over the nodes) and the **parameters** (every parameter and
buffer element). :func:`~workbench.core.build.compile.compile_graph` refuses a graph over either
cap with a :class:`~workbench.core.model.errors.CompileError` naming the node that crosses it,
instead of letting a layer whose parameters are each within their allowed range ask for tens of
gigabytes.

The caps come from the project (``compute.max_activations`` and ``compute.max_params``); the
environment variables ``SNN_WORKBENCH_MAX_ACTIVATIONS`` and ``SNN_WORKBENCH_MAX_PARAMS``, when
set, replace them for every project on this machine (a user raises or lowers them without
editing any file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from workbench.core.model.errors import WorkbenchError
from workbench.core.model.project import (
    DEFAULT_MAX_ACTIVATIONS,
    DEFAULT_MAX_PARAMS,
    LIMIT_HIGH,
    ComputeSettings,
)

ACTIVATIONS_ENV = "SNN_WORKBENCH_MAX_ACTIVATIONS"
PARAMS_ENV = "SNN_WORKBENCH_MAX_PARAMS"


@dataclass(frozen=True)
class Limits:
    """The caps one compilation checks."""

    max_activations: int = DEFAULT_MAX_ACTIVATIONS
    max_params: int = DEFAULT_MAX_PARAMS

    @classmethod
    def resolve(cls, settings: ComputeSettings | None = None) -> Limits:
        """The project's caps (defaults without a project), each replaced by its environment
        variable when that is set."""
        base = settings or ComputeSettings()
        return cls(_env_int(ACTIVATIONS_ENV, base.max_activations),
                   _env_int(PARAMS_ENV, base.max_params))

    def activations_error(self, total: int) -> str:
        return (f"the network would hold {total:,} activations per sample and time step up to "
                f"this node, over the cap of {self.max_activations:,}; make the layers smaller, "
                f"or raise the cap (compute.max_activations in the project, or the environment "
                f"variable {ACTIVATIONS_ENV})")

    def params_error(self, total: int) -> str:
        return (f"the network would hold {total:,} parameters up to this node, over the cap of "
                f"{self.max_params:,}; make the layers smaller, or raise the cap "
                f"(compute.max_params in the project, or the environment variable {PARAMS_ENV})")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(float(raw)) if "e" in raw.lower() else int(raw)
    except (ValueError, OverflowError):
        raise WorkbenchError(f"expected a whole number such as 100000000 or 1e8, got {raw!r}",
                             where=f"environment variable {name}") from None
    if not 1 <= value <= LIMIT_HIGH:
        raise WorkbenchError(f"{value} is outside [1, {LIMIT_HIGH:.0e}]",
                             where=f"environment variable {name}")
    return value
