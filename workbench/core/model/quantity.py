"""One way to write a physical quantity: the SI prefix chosen per value, three significant digits.

Every view and the CLI format energies, times, powers, rates and frequencies through
:func:`format_si`, so a figure reads the same everywhere ("2.54 mJ", never "2.54e+03 µJ" in one
place and "kpJ" on an axis in another). Axis labels that let pyqtgraph pick the prefix pass the
base unit (``"J"``, ``"s"``), never an already-prefixed one.
"""

from __future__ import annotations

import math

# The prefixes a reader meets in this field; beyond them the plain exponent is clearer.
_PREFIXES = (
    (-15, "f"), (-12, "p"), (-9, "n"), (-6, "µ"), (-3, "m"),
    (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"),
)


def format_si(value: float, unit: str, digits: int = 3) -> str:
    """``value`` in base ``unit`` (J, s, W, Hz…) with the SI prefix that keeps 1 ≤ mantissa < 1000.

    >>> format_si(2.54e-3, "J")
    '2.54 mJ'
    >>> format_si(0.0, "J")
    '0 J'
    """
    if value is None or not math.isfinite(value):
        return f"— {unit}".strip()
    if value == 0:
        return f"0 {unit}".strip()
    exponent = math.floor(math.log10(abs(value)))
    step = max(_PREFIXES[0][0], min(_PREFIXES[-1][0], 3 * math.floor(exponent / 3)))
    mantissa = value / 10.0 ** step
    # Rounding can carry 999.7 up to "1e+03": move to the next prefix instead.
    if float(f"{abs(mantissa):.{digits}g}") >= 1000 and step < _PREFIXES[-1][0]:
        step += 3
        mantissa = value / 10.0 ** step
    prefix = dict(_PREFIXES)[step]
    text = f"{mantissa:.{digits}g}"
    if "e" in text:  # beyond the prefixes: keep the exponent, but say so plainly
        text = f"{mantissa:.{digits - 1}e}"
    return f"{text} {prefix}{unit}".strip()


def format_energy_pj(picojoules: float, digits: int = 3) -> str:
    """An energy given in pJ (the ledger's unit), written with the prefix that suits it."""
    return format_si(picojoules * 1e-12, "J", digits)
