"""JSON as RFC 8259 has it, read from and written for people and other programs.

Python's ``json`` accepts ``NaN`` and ``Infinity`` (not JSON), raises ``ValueError`` on an
integer of more than 4300 digits and ``RecursionError`` on deep nesting. Every file a user gives
us is read through :func:`parse_json`, so each of those is one clear error naming the file;
everything we print or write goes through :func:`dumps`, so no other program chokes on it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from workbench.core.model.errors import WorkbenchError


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; write a finite number or null")


def parse_json(text: str | bytes, *, where: str,
               error: type[WorkbenchError] = WorkbenchError) -> Any:
    """``json.loads`` that raises ``error`` (naming ``where``) for anything that is not
    plain JSON: bad syntax, NaN/Infinity, an integer too long to convert, deep nesting."""
    if isinstance(text, bytes):
        # strictly UTF-8: json.loads would guess UTF-16 from a byte-order mark and read garbage
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"not UTF-8 text (bad byte at offset {exc.start}); the file must be "
                        "UTF-8 JSON", where=where) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); the "
                    "file may be truncated or hand-edited", where=where) from None
    except RecursionError:
        raise error("nested too deeply to read (a damaged file?)", where=where) from None
    except ValueError as exc:  # NaN/Infinity, or an integer of thousands of digits
        raise error(f"not plain JSON: {exc}", where=where) from None


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool); None for anything else,
    so a NaN or a string in a report never reaches a figure on screen."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that never writes ``NaN`` or ``Infinity`` tokens (they become null)."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:  # a non-finite float somewhere: only then pay for the copy
        return json.dumps(finite(value), allow_nan=False, **options)
