"""Whether the encoder, the layers and the learning rule agree on how spikes travel.

A spike-train network (``"trains"``: a value per input at each of T steps) and a
time-to-first-spike network (``"times"``: one firing time per input, ``inf`` when silent) look
alike to torch — both are tensors — but a layer of one fed the other computes nonsense without
an error (a firing time read as a current, a 0/1 spike read as "fired at t = 0"). The specs
declare their code (``spike_code``, see :data:`workbench.core.model.specs.SPIKE_CODES`), and this
module names each node, or the learning rule, that disagrees with the encoder, saying what to
pick instead.
"""

from __future__ import annotations

from workbench.core.model.graph import Graph
from workbench.core.model.specs import (
    ANY_SPIKE_CODE,
    SPIKE_TIMES,
    BlockSpec,
    EncoderSpec,
    LearningRuleSpec,
    SpecLookup,
)

_WHAT = {SPIKE_TIMES: "spike times (time-to-first-spike: one firing time per input)",
         "trains": "spike trains (a value per input at every time step)"}


def _other(code: str) -> str:
    return "trains" if code == SPIKE_TIMES else SPIKE_TIMES


def node_problems(graph: Graph, lookup: SpecLookup, encoder: EncoderSpec) -> dict[str, str]:
    """``{node id: message}`` for each node whose block takes another code than the encoder
    emits (unknown specs are left to the compiler, which names them)."""
    code = encoder.spike_code
    found = {}
    for node in graph.nodes:
        spec = lookup.get(node.spec)
        if not isinstance(spec, BlockSpec) or spec.spike_code in (code, ANY_SPIKE_CODE):
            continue
        found[node.id] = (
            f"{node.spec} takes {_WHAT[spec.spike_code]}, but the encoder {encoder.id} emits "
            f"{_WHAT[code]}; pick an encoder that emits {_other(code)} or layers that take "
            f"{code}")
    return found


def rule_problem(rule: LearningRuleSpec, encoder: EncoderSpec) -> str | None:
    """Why ``rule`` cannot train a network fed by ``encoder``, or None."""
    if rule.spike_code == encoder.spike_code:
        return None
    return (f"the learning rule {rule.id} trains networks of {_WHAT[rule.spike_code]}, but the "
            f"encoder {encoder.id} emits {_WHAT[encoder.spike_code]}; pick a rule for "
            f"{encoder.spike_code}")
