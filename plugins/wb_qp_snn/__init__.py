"""``wb_qp_snn``: QP-SNN, quantised and pruned spiking networks (Wei et al., ICLR 2025).

Contributes four compression passes: ReScaW weight quantisation and the vanilla uniform
quantiser it improves on, and structured pruning of conv kernels by the SVS criterion
(numerical rank of the time-averaged spike map) and by the L1-norm baseline. Quantise first,
then prune: a pruning pass keeps a quantised network quantised.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a pass runs. Details and every proposed reading ([R]) are in
``docs/qp_snn.md``.
"""

from __future__ import annotations

from workbench.pluginhost import CompressionSpec, ParamSpec, hookimpl

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
_RATIO = ParamSpec("ratio", 0.5, low=0.0, high=1.0,
                   doc="Fraction of kernels removed from each prunable conv layer, strictly "
                       "between 0 and 1; floor(n·(1 − ratio)) are kept")
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
            factory="wb_qp_snn.methods:svs_prune",
            kind="prune",
            doc="Removes the conv kernels whose time-averaged spike maps have the lowest "
                "numerical rank (singular values above eps), then fine-tunes (QP-SNN, "
                "Wei et al. 2025; see docs/qp_snn.md).",
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
            factory="wb_qp_snn.methods:l1_prune",
            kind="prune",
            doc="Removes the conv kernels with the smallest sum of |W|, then fine-tunes.",
            params=(_RATIO, _LAST, _EPOCHS, _LR),
        ),
    ]
