"""``wb_bestformer``: BESTformer, the binary event-driven spiking transformer (Cao et al. 2025).

Contributes the binary spiking self-attention (BSSA, quadratic and linear variants), the whole
BESTformer as one node (tokenizer, reversible two-stream blocks, two heads), and two
compression methods: ``binarize`` (1-bit weights for any network, optional hard distillation)
and ``cie`` (Coupled Information Enhancement: distillation through the BESTformer's second
head). A digits network is the single node ``wb_bestformer.bestformer``.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a network is built. Details and every proposed reading ([R]) are in
``docs/bestformer.md``.
"""

from __future__ import annotations

from workbench.pluginhost import AttentionSpec, CompressionSpec, ParamSpec, hookimpl

_NEURON = ParamSpec("neuron", "wb_core.lif", "neuron",
                    doc="Neuron of every spiking layer (LIF A, tau 2, in the paper); the "
                        "attention map uses it with a soft reset, the attention output with "
                        "threshold 0.5")
_HEADS = ParamSpec("heads", 4, "int", low=1, high=1024,
                   doc="Attention heads; the token width must be divisible by it")
_VARIANT_DOC = ("quadratic: Q K^T first, an N x N binary map (the CIFAR model); linear: K^T V "
                "first, a d x d map, cost linear in the tokens (the ImageNet model)")
_TIME_STEPS = ParamSpec("time_steps", 4, "int", low=1, high=4096, unit="steps",
                        doc="Largest T (size of the learnable attention scale lambda); shorter "
                            "runs use its leading entries")
_BINARY = ParamSpec("binary", True, "bool",
                    doc="Binary weights trained with the straight-through estimator (first "
                        "tokenizer conv and heads stay full precision); off: full precision, "
                        "e.g. the teacher for CIE")
_EPOCHS = ParamSpec("finetune_epochs", 3, "int", low=0, high=10_000, unit="epochs",
                    doc="Fine-tuning epochs with binary weights (straight-through estimator)")
_LR = ParamSpec("lr", 1e-3, low=1e-7, high=10.0, doc="Adam learning rate of the fine-tuning "
                                                     "(cosine schedule)")
_ALPHA = ParamSpec("alpha", 0.5, low=0.0, high=1.0,
                   doc="Weight of the distillation term; 1 - alpha weighs the true labels")


@hookimpl
def wb_attention() -> list[AttentionSpec]:
    return [
        AttentionSpec(
            id="wb_bestformer.bssa",
            display_name="Binary spiking self-attention (BSSA)",
            factory="wb_bestformer.attention:bssa",
            doc="BESTformer attention: binary Q/K/V/output weights, a 1-bit spiking attention "
                "map, a learnable scale lambda and an output neuron at threshold 0.5 "
                "(BESTformer, Cao et al. 2025; see docs/bestformer.md). Tokens [N, D] -> [N, D].",
            params=(
                _HEADS,
                ParamSpec("variant", "quadratic", "choice", choices=("quadratic", "linear"),
                          doc=_VARIANT_DOC),
                _TIME_STEPS, _BINARY, _NEURON,
            ),
        ),
        AttentionSpec(
            id="wb_bestformer.bestformer",
            display_name="BESTformer (whole network)",
            factory="wb_bestformer.builder:bestformer",
            doc="Tokenizer (first conv full precision, the rest binary), reversible two-stream "
                "blocks with BSSA and binary MLPs, and two full-precision heads on the final "
                "streams; outputs their averaged logits per step. The attention view shows "
                "its last block.",
            params=(
                ParamSpec("depth", 2, "int", low=1, high=64, doc="Reversible blocks L"),
                ParamSpec("dim", 64, "int", low=1, high=65536, doc="Token width D"),
                _HEADS,
                ParamSpec("stages", 3, "int", low=2, high=8,
                          doc="Tokenizer conv stages; the first is full precision, the last "
                              "two have D channels, earlier ones halve back (5 = the CIFAR "
                              "tokenizer)"),
                ParamSpec("patch_size", 2, "int", low=1, high=128, unit="px",
                          doc="Pixels per token side, a power of 2: one max-pool before each "
                              "of the last log2(patch size) binary convs"),
                ParamSpec("attention", "quadratic", "choice", choices=("quadratic", "linear"),
                          doc=_VARIANT_DOC),
                ParamSpec("mlp_ratio", 4, "int", low=1, high=64, doc="MLP hidden width / D"),
                _TIME_STEPS,
                ParamSpec("classes", 10, "int", low=1, high=100_000, doc="Output classes"),
                _BINARY,
                _NEURON,
            ),
        ),
    ]


@hookimpl
def wb_compressions() -> list[CompressionSpec]:
    return [
        CompressionSpec(
            id="wb_bestformer.binarize",
            display_name="Binarize weights (BESTformer rule)",
            factory="wb_bestformer.compress:binarize",
            kind="binarize",
            doc="Any network: every conv/linear weight except the first and the last layer "
                "becomes sign(standardised W) in {-1, +1}, fine-tuned with a straight-through "
                "estimator, then stored at 1 bit. Optional hard distillation from the "
                "original network.",
            params=(
                _EPOCHS, _LR,
                ParamSpec("distill", False, "bool",
                          doc="Also learn the original (full-precision) network's predicted "
                              "class: (1 - alpha) CE(out, y) + alpha CE(out, argmax teacher)"),
                _ALPHA,
            ),
        ),
        CompressionSpec(
            id="wb_bestformer.cie",
            display_name="CIE distillation (BESTformer)",
            factory="wb_bestformer.compress:cie",
            kind="distill",
            doc="Coupled Information Enhancement for a BESTformer node: binarise it and "
                "fine-tune with (1 - alpha) CE(head(x0), y) + alpha CE(head2(x1), argmax "
                "teacher), the teacher being the original full-precision network.",
            params=(_EPOCHS, _LR, _ALPHA),
        ),
    ]
