"""The public plugin API: the one module a plugin imports from the workbench.

::

    from workbench.pluginhost import hookimpl, NeuronSpec, ParamSpec

Everything in ``__all__`` is supported: it keeps its name and meaning across releases, whichever
module of the workbench holds it today. A plugin's ``hookimpl`` functions return spec objects
whose factories are lazy ``"module:attr"`` strings; the modules they name import the heavy names
(``CompiledNetwork``, ``CompressionContext``, ``Session``…) from here too. Those names load
torch, so they are imported on first use (PEP 562): ``import workbench.pluginhost`` — and so
discovering plugins — stays free of torch. The objects a factory builds follow the protocols
``Backend``, ``ExchangeBackend``, ``Trainer``, ``Encoder``, ``Runner`` and ``RemoteJob``.
The guide is ``docs/plugins.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

from workbench.core.model.errors import (
    CompileError,
    CompressionError,
    DatasetError,
    DeployError,
    PluginError,
    ProjectError,
    WeightsError,
    WorkbenchError,
)
from workbench.core.model.firing_time import RELPSP, FiringTimeNeuron, firing_time_neuron
from workbench.core.model.graph import Graph, Node
from workbench.core.model.project import PROJECT_FILE, Component, Project
from workbench.core.model.readout import class_scores, count_correct, earliest_spike
from workbench.core.model.specs import (
    ANY_SPIKE_CODE,
    SPIKE_TIMES,
    SPIKE_TRAINS,
    AttentionSpec,
    BackendSpec,
    BlockSpec,
    CompressionSpec,
    DatasetSpec,
    EncoderSpec,
    EnergyModelSpec,
    LearningRuleSpec,
    NeuronSpec,
    ParamSpec,
    RunnerSpec,
    Spec,
    ViewSpec,
)
from workbench.core.persistence.files import regular_file
from workbench.core.runs.events import (
    Artifact,
    EnergySample,
    Log,
    MetricSample,
    Progress,
    RunEvent,
    RunFinished,
    RunStarted,
    StepStarted,
)
from workbench.core.runs.remote import JobUpdate
from workbench.pluginhost.hookspecs import PROJECT_NAME
from workbench.pluginhost.protocols import (
    Backend,
    Encoder,
    ExchangeBackend,
    RemoteJob,
    Runner,
    Trainer,
)

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: name -> the module that holds it; imported on first access because these load torch.
_LAZY = {
    "CompiledNetwork": "workbench.core.build.network",
    "compile_graph": "workbench.core.build.compile",
    "kernel_mode": "workbench.core.build.compute",
    "trace_layers": "workbench.core.build.first_layers",
    "QuantizedTensor": "workbench.core.build.quantized",
    "attach": "workbench.core.build.quantized",
    "detach_quant": "workbench.core.build.quantized",
    "quantized_modules": "workbench.core.build.quantized",
    "EnergyMeter": "workbench.core.build.energy",
    "is_neuron_module": "workbench.core.build.energy",
    "emits_spike_times": "workbench.core.build.energy",
    "layer_name": "workbench.core.build.energy",
    "spike_product_ops": "workbench.core.build.energy",
    "ArraySplit": "workbench.core.data.splits",
    "DatasetSplits": "workbench.core.data.splits",
    "StreamSplit": "workbench.core.data.streaming",
    "CompressionContext": "workbench.core.runs.compress",
    "CompressionResult": "workbench.core.runs.compress",
    "DeployContext": "workbench.core.runs.deploy",
    "FitIssue": "workbench.core.runs.deploy",
    "ImportContext": "workbench.core.runs.exchange",
    "Session": "workbench.core.runs.session",
}

if TYPE_CHECKING:
    from workbench.core.build.compile import compile_graph
    from workbench.core.build.compute import kernel_mode
    from workbench.core.build.energy import (
        EnergyMeter,
        emits_spike_times,
        is_neuron_module,
        layer_name,
        spike_product_ops,
    )
    from workbench.core.build.first_layers import trace_layers
    from workbench.core.build.network import CompiledNetwork
    from workbench.core.build.quantized import (
        QuantizedTensor,
        attach,
        detach_quant,
        quantized_modules,
    )
    from workbench.core.data.splits import ArraySplit, DatasetSplits
    from workbench.core.data.streaming import StreamSplit
    from workbench.core.runs.compress import CompressionContext, CompressionResult
    from workbench.core.runs.deploy import DeployContext, FitIssue
    from workbench.core.runs.exchange import ImportContext
    from workbench.core.runs.session import Session


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    # declaring contributions
    "hookimpl", "ParamSpec", "Spec", "AttentionSpec", "BackendSpec", "BlockSpec",
    "CompressionSpec", "DatasetSpec", "EncoderSpec", "EnergyModelSpec", "LearningRuleSpec",
    "NeuronSpec", "ViewSpec", "RunnerSpec", "SPIKE_TRAINS", "SPIKE_TIMES", "ANY_SPIKE_CODE",
    # what the factories build
    "Backend", "ExchangeBackend", "Trainer", "Encoder", "Runner", "RemoteJob", "JobUpdate",
    # projects and networks
    "PROJECT_FILE", "Project", "Component", "Graph", "Node", "CompiledNetwork", "compile_graph",
    "trace_layers",
    "QuantizedTensor", "attach", "detach_quant", "quantized_modules",
    "class_scores", "count_correct", "earliest_spike", "is_neuron_module",
    "emits_spike_times", "layer_name", "FiringTimeNeuron", "firing_time_neuron", "RELPSP",
    "EnergyMeter", "spike_product_ops", "kernel_mode",
    # data, and the files a plugin reads for it (special files refused by name)
    "ArraySplit", "DatasetSplits", "StreamSplit", "regular_file",
    # runs
    "Session", "CompressionContext", "CompressionResult", "DeployContext", "FitIssue",
    "ImportContext", "RunEvent", "RunStarted", "Progress", "MetricSample", "EnergySample",
    "StepStarted", "Artifact", "Log", "RunFinished",
    # errors
    "WorkbenchError", "ProjectError", "CompileError", "DatasetError", "WeightsError",
    "PluginError", "CompressionError", "DeployError",
]
