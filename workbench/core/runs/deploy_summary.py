"""A deployment's report as a reader wants it: the headline figures first, the rest grouped.

A backend's report is free-form (``wb_fpga`` returns about 170 values once flattened,
``wb_sim`` fewer). :func:`headline` picks what a reader looks for first, wherever a backend
puts it: resources against the target's capacity, Fmax against the clock used, latency and
energy per sample with the energy's kind and source. :func:`report_groups` sorts every other
value into a few named groups, so nothing is hidden and nothing is one flat list. Used by the
Deploy panel; no Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.core.model.json_text import finite_number
from workbench.core.model.quantity import format_energy_pj, format_si
from workbench.core.runs.reports import flatten_report

#: the order resources are listed in; others follow in the report's order
_RESOURCE_ORDER = ("LUT", "LC", "FF", "BRAM", "SPRAM", "DSP", "IO")
_RESOURCE_NAMES = {"LUT": "LUTs", "LC": "Logic cells", "FF": "Flip-flops", "BRAM": "Block RAM",
                   "SPRAM": "SPRAM", "DSP": "DSP blocks", "IO": "I/O pins"}

#: the group of each top-level report key; keys not named here go to "Other"
_GROUPS = {
    "Resources": ("resources", "estimate", "memories", "yosys_cells"),
    "Timing": ("fmax_mhz", "clock_mhz", "clock_note", "latency_us", "inferences_per_s",
               "cycles_per_inference", "samples_per_s"),
    "Energy": ("energy", "energy_pj_per_inference", "energy_uj_per_inference", "power_w",
               "power_mw", "power_model", "source"),
    "Checks": ("golden", "accuracy", "samples"),
    "Network": ("target", "target_description", "parallelism", "weight_store", "time_steps",
                "widths", "layers", "input_scale", "input_bits", "frac_bits", "weight_bits",
                "quantized_layers", "ops_per_sample", "spikes_per_sample", "notes"),
    "Files": ("network", "verilog", "rtlil", "netlist", "pnr_report", "placed", "bitstream",
              "bitstream_note", "weights_hex"),
    "Toolchain": ("synthesis", "tools", "toolchain"),
}
GROUP_ORDER = (*_GROUPS, "Other", "Test-set run")


def group_numbers(n: int) -> str:
    """``1234`` as "1 234" (a no-break space between thousands, as SI writes them)."""
    return f"{n:,}".replace(",", "\u00a0")


@dataclass
class Resource:
    name: str
    used: int
    available: int

    @property
    def fraction(self) -> float:
        return self.used / self.available if self.available else 0.0

    def text(self) -> str:
        """"1 234 / 5 280 (23 %)"."""
        share = f" ({100 * self.fraction:.0f} %)" if self.available else ""
        return f"{group_numbers(self.used)} / {group_numbers(self.available)}{share}"


@dataclass
class Headline:
    """The figures of a summary card; ``None``/empty where the backend gave none."""

    target: str = ""
    resources: list[Resource] = field(default_factory=list)
    fmax: str = ""
    latency: str = ""
    throughput: str = ""
    energy: str = ""
    energy_source: str = ""
    accuracy: str = ""
    checked: str = ""

    def rows(self) -> dict[str, str]:
        """The card's text by figure: what a user reads on it."""
        rows = {r.name: r.text() for r in self.resources}
        for name, value in (("Fmax", self.fmax), ("Latency", self.latency),
                            ("Throughput", self.throughput), ("Energy", self.energy),
                            ("Accuracy", self.accuracy),
                            ("Checked", self.checked)):
            if value:
                rows[name] = value
        return rows


def _resources(report: dict[str, Any]) -> list[Resource]:
    found = report.get("resources") or {}
    if not isinstance(found, dict):
        return []
    keys = [k for k in _RESOURCE_ORDER if k in found] + [k for k in found
                                                          if k not in _RESOURCE_ORDER]
    out = []
    for key in keys:
        item = found[key]
        if isinstance(item, dict) and finite_number(item.get("used")) is not None:
            out.append(Resource(_RESOURCE_NAMES.get(key, key), int(item["used"]),
                                int(item.get("available") or 0)))
    return out


def _fmax(report: dict[str, Any]) -> str:
    fmax, clock = finite_number(report.get("fmax_mhz")), finite_number(report.get("clock_mhz"))
    if fmax:
        text = f"{format_si(fmax * 1e6, 'Hz')}"
        if clock:
            text += f"; clocked at {format_si(clock * 1e6, 'Hz')}"
        return text
    if clock:
        return f"not measured (not synthesised); clocked at {format_si(clock * 1e6, 'Hz')}"
    return ""


def _latency(report: dict[str, Any]) -> str:
    cycles = report.get("cycles_per_inference")
    seconds = finite_number(report.get("latency_us"))
    parts = []
    if isinstance(cycles, dict) and finite_number(cycles.get("mean")) is not None:
        text = f"{group_numbers(round(cycles['mean']))} cycles"
        if finite_number(cycles.get("min")) is not None and finite_number(cycles.get("max")) is not None:
            text += (f" (mean; {group_numbers(int(cycles['min']))}–"
                     f"{group_numbers(int(cycles['max']))})")
        parts.append(text)
    if seconds is not None:
        parts.append(format_si(seconds * 1e-6, "s"))
    return " = ".join(parts)


def _throughput(report: dict[str, Any]) -> str:
    rate = finite_number(report.get("inferences_per_s")) or finite_number(report.get("samples_per_s"))
    return f"{group_numbers(round(rate))} samples/s" if rate else ""


def _energy(report: dict[str, Any]) -> tuple[str, str]:
    energy = report.get("energy") if isinstance(report.get("energy"), dict) else {}
    pj = (finite_number(report.get("energy_pj_per_inference")) or finite_number(energy.get("pj_per_sample"))
          or finite_number(energy.get("pj_per_inference")))
    if pj is None:
        return "", ""
    kind = str(energy.get("kind") or "estimate")
    source = str(energy.get("power_model") or report.get("power_model") or "")
    detail = str(energy.get("source") or report.get("source") or "")
    where = "; ".join(s for s in (source, detail) if s)
    return f"{format_energy_pj(pj)} per sample ({kind})", where


def headline(summary: dict[str, Any]) -> Headline:
    """The summary card of a finished deployment's summary (``{"report", "live", ...}``)."""
    report = summary.get("report") or {}
    if not isinstance(report, dict):
        report = {}
    energy, source = _energy(report)
    live = summary.get("live") or {}
    accuracy = ""
    if finite_number(live.get("accuracy")) is not None:
        accuracy = (f"{100 * live['accuracy']:.1f} % on {live.get('samples', '?')} test "
                    "samples")
    golden = report.get("golden") if isinstance(report.get("golden"), dict) else {}
    checked = ""
    if golden.get("bit_exact") is not None:
        checked = (("bit-exact" if golden["bit_exact"] else "NOT bit-exact")
                   + f" with the reference on {golden.get('samples', '?')} samples")
    return Headline(target=str(summary.get("target") or report.get("target") or ""),
                    resources=_resources(report), fmax=_fmax(report), latency=_latency(report),
                    throughput=_throughput(report), energy=energy, energy_source=source,
                    accuracy=accuracy, checked=checked)


def report_groups(summary: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Every value of the report (and of the test-set run) as ``(dotted key, text)`` rows,
    by group, in :data:`GROUP_ORDER`; empty groups are left out."""
    report = summary.get("report") or {}
    group_of = {key: group for group, keys in _GROUPS.items() for key in keys}
    groups: dict[str, list[tuple[str, str]]] = {name: [] for name in GROUP_ORDER}
    if isinstance(report, dict):
        # within a group, the keys in the order named above (resources before memories)
        order = {key: i for i, key in enumerate(group_of)}
        for key in sorted(report, key=lambda k: order.get(k, len(order))):
            groups[group_of.get(key, "Other")] += flatten_report(report[key], str(key))
    else:
        groups["Other"] += flatten_report(report, "report")
    if summary.get("live"):
        groups["Test-set run"] += flatten_report(summary["live"], "live")
    return {name: rows for name, rows in groups.items() if rows}
