"""``wb_qt_snn``: ternary spike-based signal processing (TAE + QT-SNN), Wang et al., "Ternary
Spike-based Neuromorphic Signal Processing System", Neural Networks 187:107333, 2025.

Contributes the threshold-adaptive encoder ``wb_qt_snn.tae`` and its fixed-threshold baselines
``wb_qt_snn.sf`` (step-forward) and ``wb_qt_snn.tbr`` (threshold-based representation), which
turn a ``[C, L]`` signal into ternary spikes ``[T = L, B, C]`` and decode them; the ternary LIF
neuron ``wb_qt_snn.ternary_lif`` with an LSQ-quantised membrane; the ``wb_qt_snn.qt_linear``
block (LSQ or TTQ weights), the causal convolution over time ``wb_qt_snn.qt_conv1d`` and
``wb_qt_snn.qt_readout``; and the whole classifier ``wb_qt_snn.qt_snn`` with its
full-precision binary-spike twin (``ternary`` off).

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a network is built or a signal encoded. The paper's method section
was not available: every detail that is our reading is a parameter, listed in docs/qt_snn.md.
"""

from __future__ import annotations

from workbench.pluginhost import BlockSpec, EncoderSpec, NeuronSpec, ParamSpec, hookimpl

_LAM = ParamSpec("lam", 0.5, low=0.0, high=1.0,
                 doc="Leak: the stored membrane is multiplied by lam each step")
_V_TH = ParamSpec("v_th", 1.0, low=1e-6, high=1e6,
                  doc="Threshold: fires +1 at U >= v_th, -1 at U <= -v_th")
_MEMBRANE_BITS = ParamSpec("membrane_bits", 4, "int", low=2, high=16, unit="bits",
                           doc="Bits of the stored membrane: 2^b − 1 levels on a learnt step s_u")
_WEIGHT_BITS = ParamSpec("weight_bits", 4, "int", low=2, high=16, unit="bits",
                         doc="Bits of the LSQ weights: 2^b − 1 levels on a learnt step s_w")
_TERNARY_LIF = "wb_qt_snn.ternary_lif"
_WEIGHT_QUANT = ParamSpec("weight_quant", "lsq", "choice", choices=("lsq", "ttq"),
                          doc="lsq: 2^b − 1 levels on a learnt step; ttq: ternary weights with "
                              "learnt positive and negative magnitudes (weight_bits unused)")
_NEURON = ParamSpec("neuron", _TERNARY_LIF, "neuron",
                    doc="Which neuron fires after the layer (any neuron contribution)")
_POW2 = ParamSpec("pow2_scales", True, "bool", label="Power-of-two steps",
                  doc="Use the nearest power of two of each learnt step: the integer simulator "
                      "and the FPGA then compute exactly what the trained network computes")


@hookimpl
def wb_neurons() -> list[NeuronSpec]:
    return [
        NeuronSpec(
            id=_TERNARY_LIF,
            display_name="Ternary LIF, quantised membrane (QT-SNN)",
            factory="wb_qt_snn.neuron:ternary_lif",
            doc="U = lam·H_q + I; spike sign(U) when |U| >= v_th, then reset to 0; the stored "
                "membrane H_q is LSQ-quantised with a learnt step (QT-SNN, Wang et al. 2025; "
                "see docs/qt_snn.md). Rectangular surrogate.",
            params=(
                _LAM, _V_TH, _MEMBRANE_BITS,
                ParamSpec("quantize_membrane", True, "bool",
                          doc="Store the membrane on the b-bit grid; off keeps it full "
                              "precision"),
                ParamSpec("surrogate_width", 1.0, low=1e-3, high=100.0,
                          doc="Width a of the rectangular surrogate around |U| = v_th"),
                _POW2,
            ),
        )
    ]


#: what the quantised linear and conv blocks share: their weights, bias and neuron
_QUANTISED_SYNAPSE = (_WEIGHT_BITS, _WEIGHT_QUANT,
                      ParamSpec("bias", False, "bool", doc="Add a (float) bias"), _POW2, _NEURON)


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="wb_qt_snn.qt_linear",
            display_name="QT-SNN linear",
            factory="wb_qt_snn.layers:qt_linear",
            category="spiking",
            doc="Linear layer with quantised weights (LSQ with a learnt step, or TTQ ternary), "
                "then a neuron (the ternary LIF by default).",
            params=(
                ParamSpec("out_features", 128, "int", low=1, high=1 << 20,
                          doc="Output features"),
                *_QUANTISED_SYNAPSE,
            ),
        ),
        BlockSpec(
            id="wb_qt_snn.qt_conv1d",
            display_name="QT-SNN 1-D convolution over time",
            factory="wb_qt_snn.layers:qt_conv1d",
            category="spiking",
            doc="Causal convolution over time with quantised weights (LSQ or TTQ), then a "
                "neuron: at step t each output channel sums the input channels of steps t, "
                "t − d, …, t − (k−1)·d. T is kept and no step sees the future. Needs one "
                "flat [C] input per step; not deployable to wb_sim, the FPGA or NIR (it "
                "keeps a window of past inputs; see docs/qt_snn.md).",
            params=(
                ParamSpec("out_channels", 32, "int", low=1, high=1 << 16,
                          doc="Output channels"),
                ParamSpec("kernel_size", 5, "int", low=1, high=1024, unit="steps",
                          doc="Time steps each output reads (the current one and k − 1 "
                              "earlier ones)"),
                ParamSpec("dilation", 1, "int", low=1, high=1024, unit="steps",
                          doc="Spacing of those steps: a window of (k − 1)·d + 1 steps"),
                *_QUANTISED_SYNAPSE,
            ),
        ),
        BlockSpec(
            id="wb_qt_snn.qt_readout",
            display_name="QT-SNN read-out",
            factory="wb_qt_snn.layers:qt_readout",
            category="readout",
            doc="Linear read-out with LSQ-quantised weights, applied at every time step.",
            params=(
                ParamSpec("out_features", 10, "int", low=1, high=1 << 20,
                          doc="Output features (classes)"),
                _WEIGHT_BITS,
                ParamSpec("bias", True, "bool", doc="Add a (float) bias"),
                _POW2,
                ParamSpec("integrate", False, "bool", label="Integrate over time",
                          doc="The read-out neurons integrate their input (a membrane that "
                              "never fires, divided by T) and the scores are its mean over "
                              "time: early evidence weighs more than late"),
            ),
        ),
        BlockSpec(
            id="wb_qt_snn.qt_snn",
            display_name="QT-SNN classifier (whole network)",
            factory="wb_qt_snn.builder:qt_snn",
            category="spiking",
            doc="Optional causal convolutions over time, hidden QT-SNN linear layers with "
                "ternary LIF neurons and a quantised read-out pooled over time, as one node; "
                "ternary off gives the full-precision binary-spike twin (float weights, "
                "LIF B).",
            params=(
                ParamSpec("conv", "", "str", label="Convolutions over time",
                          doc="Causal 1-D convolutions over time before the hidden layers, "
                              "as channels:kernel (or channels:kernel:dilation) separated by "
                              "commas, e.g. 32:5,32:5; empty: none. Not deployable to wb_sim "
                              "or the FPGA (see docs/qt_snn.md)"),
                ParamSpec("hidden", "64,64", "str",
                          doc="Hidden layer widths, separated by commas"),
                ParamSpec("classes", 10, "int", low=1, high=100_000, doc="Output classes"),
                ParamSpec("ternary", True, "bool",
                          doc="QT-SNN (quantised weights and membranes, ternary spikes); off: "
                              "float weights, binary LIF B spikes, float membranes"),
                _WEIGHT_BITS, _MEMBRANE_BITS, _LAM, _V_TH,
                ParamSpec("t_pool", "mean", "choice",
                          choices=("mean", "sum", "last", "integrate"),
                          doc="How the per-step logits are pooled over time: their mean, sum, "
                              "the last step's, or the mean of their running sum (integrating "
                              "read-out neurons: early steps weigh more)"),
                ParamSpec("bias", False, "bool",
                          doc="Float biases in the hidden layers (they break the odd symmetry "
                              "of a ternary network; see docs/qt_snn.md)"),
            ),
        ),
    ]


@hookimpl
def wb_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            id="wb_qt_snn.tae", display_name="TAE (threshold-adaptive, ternary)",
            factory="wb_qt_snn.tae:tae", sets_time_steps=True,
            doc="[B, C, L] -> ternary spikes [L, B, C]: a spike when the signal moved the "
                "threshold away from a tracked base; the threshold grows on repeated "
                "polarities and shrinks while silent (TAE, Wang et al. 2025; our reading, "
                "see docs/qt_snn.md). T = L.",
            params=(
                ParamSpec("base", "follow", "choice", choices=("follow", "realign"),
                          doc="follow: the base moves by the threshold (decodable); realign: "
                              "it jumps to the signal (cannot be decoded)"),
                ParamSpec("theta0_scale", 0.5, low=1e-6, high=1e3,
                          doc="Initial threshold = this × std of the sample-to-sample "
                              "differences, per sample and channel"),
                ParamSpec("theta0", 0.0, low=0.0, high=1e6, label="Fixed initial threshold",
                          doc="0: per sample and channel, from theta0_scale; above 0: this "
                              "initial threshold (signal units) for every series, so that "
                              "amplitudes stay comparable between series"),
                ParamSpec("grow", 2.0, low=1.0, high=100.0,
                          doc="Threshold factor after a spike of the same polarity as the "
                              "last"),
                ParamSpec("shrink", 0.5, low=1e-3, high=1.0,
                          doc="Threshold factor after a silent step"),
                ParamSpec("theta_min_ratio", 0.25, low=1e-6, high=1.0,
                          doc="Smallest threshold, as a fraction of the initial one"),
                ParamSpec("theta_max_ratio", 8.0, low=1.0, high=1e6,
                          doc="Largest threshold, as a multiple of the initial one"),
                ParamSpec("start", "first", "choice", choices=("first", "zero"),
                          doc="first: the base starts at the first sample (a pure change "
                              "code); zero: at 0, so the first spikes also carry the level "
                              "(for z-scored features whose level matters)"),
            ),
        ),
        EncoderSpec(
            id="wb_qt_snn.sf", display_name="Step-forward (fixed threshold, ternary)",
            factory="wb_qt_snn.baselines:StepForwardEncoder", sets_time_steps=True,
            doc="[B, C, L] -> ternary spikes [L, B, C]: ±1 when the signal moved the fixed "
                "threshold away from a base that follows by the threshold (Petro et al. "
                "2020). T = L.",
            params=(ParamSpec("threshold", 0.1, low=1e-9, high=1e6,
                              doc="The change that emits a spike, in the signal's units "
                                  "(z-score units for standardised data)"),),
        ),
        EncoderSpec(
            id="wb_qt_snn.tbr", display_name="Threshold-based representation (ternary)",
            factory="wb_qt_snn.baselines:ThresholdBasedEncoder", sets_time_steps=True,
            doc="[B, C, L] -> ternary spikes [L, B, C]: ±1 where the sample-to-sample change "
                "leaves mean ± factor·std of the changes (Petro et al. 2020). T = L.",
            params=(ParamSpec("factor", 0.5, low=0.0, high=100.0,
                              doc="Half-width of the silent band, in stds of the changes"),),
        ),
    ]
