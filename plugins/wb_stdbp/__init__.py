"""``wb_stdbp``: time-to-first-spike learning with ReL-PSP neurons and STDBP, after Zhang et al.,
"Rectified Linear Postsynaptic Potential Function for Backpropagation in Deep Spiking Neural
Networks", IEEE TNNLS 33(5):1947-1958, 2022 (arXiv 2003.11837).

Contributes two blocks of single-spike neurons that take and emit firing times
(``wb_stdbp.relpsp_linear``, ``wb_stdbp.relpsp_conv``; the rectified linear PSP, or an alpha
PSP for comparison) and the learning rule ``wb_stdbp.stdbp``, which trains them on the first
output spike. Feed them the ``wb_core.ttfs`` encoder. The defaults and every choice of ours are
in docs/stdbp.md.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings.
"""

from __future__ import annotations

from workbench.pluginhost import (
    SPIKE_TIMES,
    BlockSpec,
    LearningRuleSpec,
    ParamSpec,
    hookimpl,
)

_NEURON = (
    ParamSpec("kernel", "relpsp", "choice", choices=("relpsp", "alpha"),
              doc="Post-synaptic potential: relpsp, max(0, t - t_i) (closed-form spike time, "
                  "STDBP gradient); alpha, (x/tau)·e^(1 - x/tau) (SpikeProp gradient), to "
                  "compare"),
    ParamSpec("tau", 2.0, low=0.01, high=100.0, unit="time",
              doc="Time constant of the alpha kernel (its peak); unused by relpsp"),
    ParamSpec("theta", 1.0, low=1e-3, high=1e3, doc="Firing threshold"),
    ParamSpec("horizon", 10.0, low=1.0, high=1e3, unit="time",
              doc="Simulation horizon t_h: a neuron that has not fired by then is silent. Must "
                  "be above the encoder's input window (wb_core.ttfs: t_max = 1)"),
)


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="wb_stdbp.relpsp_linear",
            display_name="ReL-PSP linear (spike times)",
            factory="wb_stdbp.layers:relpsp_linear",
            category="spiking",
            spike_code=SPIKE_TIMES,
            doc="Fully connected single-spike neurons on firing times: V(t) = Σ w·max(0, t − "
                "t_i), one spike at the first V ≥ theta (Zhang et al. 2022; docs/stdbp.md).",
            params=(ParamSpec("out_features", 256, "int", low=1, high=65536,
                              doc="Number of neurons"), *_NEURON),
        ),
        BlockSpec(
            id="wb_stdbp.relpsp_conv",
            display_name="ReL-PSP conv (spike times)",
            factory="wb_stdbp.layers:relpsp_conv",
            category="spiking",
            spike_code=SPIKE_TIMES,
            doc="Convolution of single-spike neurons on firing times: each output position is a "
                "neuron over its receptive field; padding never fires (docs/stdbp.md).",
            params=(
                ParamSpec("channels", 16, "int", low=1, high=4096, doc="Output channels"),
                ParamSpec("kernel_size", 3, "int", low=1, high=31, unit="px",
                          doc="Kernel size"),
                ParamSpec("stride", 1, "int", low=1, high=16, unit="px", doc="Stride"),
                ParamSpec("padding", 1, "int", low=0, high=15, unit="px",
                          doc="Padding (padded inputs never fire)"),
                *_NEURON,
            ),
        ),
    ]


def _optimizer_params() -> tuple[ParamSpec, ...]:
    """wb_core.bptt's optimiser knobs (the trainer uses its optimiser and schedule), without
    its loss: STDBP's loss is the first-spike cross-entropy."""
    from wb_core import wb_learning_rules as core_rules

    bptt = next(spec for spec in core_rules() if spec.id == "wb_core.bptt")
    return tuple(p for p in bptt.params if p.name != "loss")


@hookimpl
def wb_learning_rules() -> list[LearningRuleSpec]:
    return [
        LearningRuleSpec(
            id="wb_stdbp.stdbp",
            display_name="STDBP, time-to-first-spike",
            factory="wb_stdbp.learning:STDBPTrainer",
            spike_code=SPIKE_TIMES,
            readout="workbench.pluginhost:earliest_spike",
            doc="Spike-timing-dependent back-propagation: the loss −log softmax(−t_out)[y] "
                "(silent outputs at the horizon), gradients only along input spikes that came "
                "before each output spike (Zhang et al. 2022; docs/stdbp.md).",
            params=(
                *_optimizer_params(),
                ParamSpec("silence_penalty", 1.0, low=0.0, high=100.0,
                          doc="Weight of the penalty that revives silent neurons: mean "
                              "relu(theta − V(t_h)) over silent (neuron, sample) pairs; 0 = "
                              "pure STDBP (dead neurons stay dead)"),
            ),
        )
    ]
