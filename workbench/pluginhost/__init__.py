"""Plugin machinery: hook specifications, the isolating loader, the contribution registry.

Plugin authors need only this module's :data:`hookimpl` and the spec classes::

    from workbench.pluginhost import hookimpl, NeuronSpec, ParamSpec
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
    ParamSpec,
    ViewSpec,
)
from workbench.pluginhost.hookspecs import PROJECT_NAME

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "AttentionSpec",
    "BackendSpec",
    "BlockSpec",
    "CompressionSpec",
    "DatasetSpec",
    "EncoderSpec",
    "EnergyModelSpec",
    "LearningRuleSpec",
    "NeuronSpec",
    "ParamEditorSpec",
    "ParamSpec",
    "ViewSpec",
    "hookimpl",
]
