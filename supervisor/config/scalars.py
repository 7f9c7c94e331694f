"""Values of plain (unquoted) YAML scalars: YAML 1.2's core schema without its surprises.

- `null`, `Null`, `NULL`, `~` and the empty value are null; `true`/`false` (also `True`, `TRUE`, ...) are
  booleans; decimal integers without leading zeros, `0o17` and `0x1f` are integers; numbers with a dot or an
  exponent, `.inf` and `.nan` are floats;
- everything else (`no`, `yes`, `on`, `off`, `1:30`, `0600`, `1_000`, `2024-01-01`) stays a string, where
  PyYAML's YAML 1.1 rules would make booleans, the integer 90, octal 384 or a date of them.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Longer integers are refused: no setting needs them, and Python refuses to convert beyond 4,300 digits.
MAX_INTEGER_DIGITS = 100


class ScalarError(ValueError):
    """A plain scalar that looks like a value of some type but cannot be one."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"expected {expected}, got {found}")
        self.expected = expected
        self.found = found


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DEC_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_OCT_INT = re.compile(r"0o[0-7]+")
_HEX_INT = re.compile(r"0x[0-9a-fA-F]+")
# A dot or an exponent is required: "0600" is not a number here (YAML 1.1 read it as octal 384).
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+")
_SPECIAL_FLOATS = {
    ".inf": math.inf,
    ".Inf": math.inf,
    ".INF": math.inf,
    "+.inf": math.inf,
    "+.Inf": math.inf,
    "+.INF": math.inf,
    "-.inf": -math.inf,
    "-.Inf": -math.inf,
    "-.INF": -math.inf,
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
}


def resolve_plain(text: str) -> Any:  # noqa: PLR0911 - one rule per kind of scalar
    """The value of an unquoted scalar under the rules in the module docstring; ScalarError for an integer
    too long to be one."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    integer = _DEC_INT.fullmatch(text) or _OCT_INT.fullmatch(text) or _HEX_INT.fullmatch(text)
    if integer and len(text) > MAX_INTEGER_DIGITS:
        raise ScalarError(f"an integer of at most {MAX_INTEGER_DIGITS} digits", f"{len(text)} characters")
    if _DEC_INT.fullmatch(text):
        return int(text)
    if _OCT_INT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX_INT.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    return text
