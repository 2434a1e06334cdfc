"""The graph rewrite of Q-SNN: every neuron becomes Q-SNN's LIF (B), in the trained units.

Q-SNN's neuron is LIF parameterisation B, ``u = λ·u + x`` with input gain 1 and threshold 1. A
network trained with another neuron learnt its weights against that neuron's input gain and
threshold: under LIF (A) with ``tau = 2`` (``H = 0.5·V + 0.5·X``, fire at ``H ≥ 1``) the same
weights would drive a gain-1 neuron twice as hard. So the replacement's threshold is set to
``θ = θ_old / g_old`` (docs/q_snn.md, "Neuron swap"): then ``u = H / g_old``, and the new neuron
fires where the old one did at the first step (exact ties aside: B fires at ``u > θ``, A at
``H ≥ θ``), and at every step when the leaks agree and the membrane is not quantised.

Why the threshold and not the weights: the threshold belongs to the neuron being replaced, so
the correction is one number per neuron choice and exact whatever feeds the neuron. Scaling
weights would have to find the layer whose output the neuron reads, and there is not always
one: a GL-SPS stage sums two batch-normed branches, a residual add mixes in spikes, an attention
neuron reads a product of spikes. (Scaling the conv before a batch norm does nothing at all:
the norm removes it; the scale would have to go into the norm's γ and β.)
"""

from __future__ import annotations

from typing import Any

import torch

from workbench.pluginhost import Graph, NeuronSpec

QLIF_ID = "wb_q_snn.qlif"
#: the same LIF (B) dynamics without quantisation, for ``quantize_membrane=False``
PLAIN_LIF_B = {"id": "wb_core.lif_b",
               "params": {"lam": 0.5, "theta": 1.0, "reset": "hard", "detach_reset": False,
                          "surrogate": "triangle", "surrogate_alpha": 1.0}}
#: the probe input, as a fraction of the threshold: below it, so the neuron only charges
_PROBE = 0.25
#: significant digits kept of the new threshold (a measured gain carries float noise)
_DIGITS = 6


def replacement_neuron(quantize_membrane: bool, membrane_bits: int) -> dict[str, Any]:
    """The neuron choice every spiking layer gets (its threshold is set per layer)."""
    if not quantize_membrane:
        return {"id": PLAIN_LIF_B["id"], "params": dict(PLAIN_LIF_B["params"])}
    return {"id": QLIF_ID, "params": {"membrane_bits": int(membrane_bits)}}


def input_units(module: torch.nn.Module) -> tuple[float, float] | None:
    """``(input gain, threshold)`` of a freshly built neuron module, or None when it does not
    say. The threshold is the neuron contract's ``threshold``; the gain is measured: two inputs
    below the threshold for one step from rest, and the change of the charged potential
    (``last_membrane``, recorded when ``record_membrane`` is set) per unit of input.
    """
    threshold = getattr(module, "threshold", None)
    if isinstance(threshold, torch.Tensor) and threshold.numel() == 1:
        threshold = float(threshold)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or threshold <= 0:
        return None
    step = _PROBE * float(threshold)
    x = torch.tensor([[0.0, step]], dtype=torch.float64)  # [T = 1, two neurons]
    module.record_membrane = True
    module.eval()
    try:
        with torch.no_grad():
            module(x)
    except Exception:  # noqa: BLE001 - a neuron that cannot run alone has no measured units
        return None
    charged = getattr(module, "last_membrane", None)
    if not isinstance(charged, torch.Tensor) or tuple(charged.shape) != (1, 2):
        return None
    gain = float(charged[0, 1] - charged[0, 0]) / step
    return (gain, float(threshold)) if gain > 0 else None


def matched_threshold(lookup: Any, choice: dict[str, Any]) -> float | None:
    """``θ_old / g_old`` of the neuron ``choice`` (``{"id", "params"}``), None when unknown."""
    spec = lookup.get(choice["id"])
    if not isinstance(spec, NeuronSpec):
        return None
    units = input_units(spec.create(**spec.check_params(choice["params"], where=choice["id"])))
    if units is None:
        return None
    gain, threshold = units
    return float(f"{threshold / gain:.{_DIGITS}g}")


def swap_neurons(graph: Graph, lookup: Any, neuron: dict[str, Any]) -> dict[str, float | None]:
    """Point every neuron of ``graph`` (in place) at ``neuron``: node parameters of kind
    ``neuron`` and nodes that are neurons themselves. Each gets the threshold of
    :func:`matched_threshold` (``neuron``'s own where that is None).

    Returns ``{"node.param" or "node": threshold or None}`` for every place changed.
    """
    changed: dict[str, float | None] = {}
    neuron_spec = lookup.get(neuron["id"])

    def replaced(old: dict[str, Any], place: str) -> dict[str, Any]:
        theta = matched_threshold(lookup, old)
        changed[place] = theta
        params = dict(neuron["params"])
        if theta is not None:
            params["theta"] = theta
        return params

    for node in graph.nodes:
        spec = lookup.get(node.spec)
        if spec is None:
            continue
        checked = spec.check_params(node.params, where=f"node {node.id!r}")
        if isinstance(spec, NeuronSpec):
            node.params = replaced({"id": node.spec, "params": checked}, node.id)
            node.spec = neuron["id"]
            node.spec_version = getattr(neuron_spec, "spec_version", 1)
            continue
        for p in spec.params:
            if p.kind == "neuron":
                params = replaced(checked[p.name], f"{node.id}.{p.name}")
                node.params[p.name] = {"id": neuron["id"], "params": params}
    return changed
