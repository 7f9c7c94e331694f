"""The JSON Schema of fleet.yaml, for editors (`fleet schema`).

Built from `msgspec.inspect` rather than `msgspec.json.schema`: the latter encodes field defaults without any
hook, and fails on `Duration` defaults (a float subclass that the file writes as "30s"). Here durations are a
string pattern and their defaults are written the way the file would write them.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import msgspec.inspect as mi

from supervisor.config.builtins import to_builtins
from supervisor.config.describe import root_type
from supervisor.config.duration import DURATION_PATTERN
from supervisor.config.schema import Duration

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def fleet_json_schema() -> dict[str, Any]:
    defs: dict[str, dict[str, Any]] = {}
    top = root_type()
    assert isinstance(top, mi.StructType)
    root = _struct(top, defs)  # inline at the top, so the file's own keys are the schema's properties
    return {
        "$schema": DRAFT,
        "title": "nautilus-fleet fleet.yaml",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def _schema(t: mi.Type, defs: dict[str, dict[str, Any]]) -> dict[str, Any]:  # noqa: PLR0911 - one per kind
    if isinstance(t, mi.StructType):
        name = t.cls.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: structs may refer to themselves
            defs[name] = _struct(t, defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(t, mi.UnionType):
        return {"anyOf": [_schema(m, defs) for m in t.types]}
    if isinstance(t, mi.ListType):
        return {"type": "array", "items": _schema(t.item_type, defs)}
    if isinstance(t, mi.DictType):
        return {"type": "object", "additionalProperties": _schema(t.value_type, defs)}
    if isinstance(t, mi.StrType):
        return {"type": "string"} | ({"pattern": t.pattern} if t.pattern else {})
    if isinstance(t, mi.IntType):
        bounds = {"minimum": t.ge, "maximum": t.le, "exclusiveMinimum": t.gt, "exclusiveMaximum": t.lt}
        return {"type": "integer"} | {k: v for k, v in bounds.items() if v is not None}
    if isinstance(t, mi.BoolType):
        return {"type": "boolean"}
    if isinstance(t, mi.FloatType):
        return {"type": "number"}
    if isinstance(t, mi.NoneType):
        return {"type": "null"}
    if isinstance(t, mi.LiteralType):
        return {"enum": list(t.values)}
    if isinstance(t, mi.CustomType) and t.cls is Duration:
        return {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": 'A duration: "250ms", "30s", "5m", "1h", "1.5s", "1m30s".',
        }
    return {}  # AnyType: anything


def _struct(t: mi.StructType, defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in t.fields:
        prop = _schema(field.type, defs)
        if field.default is not msgspec.NODEFAULT:
            prop = {**prop, "default": _default(field.default)}
        elif field.default_factory is not msgspec.NODEFAULT:
            prop = {**prop, "default": _default(field.default_factory())}
        properties[field.encode_name] = prop
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    required = [f.encode_name for f in t.fields if f.required]
    if required:
        out["required"] = required
    # The class' own docstring only (inspect.getdoc would fall back to the base class').
    doc = t.cls.__doc__
    if doc:
        out["description"] = inspect.cleandoc(doc)
    return out


def _default(value: Any) -> Any:
    return to_builtins(value)
