"""Does the core for a network fit a target? Decided from the plan alone, before any tool runs.

Memories are counted in the target's blocks (the cheapest depth x width configuration per
memory, as yosys maps them). On the iCE40 UP5K the weight store moves to SPRAM when it does not
fit the block RAM (SPRAM has no initial contents: the host loads the weights over the load port
after configuration). Which layer does not fit: the layers are added in order and the first one
that takes a memory past the target's blocks is named, with the overflow. The result also says
what the membranes cost in bits (``FitResult.membranes``): a layer with a membrane code stores
``neurons x b`` bits, against what the same membranes would need at full width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wb_sim.ir import IntegerNetwork

from wb_fpga.plan import CorePlan, plan_core, unsupported
from wb_fpga.targets import Target, get_target
from workbench.pluginhost import DeployError, FitIssue

#: memories whose words are the layers' words laid end to end; a memory with a ``layer`` is
#: that layer's own (a linear layer's membranes); the rest are per-core buffers
_SUMMED = ("weights", "bias", "threshold", "conv_membranes")


@dataclass
class FitResult:
    plan: CorePlan | None
    issues: list[FitIssue]
    memory: dict  # memory name -> {"depth", "width", "bits", "blocks", "kind"}
    bram_used: int = 0
    spram_used: int = 0
    use_dsp: bool = False
    lut_estimate: int = 0
    # linear neuron layer -> {"neurons", "stored_bits", "bits", "code_bits", "code_shift",
    # "full_width_bits"} (CorePlan.membrane_costs)
    membranes: dict = field(default_factory=dict)

    def membrane_summary(self) -> str:
        """One line on what the membrane memories cost, e.g. ``membranes: l0 64 x 4 bit
        (4-bit codes; 6 bit at full width), ... = 512 bit``."""
        if not self.membranes:
            return ""
        parts, total = [], 0
        for name, m in self.membranes.items():
            total += m["bits"]
            part = f"{name} {m['neurons']} x {m['stored_bits']} bit"
            if m["code_bits"] is not None:
                part += (f" ({m['code_bits']}-bit codes; {m['full_width_bits']} bit at full "
                         "width)")
            parts.append(part)
        return f"membranes: {', '.join(parts)} = {total} bit"

    @property
    def ok(self) -> bool:
        return self.plan is not None and not any(i.severity == "error" for i in self.issues)


def fit_issues(net: IntegerNetwork, target: str | Target, parallelism: int) -> list[FitIssue]:
    """What does not fit ``target`` (errors name the layer), and warnings; empty: it fits."""
    return fit(net, target, parallelism).issues


def fit(net: IntegerNetwork, target: str | Target, parallelism: int) -> FitResult:
    """The fit check with its numbers and the plan to build (``plan`` None when it cannot)."""
    tgt = get_target(target) if isinstance(target, str) else target
    bad = unsupported(net)
    if bad:
        return FitResult(None, [FitIssue(name, why) for name, why in bad], {})
    try:
        rom = plan_core(net, parallelism, weight_store="rom")
    except DeployError as exc:
        node = exc.where[len("node '"):-1] if exc.where.startswith("node '") else ""
        return FitResult(None, [FitIssue(node, exc.message)], {})
    issues: list[FitIssue] = []
    result = _count(rom, tgt)
    if result.bram_used > tgt.bram_blocks and tgt.spram_blocks:
        ram = plan_core(net, parallelism, weight_store="ram")
        in_spram = _count(ram, tgt)
        if in_spram.spram_used <= tgt.spram_blocks and in_spram.bram_used <= tgt.bram_blocks:
            result = in_spram
            issues.append(FitIssue("", (
                f"the weights ({ram.weight_words} words x {ram.parallelism * ram.widths.weight}"
                f" bit) do not fit the {tgt.bram_blocks} {tgt.bram_name} blocks: they go to "
                f"SPRAM ({in_spram.spram_used} of {tgt.spram_blocks} blocks), which has no "
                "initial contents, so the host loads them over the core's weight port after "
                "configuration"), severity="warning"))
        else:
            issues += _overflow_issues(ram if in_spram.spram_used > tgt.spram_blocks else rom,
                                       tgt)
    elif result.bram_used > tgt.bram_blocks:
        issues += _overflow_issues(rom, tgt)
    plan = result.plan
    result.membranes = plan.membrane_costs()
    result.use_dsp = plan.parallelism <= tgt.dsps and tgt.family == "ecp5"
    result.lut_estimate = estimate_luts(plan)
    if result.lut_estimate > tgt.luts:
        issues.append(_logic_issue(net, plan, tgt, result.lut_estimate))
    if tgt.family == "ecp5" and not result.use_dsp:
        issues.append(FitIssue("", (
            f"{plan.parallelism} lane multipliers exceed the {tgt.dsps} DSP multipliers: they "
            "are built from LUTs (yosys -nodsp)"), severity="warning"))
    result.issues = issues
    if any(i.severity == "error" for i in issues):
        result.plan = None
    return result


def _count(plan: CorePlan, tgt: Target) -> FitResult:
    memory = {}
    bram = spram = 0
    for mem in plan.memories():
        if mem.name == "weights" and plan.weight_store == "ram":
            blocks, kind = tgt.spram_for(mem.depth, mem.width), "SPRAM"
            spram += blocks
        else:
            blocks, kind = tgt.bram_for(mem.depth, mem.width), tgt.bram_name
            bram += blocks
        memory[mem.name] = {"depth": mem.depth, "width": mem.width, "bits": mem.bits,
                            "blocks": blocks, "block": kind}
    return FitResult(plan, [], memory, bram, spram)


def _overflow_issues(plan: CorePlan, tgt: Target) -> list[FitIssue]:
    """Name the first layer that takes the block RAM (or SPRAM) past the target's."""
    mems = plan.memories()
    in_spram = plan.weight_store == "ram"
    # The spike-event buffer is as deep as the most events one layer emits: it grows with the
    # layers like the summed memories, so it is charged as they are added.
    events = next((m for m in mems if m.name == "spike_events"), None)
    fixed = [m for m in mems if m.name not in _SUMMED and m.layer is None and m is not events]
    summed = [m for m in mems if m.name in _SUMMED]
    fixed_bram = sum(tgt.bram_for(m.depth, m.width) for m in fixed)
    words: dict[str, int] = {m.name: 0 for m in summed}
    own_bram = 0
    most_events = 0
    for lp in plan.layers:
        for m in summed:
            words[m.name] += m.per_layer.get(lp.name, 0)
        own_bram += sum(tgt.bram_for(m.depth, m.width) for m in mems if m.layer == lp.name)
        bram = fixed_bram + own_bram
        emits = ""
        if events is not None and lp.index < len(plan.layers) - 1:
            if lp.emits > most_events:
                most_events = lp.emits
                depth = 2 << max(0, (most_events - 1).bit_length())
                emits = (f", and its {lp.emits} events per step (a spike buffer of {depth} x "
                         f"{events.width} bit)")
            bram += tgt.bram_for(2 << max(0, (most_events - 1).bit_length()), events.width)
        spram = 0
        for m in summed:
            if m.name == "weights" and in_spram:
                spram += tgt.spram_for(words[m.name], m.width) if words[m.name] else 0
            else:
                bram += tgt.bram_for(words[m.name], m.width)
        layer = plan.net.layers[lp.index]
        bits = _layer_words(plan, lp) + emits
        if in_spram and spram > tgt.spram_blocks:
            width = plan.parallelism * plan.widths.weight
            return [FitIssue(layer.name, (
                f"does not fit {tgt.name}: its {bits} bring the SPRAM weight store to {spram} "
                f"blocks of 16K x 16 bit, the target has {tgt.spram_blocks} (over by "
                f"{spram - tgt.spram_blocks}); a {width}-bit weight word takes "
                f"{-(-width // 16)} blocks side by side, so lower parallelism or weight_bits, or "
                "make the layer smaller"))]
        if bram > tgt.bram_blocks:
            over = bram - tgt.bram_blocks
            return [FitIssue(layer.name, (
                f"does not fit {tgt.name}: its {bits} bring the block RAM to {bram} "
                f"{tgt.bram_name} blocks of {tgt.bram_bits // 1024} kbit, the target has "
                f"{tgt.bram_blocks} (over by {over} blocks, {over * tgt.bram_bits // 1024} "
                "kbit); lower weight_bits or parallelism, make the layer smaller, or choose a "
                "larger target"))]
    # Only reached when the per-core buffers alone overflow.
    return [FitIssue(plan.layers[0].name, (
        f"does not fit {tgt.name}: the core's buffers alone need {fixed_bram} "
        f"{tgt.bram_name} blocks, the target has {tgt.bram_blocks}"))]


def _layer_words(plan: CorePlan, lp) -> str:
    """What a layer puts in memory, for the messages."""
    P, wb = plan.parallelism, plan.widths.weight
    if lp.conv is not None:
        g = lp.conv
        return (f"{g.c_out} x {g.c_in} x {g.k} x {g.k} weights of {wb} bit, stored as "
                f"{lp.weight_words} words of {P} lanes, and {g.c_out} x {g.h_out} x {g.w_out} "
                f"membranes ({lp.potential_width} bit needed, stored as {lp.membrane_words} "
                f"words of {P} lanes x {plan.widths.conv} bit)")
    membranes = ""
    if lp.has_neuron:
        what = "membrane codes" if lp.membrane_bits is not None else "membranes"
        membranes = f", and {lp.c_out} {what} of {lp.potential_width} bit"
    return (f"{lp.c_out} x {lp.c_in} weights of {wb} bit, stored as {lp.weight_words} words "
            f"of {P} lanes" + membranes)


#: an estimate this far over the device is an error (the calibration points are within 5 %)
LUT_ERROR_MARGIN = 1.10


def _logic_issue(net: IntegerNetwork, plan: CorePlan, tgt: Target, estimate: int) -> FitIssue:
    """Too much logic: by how much, which engine, and the parallelism that would fit."""
    conv = estimate_luts(plan, part="conv")
    parts = (f" (the conv engine for {', '.join(lp.name for lp in plan.conv_layers)}: ~{conv})"
             if conv else "")
    advice = "lower parallelism"
    lanes = plan.parallelism // 2
    while lanes >= 1:
        try:
            smaller = estimate_luts(plan_core(net, lanes, weight_store=plan.weight_store))
        except DeployError:
            break
        if smaller <= tgt.luts:
            advice = (f"set the parameter parallelism to {lanes} (~{smaller} LUTs; on the "
                      f"command line --param parallelism={lanes})")
            break
        lanes //= 2
    over = estimate - tgt.luts
    error = estimate > LUT_ERROR_MARGIN * tgt.luts
    return FitIssue("", (
        f"the logic is estimated at ~{estimate} LUTs{parts} with P = {plan.parallelism} lanes, "
        f"the target has {tgt.luts} (over by ~{over}, {100 * over // tgt.luts} %): place and "
        f"route {'would' if error else 'will probably'} fail; {advice}"),
        severity="error" if error else "warning")


def estimate_luts(plan: CorePlan, part: str = "all") -> int:
    """A rough LUT count (nextpnr reports the real one): per lane an accumulator adder, a
    weight x input multiplier and the shadow register's mux; the serial neuron unit; control
    and the serial host wrapper; and the conv engine's lanes (``part="conv"``: that alone)."""
    w = plan.widths
    # Calibrated on the 4-bit digits MLP on the UP5K (P = 4, 8, 16: 1445, 1917, 2913 logic
    # cells): about 120 per lane and 950 for the rest.
    # Only a static linear first layer multiplies in the linear lanes; without it, signed
    # events (ternary spikes, a spike-train input) flip the weight before the adder.
    multiply = plan.layers[0].kind == "linear" and not plan.spike_input
    mult = w.weight * (w.input + 1) if multiply else 0
    flip = w.weight if not multiply and (plan.spike_input or plan.signed_events) else 0
    lane = 2 * w.acc + 2 * mult + 2 * w.weight + flip
    neuron = 8 * max(w.current, w.pre_reset, w.potential)
    total = plan.parallelism * lane + neuron + 750
    if plan.spike_input:
        # The step-end table is T registers (read without a clock), one logic cell per bit.
        # Checked on JapaneseVowels-sized QT-SNNs on the UP5K (12-64-64-9, T = 29): uniform
        # thresholds at P = 8, 16 placed 1450, 1601 logic cells (this gives 1355, 1611);
        # per-neuron thresholds at P = 16 (the synthesis test) placed 1725.
        total += plan.time_steps * max(1, plan.input_depth.bit_length())
    if part == "conv":
        total = 0
    convs = plan.conv_layers
    if convs:
        # Per conv lane: the scatter's multiply-add and the neuron update (H, compare, reset,
        # leak) with the write-data mux, plus the lane's share of the bias and threshold
        # constants; per conv layer its tap tables and address arithmetic. Calibrated on the
        # 4-bit digits_conv on the UP5K (P = 4, 8, 16: 2757, 3829, 6370 logic cells placed by
        # nextpnr; this gives 2758, 3930, 6274).
        cw = w.conv
        conv_lane = 2 * w.weight * (w.input + 1) + 17 * cw // 2
        total += plan.parallelism * conv_lane + 350 * len(convs)
    return total
