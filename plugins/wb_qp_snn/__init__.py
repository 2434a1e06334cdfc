"""``wb_qp_snn``: QP-SNN, quantised and pruned spiking networks (Wei et al., ICLR 2025).

Contributes four compression passes: ReScaW weight quantisation and the vanilla uniform
quantiser it improves on, and structured pruning of conv kernels by the SVS criterion
(numerical rank of the time-averaged spike map) and by the L1-norm baseline. Quantise first,
then prune: a pruning pass keeps a quantised network quantised. Convs whose outputs meet at a
residual add are pruned as one group. Two blocks: the paper's CIFAR-style ResNet (option-A
shortcuts, ResNet20 by default) as one node, and the option-A shortcut for residual graphs wired
by hand.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a pass runs. Details and every proposed reading ([R]) are in
``docs/qp_snn.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workbench.pluginhost import BlockSpec, CompressionSpec, ParamSpec, hookimpl


class RatioParam(ParamSpec):
    """A pruning ratio, or a list of them: a number, a list of numbers, or the text a form gives
    (``0.5``, ``0.1, 0.3, 0.6``, ``[0.1, 0.3]``); each number within ``low..high``."""

    def coerce(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            try:
                items = [float(v) for v in text.strip("[]").split(",") if v.strip()]
            except ValueError:
                items = []
            if not items:
                raise ValueError(f"expected a ratio or ratios separated by commas, got {value!r}")
            listed = text.startswith("[") or "," in text
            value = items if listed else items[0]
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError("expected at least one ratio, got an empty list")
            return [self._number(v) for v in value]
        return self._number(value)

    def _number(self, value: Any) -> float:
        return ParamSpec.coerce(dataclasses.replace(self, kind="float"), value)


_BITS = ParamSpec("bits", 4, "int", low=1, high=32, unit="bits",
                  doc="Weight bit width b: 2^b levels per layer or channel (paper: 8, 4, 2)")
_STE = ParamSpec("ste", "paper", "choice", choices=("paper", "code"),
                 doc="Backward pass: paper = clipped straight-through (no gradient where "
                     "|W/γ| > 1); code = unclipped, divided by γ, as in the authors' code")
_KEEP = ParamSpec("keep_first_last", True, "bool",
                  doc="Keep the first and the last conv/linear layer at full precision "
                      "(as in the paper)")
_EPOCHS = ParamSpec("finetune_epochs", 3, "int", low=0, high=10_000, unit="epochs",
                    doc="Fine-tuning epochs after the pass (Adam, cosine schedule); 0 = none")
_LR = ParamSpec("lr", 1e-3, low=1e-8, high=1.0, doc="Fine-tuning learning rate (paper: 1e-3)")
_RATIO = RatioParam("ratio", 0.5, "str", low=0.0, high=1.0,
                    doc="Fraction of kernels removed: one ratio for every prunable layer "
                        "(strictly between 0 and 1), or a list, one per prunable layer or group "
                        "in network order (0 keeps one whole), e.g. 0.1, 0.3, 0.6; "
                        "floor(n·(1 − ratio)) kernels are kept")
_LAST = ParamSpec("prune_last_conv", False, "bool",
                  doc="Also prune the last conv layer (the one feeding the classifier); the "
                      "paper keeps it whole")


@hookimpl
def wb_compressions() -> list[CompressionSpec]:
    return [
        CompressionSpec(
            id="wb_qp_snn.rescaw",
            display_name="ReScaW quantisation (QP-SNN)",
            factory="wb_qp_snn.methods:rescaw",
            kind="quantize",
            doc="Uniform weight quantisation rescaled by γ (mean |W| per output channel by "
                "default), so all 2^b levels are used; fine-tuned with fake quantisation, then "
                "frozen (QP-SNN, Wei et al. 2025; see docs/qp_snn.md).",
            params=(
                _BITS,
                ParamSpec("gamma", "mean", "choice", choices=("mean", "max", "percentile"),
                          doc="Scale γ: mean |W| (paper default), max |W|, or the percentile "
                              "max(|P_(1-x)|, |P_x|)"),
                ParamSpec("granularity", "channel", "choice", choices=("channel", "layer"),
                          doc="One γ per output channel (authors' code) or per layer "
                              "(paper's formula)"),
                _STE,
                ParamSpec("percentile", 0.99, low=0.5, high=1.0,
                          doc="x of the percentile scale (used when gamma = percentile) [R]"),
                _KEEP, _EPOCHS, _LR,
            ),
        ),
        CompressionSpec(
            id="wb_qp_snn.uniform",
            display_name="Uniform quantisation (vanilla baseline)",
            factory="wb_qp_snn.methods:uniform",
            kind="quantize",
            doc="Weights clipped to [-1, 1] and rounded to 2^b evenly spaced levels "
                "(the baseline ReScaW improves on; see docs/qp_snn.md); trained weights use "
                "only a few of them.",
            params=(_BITS, _STE, _KEEP, _EPOCHS, _LR),
        ),
        CompressionSpec(
            id="wb_qp_snn.svs_prune",
            display_name="SVS structured pruning (QP-SNN)",
            factory="wb_qp_snn.pruning:svs_prune",
            kind="prune",
            doc="Removes the conv kernels whose time-averaged spike maps have the lowest "
                "numerical rank (singular values above eps), then fine-tunes; convs meeting at "
                "a residual add lose the same channels (QP-SNN, Wei et al. 2025; see "
                "docs/qp_snn.md).",
            params=(
                _RATIO,
                ParamSpec("batches", 5, "int", low=1, high=100_000,
                          doc="Training mini-batches the scores are averaged over"),
                ParamSpec("eps", 1e-6, low=0.0, high=1e6,
                          doc="Singular values above eps count towards the rank"),
                _LAST, _EPOCHS, _LR,
            ),
        ),
        CompressionSpec(
            id="wb_qp_snn.l1_prune",
            display_name="L1 structured pruning (baseline)",
            factory="wb_qp_snn.pruning:l1_prune",
            kind="prune",
            doc="Removes the conv kernels with the smallest sum of |W|, then fine-tunes; "
                "convs meeting at a residual add lose the same channels.",
            params=(_RATIO, _LAST, _EPOCHS, _LR),
        ),
    ]


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="wb_qp_snn.resnet",
            display_name="ResNet (CIFAR-style, option-A shortcuts)",
            factory="wb_qp_snn.resnet:resnet",
            doc="Stem conv, stages of basic blocks with parameter-free option-A shortcuts, "
                "global average pool and a linear classifier, as one node; ResNet20 by default "
                "(QP-SNN's: stem 64, stages 128,256,512; see docs/qp_snn.md).",
            category="spiking",
            params=(
                ParamSpec("stem_width", 16, "int", low=1, high=65536,
                          doc="Output channels of the stem conv (QP-SNN: 64)"),
                ParamSpec("stage_widths", "16,32,64", "str",
                          doc="Output channels of each stage, separated by commas; every stage "
                              "after the first halves H and W (QP-SNN: 128,256,512)"),
                ParamSpec("blocks", 3, "int", low=1, high=64,
                          doc="Basic blocks per stage (3 stages × 3 blocks: ResNet20)"),
                ParamSpec("inner_widths", "", "str",
                          doc="Output channels of each block's first conv, in block order, "
                              "separated by commas; empty: as wide as its stage (pruning "
                              "writes it)"),
                ParamSpec("classes", 10, "int", low=1, high=100_000, doc="Output classes"),
                ParamSpec("neuron", "wb_core.lif_b", "neuron",
                          doc="Neuron of every spiking layer (the paper: LIF B, λ = 0.5)"),
            ),
        ),
        BlockSpec(
            id="wb_qp_snn.shortcut_a",
            display_name="Option-A shortcut",
            factory="wb_qp_snn.resnet:shortcut_a",
            doc="Parameter-free residual shortcut: subsample by the stride, then zero-pad the "
                "channels, (out − in) // 2 in front and the rest behind (a negative pad crops).",
            params=(
                ParamSpec("out_channels", 16, "int", low=1, high=65536,
                          doc="Output channels (the width of the branch it is added to)"),
                ParamSpec("stride", 1, "int", low=1, high=64, unit="px",
                          doc="Subsampling step: 2 keeps every second row and column"),
            ),
        ),
    ]
