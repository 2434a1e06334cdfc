"""How run results read: the before/after table of a compression, a backend's report as rows,
deploy step names, energy in the unit a reader compares. One home, used by the CLI and the GUI.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.core.model.quantity import format_energy_pj


def format_energy(pj: float) -> str:
    """An energy given in pJ, with the SI prefix that suits its size (``format_si``)."""
    return format_energy_pj(pj)


def _format_bits(widths: Any) -> str:
    if isinstance(widths, (list, tuple)):
        return "/".join(str(w) for w in widths) or "—"
    return str(widths)


def comparison_rows(before: dict[str, Any], after: dict[str, Any]
                    ) -> list[tuple[str, str, str, str]]:
    """``(figure, before, after, change)`` rows of a compression's before/after table."""
    rows: list[tuple[str, str, str, str]] = []
    acc_b, acc_a = before.get("accuracy"), after.get("accuracy")
    if acc_b is not None and acc_a is not None:
        rows.append(("Accuracy", f"{100 * acc_b:.2f} %", f"{100 * acc_a:.2f} %",
                     f"{100 * (acc_a - acc_b):+.2f} pp"))
    size_b, size_a = before.get("model_size_bytes"), after.get("model_size_bytes")
    if size_b is not None and size_a is not None:
        change = f"×{size_b / size_a:.2f} smaller" if size_a else ""
        rows.append(("Model size", f"{size_b:,.0f} B ({size_b / 1e6:.4f} MB)",
                     f"{size_a:,.0f} B ({size_a / 1e6:.4f} MB)", change))
    par_b, par_a = before.get("params"), after.get("params")
    if par_b is not None and par_a is not None:
        change = f"{100 * (par_a - par_b) / par_b:+.1f} %" if par_b else ""
        rows.append(("Parameters", f"{par_b:,}", f"{par_a:,}", change))
    e_b, e_a = before.get("total_pj_per_sample"), after.get("total_pj_per_sample")
    if e_b is not None and e_a is not None:
        change = f"{100 * (e_a - e_b) / e_b:+.1f} %" if e_b else ""
        rows.append(("Energy per sample (estimate)", format_energy(e_b), format_energy(e_a),
                     change))
    bits_b, bits_a = before.get("bits") or {}, after.get("bits") or {}
    for layer in list(bits_b) + [n for n in bits_a if n not in bits_b]:
        b, a = _format_bits(bits_b.get(layer, "—")), _format_bits(bits_a.get(layer, "—"))
        rows.append((f"Bits, {layer}", b, a, "" if a == b else "changed"))
    return rows


def precision_split(after: dict[str, Any], report: dict[str, Any], params: dict[str, Any]
                    ) -> dict[str, Any]:
    """Which conv/linear layers a compression left quantised (name: bits) and which at full
    precision, from the ledger's widths (``measure``'s ``layer_bits``); the full-precision
    layers a method kept on purpose (``keep_first_last``) are named in ``kept_first_last``."""
    widths = after.get("layer_bits") or {}
    quantised = {name: int(bits) for name, bits in widths.items() if bits is not None}
    full = [name for name, bits in widths.items() if bits is None]
    kept = set(report.get("full_precision") or []) if params.get("keep_first_last") else set()
    return {"quantised": quantised, "full_precision": full,
            "kept_first_last": [name for name in full if name in kept]}


def _bits_text(bits: int) -> str:
    return f"{bits} bit" if bits == 1 else f"{bits} bits"


def precision_text(split: dict[str, Any] | None) -> str:
    """"quantised 1 of 3 layers to 4 bits: fc2; kept full precision: conv1, fc
    (keep_first_last)" — "" when no layer is quantised (a pruning pass, say)."""
    quantised = (split or {}).get("quantised") or {}
    if not quantised:
        return ""
    full = list(split.get("full_precision") or [])
    total = len(quantised) + len(full)
    widths = sorted(set(quantised.values()))
    if len(widths) == 1:
        text = (f"quantised {len(quantised)} of {total} layers to {_bits_text(widths[0])}: "
                + ", ".join(quantised))
    else:
        groups = "; ".join(f"{_bits_text(w)}: "
                           + ", ".join(n for n, b in quantised.items() if b == w)
                           for w in widths)
        text = f"quantised {len(quantised)} of {total} layers ({groups})"
    if full:
        kept = set(split.get("kept_first_last") or [])
        if kept == set(full):
            names = ", ".join(full) + " (keep_first_last)"
        else:
            names = ", ".join(n + (" (keep_first_last)" if n in kept else "") for n in full)
        text += f"; kept full precision: {names}"
    return text


def flatten_report(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested report as ``(dotted key, text)`` rows; long lists are summarised."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows += flatten_report(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, float):
        return [(prefix, f"{value:.6g}")]
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return [(prefix, f"[{len(value)} values]")]
    return [(prefix, str(value))]


#: a trailing counter ("…: 12/50") or elapsed time ("… (15 s)") is a step's detail, not a new step
_STEP_DETAIL = re.compile(r"(?::\s*\d+\s*/\s*\d+|\s*\(\d+(?:\.\d+)?\s*s\))+\s*$")


def step_name(message: str) -> str:
    """The step a progress message belongs to: the message without its counter or timer."""
    return _STEP_DETAIL.sub("", message).strip()
