"""``wb_event_learning``: event-driven learning of spiking networks, after Wei et al.,
"Event-Driven Learning for Spiking Neural Networks", arXiv 2403.00270, 2024.

Contributes the learning rule ``wb_event_learning.mpd_ed`` (membrane-potential-dependent
event-driven learning): BPTT in which a LIF neuron's spike derivative is evaluated only where it
spiked, weighted by how close its potential was to the threshold, so backward work follows the
spikes; and ``wb_event_learning.std_ed`` (spike-timing-dependent event-driven learning) with its
single-spike layers ``std_ed_linear`` and ``std_ed_readout``, which pass firing times
(``spike_code="times"``) and learn through the analytical derivatives of those times. The
paper's equations were not available to us: the rules implemented are our readings, documented
with their parameters in docs/event_learning.md and docs/std_ed.md.

Importing this module is cheap: the spec names its factory as a ``"module:attr"`` string.
"""

from __future__ import annotations

from workbench.pluginhost import SPIKE_TIMES, BlockSpec, LearningRuleSpec, ParamSpec, hookimpl

_STD_ED = "wb_event_learning.std_ed"


def _bptt_params() -> tuple[ParamSpec, ...]:
    """wb_core.bptt's parameters (optimiser, learning rate, schedule, loss…): MPD-ED trains
    with the same trainer, so it offers the same knobs with the same defaults."""
    from wb_core import wb_learning_rules as core_rules

    bptt = next(spec for spec in core_rules() if spec.id == "wb_core.bptt")
    return bptt.params


@hookimpl
def wb_learning_rules() -> list[LearningRuleSpec]:
    return [
        LearningRuleSpec(
            id="wb_event_learning.mpd_ed",
            display_name="MPD-ED, event-driven BPTT",
            factory="wb_event_learning.learning:MPDEDTrainer",
            doc="BPTT whose spike derivative is non-zero only at spikes: S·g(U − θ), g a "
                "triangle of width a (Wei et al. 2024, our reading; see "
                "docs/event_learning.md). Trains networks of wb_core LIF/IF neurons.",
            params=(
                *_bptt_params(),
                ParamSpec("surrogate_width", 1.0, low=1e-3, high=100.0,
                          doc="Width a of g(u) = (1/a)·max(0, 1 − |u − θ|/a) at a spike"),
            ),
        ),
        LearningRuleSpec(
            id="wb_event_learning.std_ed", display_name="STD-ED, event-driven (spike timing)",
            factory=f"{_STD_ED}:STDEDTrainer", spike_code=SPIKE_TIMES,
            doc="Wei et al. 2024, in the dynamic-threshold reading: cross-entropy on the "
                "read-out's potentials, gradients only through neurons and inputs that fired "
                "(docs/std_ed.md). Trains std_ed_linear layers fed firing times (wb_core.ttfs).",
            # the loss is fixed (cross-entropy on the logits of the single step)
            params=tuple(p for p in _bptt_params() if p.name != "loss"),
        ),
    ]


@hookimpl
def wb_blocks() -> list[BlockSpec]:
    return [
        BlockSpec(
            id="wb_event_learning.std_ed_linear", display_name="STD-ED linear (firing times)",
            factory=f"{_STD_ED}:std_ed_linear", category="spiking", spike_code=SPIKE_TIMES,
            doc="Single-spike neurons that fire once inside their own window [1, 2] against a "
                "falling threshold 2 − t, at t = (2 + Σ w·t_in) / (1 + Σ w) over the inputs "
                "that fired; pass t − 1 on (docs/std_ed.md).",
            params=(ParamSpec("out_features", 256, "int", low=1, high=1 << 20,
                              doc="Neurons in the layer"),)),
        BlockSpec(
            id="wb_event_learning.std_ed_readout", display_name="STD-ED read-out (potentials)",
            factory=f"{_STD_ED}:std_ed_readout", category="readout", spike_code=SPIKE_TIMES,
            doc="Output layer that does not fire: the logit of a class is its potential at the "
                "end of the window, Σ w·(2 − t_in) over the inputs that fired (docs/std_ed.md).",
            params=(ParamSpec("classes", 10, "int", low=1, high=1 << 20,
                              doc="Output classes"),)),
    ]
