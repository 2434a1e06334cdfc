"""``wb_core``: the basics every spiking network needs.

Neurons (LIF in both parameterisations of docs/wb_core.md, IF), the surrogate library, layers
and spiking blocks, encoders, BPTT learning with its losses, and the 45 nm cost tables. It
registers through the ``snn_workbench.plugins`` entry point like any third-party plugin.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a network is built.
"""

from __future__ import annotations

from typing import Any

from workbench.pluginhost import (
    ANY_SPIKE_CODE,
    SPIKE_TIMES,
    SPIKE_TRAINS,
    BlockSpec,
    EncoderSpec,
    EnergyModelSpec,
    LearningRuleSpec,
    NeuronSpec,
    ParamSpec,
    hookimpl,
)

SURROGATES = ("sigmoid", "atan", "triangle", "rectangle")
_RESET_DOC = "hard: back to the reset potential after a spike; soft: subtract the threshold"


def _surrogate_params(name: str, alpha: float) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("surrogate", name, "choice", choices=SURROGATES,
                  doc="Pseudo-derivative used for the spike in the backward pass"),
        ParamSpec("surrogate_alpha", alpha, low=0.0, high=100.0,
                  doc="Sharpness (sigmoid, atan) or width (triangle, rectangle) of the "
                      "surrogate; 0 takes the surrogate's own default"),
    )


@hookimpl
def wb_neurons() -> list[NeuronSpec]:
    return [
        NeuronSpec(
            id="wb_core.lif",
            display_name="LIF (A: Spikformer style)",
            factory="wb_core.neurons:lif",
            doc="H = V + (X - (V - V_reset)) / tau; spike when H >= V_th (LIF form A, "
                "see docs/wb_core.md).",
            params=(
                ParamSpec("tau", 2.0, low=1.0, high=1e4, unit="steps",
                          doc="Membrane time constant; tau = 2 leaks half the potential a step"),
                ParamSpec("v_th", 1.0, low=1e-6, doc="Firing threshold"),
                ParamSpec("v_reset", 0.0, doc="Potential after a spike (hard reset)"),
                ParamSpec("reset", "hard", "choice", choices=("hard", "soft"), doc=_RESET_DOC),
                ParamSpec("detach_reset", True, "bool",
                          doc="Treat the spike in the reset term as a constant in backward"),
                *_surrogate_params("sigmoid", 4.0),
            ),
        ),
        NeuronSpec(
            id="wb_core.lif_b",
            display_name="LIF (B: TET/STBP style)",
            factory="wb_core.neurons:lif_b",
            doc="u = lam * u + x; spike when u > theta; reset to 0 (LIF form B, "
                "see docs/wb_core.md).",
            params=(
                ParamSpec("lam", 0.5, low=0.0, high=1.0, doc="Leak factor per step"),
                ParamSpec("theta", 1.0, low=1e-6, doc="Firing threshold"),
                ParamSpec("reset", "hard", "choice", choices=("hard", "soft"), doc=_RESET_DOC),
                ParamSpec("detach_reset", False, "bool",
                          doc="Treat the spike in the reset term as a constant in backward"),
                *_surrogate_params("triangle", 1.0),
            ),
        ),
        NeuronSpec(
            id="wb_core.if",
            display_name="IF (integrate-and-fire)",
            factory="wb_core.neurons:integrate_and_fire",
            doc="H = V + X, no leak; spike when H >= V_th.",
            params=(
                ParamSpec("v_th", 1.0, low=1e-6, doc="Firing threshold"),
                ParamSpec("v_reset", 0.0, doc="Potential after a spike (hard reset)"),
                ParamSpec("reset", "hard", "choice", choices=("hard", "soft"), doc=_RESET_DOC),
                ParamSpec("detach_reset", True, "bool",
                          doc="Treat the spike in the reset term as a constant in backward"),
                *_surrogate_params("sigmoid", 4.0),
            ),
        ),
    ]


_NEURON = ParamSpec("neuron", "wb_core.lif", "neuron",
                    doc="Which neuron fires after the synaptic layer (any neuron contribution)")
_CHANNELS = ParamSpec("out_channels", 16, "int", low=1, high=65536, doc="Output channels")
_KERNEL = ParamSpec("kernel_size", 3, "int", low=1, high=64, unit="px", doc="Kernel size")
_STRIDE = ParamSpec("stride", 1, "int", low=1, high=64, unit="px", doc="Stride")
_PADDING = ParamSpec("padding", 1, "int", low=0, high=64, unit="px", doc="Zero padding per side")


_INTEGRATE = ParamSpec("integrate", False, "bool", label="Integrate over time",
                       doc="As a read-out: its neurons integrate their input (a membrane that "
                           "never fires, divided by T) and the scores are its mean over time, "
                           "so early evidence weighs more than late")


def _block(name: str, display: str, doc: str, *params: ParamSpec, inputs: int = 1,
           category: str = "layer", spike_code: str = SPIKE_TRAINS) -> BlockSpec:
    return BlockSpec(id=f"wb_core.{name}", display_name=display, factory=f"wb_core.blocks:{name}",
                     doc=doc, params=params, inputs=inputs, category=category,
                     spike_code=spike_code)


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    pool_params = (
        ParamSpec("kernel_size", 2, "int", low=1, high=64, unit="px", doc="Window size"),
        ParamSpec("stride", 0, "int", low=0, high=64, unit="px", doc="Stride; 0 = window size"),
    )
    return [
        _block("spiking_conv", "Spiking conv", "Conv2d -> BatchNorm -> neuron", _CHANNELS,
               _KERNEL, _STRIDE, _PADDING,
               ParamSpec("batch_norm", True, "bool", doc="Batch norm between conv and neuron"),
               _NEURON, category="spiking"),
        _block("spiking_linear", "Spiking linear", "Linear -> (BatchNorm) -> neuron",
               ParamSpec("out_features", 128, "int", low=1, high=1 << 20, doc="Output features"),
               ParamSpec("batch_norm", False, "bool", doc="Batch norm between linear and neuron"),
               _NEURON, category="spiking"),
        _block("conv2d", "Conv2d", "2-D convolution, applied at every time step", _CHANNELS,
               _KERNEL, _STRIDE, _PADDING, ParamSpec("bias", True, "bool", doc="Add a bias")),
        _block("linear", "Linear", "Fully connected layer, applied at every time step",
               ParamSpec("out_features", 10, "int", low=1, high=1 << 20, doc="Output features"),
               ParamSpec("bias", True, "bool", doc="Add a bias"), _INTEGRATE),
        _block("avg_pool", "Average pool", "2-D average pooling", *pool_params),
        _block("max_pool", "Max pool", "2-D max pooling", *pool_params),
        _block("batch_norm", "Batch norm", "Normalises over T, B (and H, W) jointly",
               ParamSpec("momentum", 0.1, low=0.0, high=1.0, doc="Running-statistics momentum"),
               ParamSpec("eps", 1e-5, low=0.0, high=1.0, doc="Added to the variance")),
        # it moves values without reading them: spike trains and firing times alike
        _block("flatten", "Flatten", "[C, H, W] -> [C*H*W]", spike_code=ANY_SPIKE_CODE),
        _block("dropout", "Dropout", "Zeroes inputs with probability p while training",
               ParamSpec("p", 0.5, low=0.0, high=0.99, doc="Drop probability")),
        _block("add", "Residual add", "Adds two equally shaped inputs", inputs=2),
        _block("mean_readout", "Mean over time", "Read-out: averages over T", category="readout"),
    ]


@hookimpl
def wb_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(id="wb_core.direct", display_name="Direct (repeat input)",
                    factory="wb_core.encoders:DirectEncoder",
                    doc="The real-valued input at every time step."),
        EncoderSpec(id="wb_core.rate", display_name="Rate (Bernoulli)",
                    factory="wb_core.encoders:RateEncoder",
                    doc="A spike per step with probability gain * x.",
                    params=(ParamSpec("gain", 1.0, low=0.0, high=100.0,
                                      doc="Spike probability per unit intensity"),)),
        EncoderSpec(id="wb_core.ttfs", display_name="Time to first spike (firing times)",
                    factory="wb_core.encoders:TTFSEncoder", sets_time_steps=True,
                    spike_code=SPIKE_TIMES,
                    doc="One firing time per input, t = t_max·(1 − x): brighter fires earlier, "
                        "x = 0 never fires (t = inf). For time-to-first-spike layers, which "
                        "compute with the times themselves (no time steps).",
                    params=(ParamSpec("t_max", 1.0, low=1e-6, high=1e6,
                                      doc="Firing time of the dimmest input that still fires "
                                          "(x just above 0); x = 1 fires at 0"),)),
        EncoderSpec(id="wb_core.latency", display_name="Latency (time to first spike)",
                    factory="wb_core.encoders:LatencyEncoder",
                    doc="One spike per input; brighter fires earlier.",
                    params=(ParamSpec("threshold", 0.01, low=0.0, high=1.0,
                                      doc="Inputs at or below this never fire"),)),
    ]


@hookimpl
def wb_learning_rules() -> list[LearningRuleSpec]:
    return [
        LearningRuleSpec(
            id="wb_core.bptt",
            display_name="BPTT, surrogate gradient",
            factory="wb_core.learning:BPTTTrainer",
            doc="Backpropagation through time with the neurons' surrogate gradients.",
            params=(
                ParamSpec("optimizer", "adam", "choice", choices=("adam", "adamw", "sgd"),
                          doc="Optimiser"),
                ParamSpec("lr", 1e-3, low=1e-7, high=10.0, doc="Peak learning rate"),
                ParamSpec("weight_decay", 0.0, low=0.0, high=1.0, doc="Weight decay"),
                ParamSpec("momentum", 0.9, low=0.0, high=1.0, doc="SGD momentum"),
                ParamSpec("schedule", "cosine", "choice", choices=("cosine", "constant"),
                          doc="Learning-rate schedule over the whole run"),
                ParamSpec("min_lr_ratio", 0.0, low=0.0, high=1.0,
                          doc="Final learning rate as a fraction of lr (cosine)"),
                ParamSpec("loss", "mean_ce", "choice", choices=("mean_ce", "tet"),
                          doc="mean_ce: CE of time-averaged logits; tet: CE at every step, "
                              "averaged (see docs/wb_core.md)"),
                ParamSpec("grad_clip", 0.0, low=0.0, doc="Clip the gradient norm; 0 = off"),
            ),
        )
    ]


@hookimpl
def wb_energy_models() -> list[EnergyModelSpec]:
    horowitz = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
                "ISSCC 2014, 45 nm CMOS")
    # Quantised layers are priced at their own width from Horowitz's integer figures (8- and
    # 32-bit); other widths by the rule of docs/energy.md: adds linear in the width, multiplies
    # quadratic (an array multiplier), an accumulate at the weight's width. The ledger states
    # this rule itself (CostTable.pricing_note), so the sources name the published figures and
    # where the rule is explained, not the rule again.
    rule = "; integer widths between and beyond 8 and 32 bits: docs/energy.md"
    widths: dict[str, Any] = {
        "int_add_pj": ((8, 0.03), (32, 0.1)), "int_mult_pj": ((8, 0.2), (32, 3.1)),
        "add_exponent": 1.0, "mult_exponent": 2.0, "ac_width": "weight"}
    return [
        EnergyModelSpec(id="wb_core.fp32_45nm", display_name="45 nm, FP32",
                        e_mac_pj=4.6, e_ac_pj=0.9, precision="FP32", **widths,
                        source=horowitz + ": FP32 multiply 3.7 pJ + add 0.9 pJ" + rule,
                        doc="The convention of the SNN literature; quantised layers are priced "
                            "at their bit width (see docs/energy.md)."),
        EnergyModelSpec(id="wb_core.int8_45nm", display_name="45 nm, INT8",
                        e_mac_pj=0.23, e_ac_pj=0.03, precision="INT8", **widths,
                        source=horowitz + ": 8-bit multiply 0.2 pJ + add 0.03 pJ" + rule,
                        doc="8-bit integer arithmetic for every full-precision layer; "
                            "quantised layers at their bit width (see docs/energy.md)."),
    ]
