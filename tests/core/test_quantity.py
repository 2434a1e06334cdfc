"""``format_si``: one way to write a physical quantity, the SI prefix chosen per value."""

from __future__ import annotations

import math

import pytest

from workbench.core.model.quantity import format_energy_pj, format_si


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0.0, "J", "0 J"),
    (2.54e-3, "J", "2.54 mJ"),
    (-2.5e-9, "J", "-2.5 nJ"),          # the sign stays, the prefix follows the magnitude
    (999.7e-6, "J", "1 mJ"),            # rounding to 1000 µJ moves up a prefix
    (999.4e-6, "J", "999 µJ"),
    (1.0, "s", "1 s"),
    (0.5, "s", "500 ms"),
    (12e6, "Hz", "12 MHz"),
    (0.9e-12, "J", "900 fJ"),
])
def test_format_si_picks_the_prefix_per_value(value, unit, text):
    assert format_si(value, unit) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None])
def test_format_si_writes_no_number_for_what_is_not_one(value):
    assert format_si(value, "J") == "— J"


def test_beyond_the_prefixes_the_exponent_is_kept():
    assert format_si(5e15, "W") == "5.00e+03 TW"
    assert format_si(2e-18, "J") == "0.002 fJ"


def test_energy_in_picojoules_reads_as_joules():
    # the ledger counts pJ; 2.54e3 µJ was the example of a figure nobody reads
    assert format_energy_pj(2.54e9) == "2.54 mJ"
    assert format_energy_pj(251_000.0) == "251 nJ"
    assert format_energy_pj(0.0) == "0 J"
