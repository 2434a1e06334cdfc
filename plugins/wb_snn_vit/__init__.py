"""``wb_snn_vit``: SNN-ViT with Saccadic Spike Self-Attention (Wang et al., ICLR 2025).

Contributes the saccadic spike self-attention (SSSA, in ``train_v1`` and ``v2`` form), the
Spikformer spiking self-attention (SSA) as its baseline, the GL-SPS patch embedding, the SNN-ViT
block (attention + MLP with residuals) and the token-mean head. A digits network is
``gl_sps -> block -> token_mean -> wb_core.linear``.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a network is built. Details and every proposed reading ([R]) are in
``docs/snn_vit.md``.
"""

from __future__ import annotations

from workbench.pluginhost import AttentionSpec, BlockSpec, ParamSpec, ViewSpec, hookimpl

_NEURON = ParamSpec("neuron", "wb_core.lif", "neuron",
                    doc="Neuron of every spiking layer: Q, K, V, projections, MLP, patch "
                        "embedding (any neuron contribution)")
_HEADS = ParamSpec("heads", 4, "int", low=1, high=1024,
                   doc="Attention heads; the token width must be divisible by it")
_MODE = ParamSpec("mode", "train_v1", "choice", choices=("train_v1", "v2"),
                  doc="train_v1: salience mixed over time by the saccadic neuron (trainable); "
                      "v2: per-step linear rule with the threshold folded through M_w "
                      "(inference form, exact for a diagonal M_w; no surrogate through the mask)")
_SALIENCE_NORM = ParamSpec("salience_norm", "rate", "choice", choices=("rate", "count"),
                           doc="rate: salience from firing rates, in [0, 1] [R]; count: raw "
                               "spike counts, as printed in the paper")
_SACC_NORM = ParamSpec("sacc_surrogate_norm", True, "bool",
                       doc="Scale the saccadic surrogate by a running std of the potential, "
                           "so its width follows the salience scale [R]")
_THRESHOLD_UNITS = ParamSpec("threshold_units", "std", "choice", choices=("std", "salience"),
                             doc="Units of the learnable saccadic threshold: multiples of the "
                                 "running std of the potential [R], or salience as printed")
_THRESHOLD_RULE = ParamSpec("threshold_rule", "selective", "choice",
                            choices=("selective", "median"),
                            doc="selective: the saccadic threshold stays positive and starts where "
                                "at most half of the tokens are selected, so the mask never "
                                "selects every token through ties at 0 [R]; median: a free "
                                "threshold starting at the median of the potential")
_TIME_STEPS = ParamSpec("time_steps", 4, "int", low=1, high=4096, unit="steps",
                        doc="Largest T the saccadic neuron supports (size of M_w and V_th); "
                            "shorter runs use the leading block (causal truncation)")


@hookimpl
def wb_attention() -> list[AttentionSpec]:
    return [
        AttentionSpec(
            id="wb_snn_vit.sssa",
            display_name="Saccadic spike self-attention (SSSA)",
            factory="wb_snn_vit.attention:sssa",
            doc="Per-token salience Q'·α integrated over time by a saccadic neuron; its binary "
                "mask gates V. Linear in the number of tokens (SNN-ViT, Wang et al. 2025; "
                "see docs/snn_vit.md).",
            params=(_HEADS, _MODE, _SALIENCE_NORM, _SACC_NORM, _THRESHOLD_UNITS, _THRESHOLD_RULE,
                    _TIME_STEPS, _NEURON),
        ),
        AttentionSpec(
            id="wb_snn_vit.ssa",
            display_name="Spiking self-attention (Spikformer baseline)",
            factory="wb_snn_vit.attention:ssa",
            doc="Q K^T V of binary Q, K, V, scaled, then a spiking neuron and the output "
                "projection (Spikformer).",
            params=(
                _HEADS,
                ParamSpec("scale", 0.125, low=0.0, high=100.0,
                          doc="Factor on Q K^T (Spikformer: 0.125)"),
                ParamSpec("attn_threshold", 0.5, low=1e-6, high=1e6,
                          doc="Threshold of the neuron after attn·V (Spikformer: 0.5)"),
                _NEURON,
            ),
        ),
        AttentionSpec(
            id="wb_snn_vit.block",
            display_name="SNN-ViT block",
            factory="wb_snn_vit.blocks:block",
            doc="X + Attn(X), then X + MLP(X) with MLP = Linear+BN+SN -> Linear+BN+SN; "
                "returns the attention's maps.",
            params=(
                ParamSpec("attention", "sssa", "choice", choices=("sssa", "ssa"),
                          doc="sssa: saccadic spike self-attention; ssa: Spikformer's"),
                _HEADS,
                ParamSpec("mlp_ratio", 4, "int", low=1, high=64,
                          doc="Hidden width of the MLP as a multiple of the token width"),
                _MODE, _SALIENCE_NORM, _SACC_NORM, _THRESHOLD_UNITS, _THRESHOLD_RULE, _TIME_STEPS,
                _NEURON,
            ),
        ),
        AttentionSpec(
            id="wb_snn_vit.snn_vit",
            display_name="SNN-ViT (whole network)",
            factory="wb_snn_vit.builder:snn_vit",
            doc="GL-SPS patch embedding, `depth` SNN-ViT blocks, mean over tokens and a linear "
                "classifier, as one node; the attention view shows its last block.",
            params=(
                ParamSpec("depth", 2, "int", low=1, high=64, doc="Number of SNN-ViT blocks"),
                ParamSpec("embed_dim", 64, "int", low=1, high=65536, doc="Token width D"),
                _HEADS,
                ParamSpec("stages", 4, "int", low=1, high=4, doc="GL-SPS conv stages"),
                ParamSpec("patch_size", 2, "int", low=1, high=16, unit="px",
                          doc="Pixels per token side: a power of 2 (each pooled stage halves "
                              "the image)"),
                ParamSpec("attention", "sssa", "choice", choices=("sssa", "ssa"),
                          doc="Saccadic (SSSA) or Spikformer (SSA) attention"),
                ParamSpec("mlp_ratio", 4, "int", low=1, high=64, doc="MLP hidden width / D"),
                _MODE, _SALIENCE_NORM, _SACC_NORM, _THRESHOLD_UNITS, _THRESHOLD_RULE,
                _TIME_STEPS,
                ParamSpec("classes", 10, "int", low=1, high=100_000, doc="Output classes"),
                _NEURON,
            ),
        ),
    ]


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="wb_snn_vit.gl_sps",
            display_name="GL-SPS patch embedding",
            factory="wb_snn_vit.embedding:gl_sps",
            doc="Conv stages SN(BN(Conv3x3) + BN(dilated Conv3x3)), max-pooling after the last "
                "ones, a relative-position conv added; [C, H, W] -> tokens [N, D].",
            category="spiking",
            params=(
                ParamSpec("embed_dim", 64, "int", low=1, high=65536,
                          doc="Token width D (channels of the last stage)"),
                ParamSpec("stages", 4, "int", low=1, high=4,
                          doc="Conv stages; 4 have D/8, D/4, D/2, D channels, fewer keep the "
                              "last ones"),
                ParamSpec("pool_stages", 1, "int", low=0, high=4,
                          doc="How many of the last stages are followed by max-pool(3, 2, 1) "
                              "(each halves H and W)"),
                _NEURON,
            ),
        ),
        BlockSpec(
            id="wb_snn_vit.token_mean",
            display_name="Mean over tokens",
            factory="wb_snn_vit.blocks:token_mean",
            doc="[N, D] tokens -> [D]: the classification head's mean over tokens.",
        ),
    ]


@hookimpl
def wb_gui_views() -> list[ViewSpec]:
    # The widget lives in the Qt-only `_qt` module, imported only when the GUI builds it.
    return [
        ViewSpec(
            id="wb_snn_vit.attention_view",
            display_name="Attention",
            factory="wb_snn_vit._qt:AttentionView",
            doc="Where SSSA looks at each time step (saccade mask over the input, salience), "
                "and SSA's attention map for a chosen query token.",
        )
    ]
