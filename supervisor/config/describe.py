"""Words for what a field of the schema expects, and the schema's type at a field path.

Both come from `msgspec.inspect`, so error messages (and the JSON Schema) follow the structs in `schema.py`
without a second description to keep in sync.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import msgspec.inspect as mi

from supervisor.config.duration import EXAMPLE
from supervisor.config.errors import FieldPath, quote
from supervisor.config.schema import (
    HOST_ID_PATTERN,
    NODE_NAME_PATTERN,
    RATE_GROUP_PATTERN,
    VENUE_NAME_PATTERN,
    Duration,
    FleetSpec,
)

NAME_RULE = 'a name of 1 to 48 lowercase letters, digits, "_" or "-", starting with a letter or digit'
RATE_GROUP_RULE = (
    'a rate group name of 1 to 200 letters, digits or "._:@/[]-", starting with a letter or digit, '
    'like "binance-nat-1"'
)
HOST_ID_RULE = (
    'a host id of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, like "trading-1"'
)
DURATION_RULE = f"a duration like {quote(EXAMPLE)}"
_PATTERNS = {
    NODE_NAME_PATTERN: NAME_RULE,
    VENUE_NAME_PATTERN: NAME_RULE,
    RATE_GROUP_PATTERN: RATE_GROUP_RULE,
    HOST_ID_PATTERN: HOST_ID_RULE,
}


@functools.cache
def root_type() -> mi.Type:
    return mi.type_info(FleetSpec)


def type_at(path: FieldPath, root: mi.Type | None = None) -> mi.Type | None:
    """The schema's type for the value at `path`, or None where the schema has no such field."""
    current: mi.Type | None = root_type() if root is None else root
    for part in path:
        current = _step(current, part)
        if current is None:
            return None
    return current


def _step(current: mi.Type | None, part: str | int) -> mi.Type | None:  # noqa: PLR0911 - one per kind
    if isinstance(current, mi.UnionType):
        for member in current.types:
            found = _step(member, part)
            if found is not None:
                return found
        return None
    if isinstance(current, mi.StructType) and isinstance(part, str):
        return next((f.type for f in current.fields if f.encode_name == part), None)
    if isinstance(current, mi.DictType) and isinstance(part, str):
        return current.value_type
    if isinstance(current, mi.ListType) and isinstance(part, int):
        return current.item_type
    if isinstance(current, mi.AnyType):
        return current
    return None


def known_keys(path: FieldPath) -> list[str]:
    """The keys a mapping at `path` may have (empty when any key is allowed or it is not a struct)."""
    struct = _struct(type_at(path))
    return [] if struct is None else [f.encode_name for f in struct.fields]


def _struct(t: mi.Type | None) -> mi.StructType | None:
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.UnionType):
        return next((m for m in t.types if isinstance(m, mi.StructType)), None)
    return None


def allows_null(t: mi.Type | None) -> bool:
    return isinstance(t, mi.NoneType) or (
        isinstance(t, mi.UnionType) and any(isinstance(m, mi.NoneType) for m in t.types)
    )


def members(t: mi.Type | None) -> tuple[mi.Type, ...]:
    if t is None:
        return ()
    return t.types if isinstance(t, mi.UnionType) else (t,)


def describe(t: mi.Type | None) -> str:
    """`IntType(ge=1, le=65535)` -> "an integer from 1 to 65535", and so on."""
    if t is None:
        return "nothing here"
    if isinstance(t, mi.UnionType):
        parts = [describe(m) for m in t.types if not isinstance(m, mi.NoneType)]
        if allows_null(t):
            parts.append("null")
        return " or ".join(parts)
    return _describe_one(t)


def _describe_one(t: mi.Type) -> str:  # noqa: PLR0911 - one branch per kind of type
    if isinstance(t, mi.StrType):
        return _PATTERNS.get(t.pattern or "", f"a string matching {t.pattern}") if t.pattern else "a string"
    if isinstance(t, mi.IntType):
        return "an integer" + _bounds(t)
    if isinstance(t, mi.FloatType):
        return "a number"
    if isinstance(t, mi.BoolType):
        return "true or false"
    if isinstance(t, mi.CustomType) and t.cls is Duration:
        return DURATION_RULE
    if isinstance(t, mi.LiteralType):
        values = [quote(v) if isinstance(v, str) else str(v) for v in t.values]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if isinstance(t, mi.StructType | mi.DictType):
        return "a mapping"
    if isinstance(t, mi.ListType):
        item = t.item_type
        return "a list of strings" if isinstance(item, mi.StrType) else "a list"
    if isinstance(t, mi.NoneType):
        return "null"
    if isinstance(t, mi.AnyType):
        return "any value"
    return str(t)


def _bounds(t: mi.IntType) -> str:
    low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
    high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def show(value: Any) -> str:  # noqa: PLR0911 - one per kind of value
    """A value from the file as messages show it: strings quoted, YAML spellings for the rest."""
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
