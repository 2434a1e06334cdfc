"""``wb_q_snn``: Q-SNN with weight-spike dual regulation (WS-DR), Wei et al., ACM MM 2024.

Contributes the quantised-membrane LIF neuron ``wb_q_snn.qlif`` (LIF parameterisation B whose
stored state is rounded to ``2^b − 1`` levels every step) and the compression pass
``wb_q_snn.q_snn``: 1-bit weights (WS-DR binarisation) between an 8-bit first and last layer,
low-bit membranes, and a fine-tune with the TET loss plus the spike-regulation term that pulls
hidden firing rates towards 0.5.

Importing this module is cheap: the specs name their factories as ``"module:attr"`` strings, so
torch is imported only when a network is built or compressed. Details and every reading ([R],
code quirk) are in ``docs/q_snn.md``.
"""

from __future__ import annotations

from workbench.pluginhost import CompressionSpec, NeuronSpec, ParamSpec, hookimpl

_MEMBRANE_BITS = ParamSpec("membrane_bits", 8, "int", low=2, high=16, unit="bits",
                           doc="Bits of the stored membrane potential: 2^b − 1 symmetric levels "
                               "(the official code's default is 8, '1w8u')")


@hookimpl
def wb_neurons() -> list[NeuronSpec]:
    return [
        NeuronSpec(
            id="wb_q_snn.qlif",
            display_name="LIF, quantised membrane (Q-SNN)",
            factory="wb_q_snn.neuron:qlif",
            doc="u = lam·u + x; spike when u > theta; hard reset to 0; then the state is "
                "stored as round(tanh(u)/a·(2^(b−1)−1)) levels, a = max|tanh(u)| "
                "(Q-SNN, Wei et al. 2024; see docs/q_snn.md). Triangle surrogate, width 1.",
            params=(
                _MEMBRANE_BITS,
                ParamSpec("membrane_tanh", True, "bool",
                          doc="Squash the state with tanh before quantising (the official "
                              "code does; it changes the dynamics)"),
                ParamSpec("lam", 0.5, low=0.0, high=1.0, doc="Leak factor per step"),
                ParamSpec("theta", 1.0, low=1e-6, doc="Firing threshold"),
            ),
        )
    ]


@hookimpl
def wb_compressions() -> list[CompressionSpec]:
    return [
        CompressionSpec(
            id="wb_q_snn.q_snn",
            display_name="Q-SNN (1-bit weights, low-bit membranes, WS-DR)",
            factory="wb_q_snn.method:apply",
            kind="binarize",
            doc="Binarises every conv/linear layer except the first and the last (8-bit), "
                "swaps every neuron for the quantised-membrane LIF (its threshold matched to the "
                "trained weights), and fine-tunes with TET + spike regulation (Q-SNN, Wei et "
                "al. 2024; see docs/q_snn.md).",
            params=(
                ParamSpec("ws_dr", True, "bool",
                          doc="Weight regulation: standardise each channel, power-of-two scale, "
                              "tanh estimator with the (k, t) schedule. Off: plain sign(W) · "
                              "mean|W| with a straight-through estimator (the baseline)"),
                _MEMBRANE_BITS,
                ParamSpec("spike_reg", 5e-3, low=0.0, high=10.0, label="Spike regulation λ_f",
                          doc="Weight of mean (r − 0.5)² over the hidden neuron layers (all but "
                              "the first and last); 0 disables it"),
                ParamSpec("stem_scale", "max", "choice", choices=("max", "absmax"),
                          doc="m of the 8-bit first/last layer rule round(w/m·127)/127·m: max(w) "
                              "as in the official code (codes below −127 possible, then more "
                              "than 8 bits are stored) or max|w| (codes in [−127, 127])"),
                ParamSpec("finetune_epochs", 4, "int", low=0, high=10_000, unit="epochs",
                          doc="Fine-tuning epochs (Adam, cosine); 0 freezes right away"),
                ParamSpec("lr", 1e-3, low=1e-7, high=10.0, doc="Fine-tuning learning rate"),
                ParamSpec("quantize_membrane", True, "bool",
                          doc="Use the quantised-membrane LIF; off keeps full-precision LIF (B) "
                              "neurons with the same dynamics (weights-only Q-SNN)"),
            ),
        )
    ]
