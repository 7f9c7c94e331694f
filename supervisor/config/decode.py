"""Turn the plain data of a fleet.yaml into a `FleetSpec`, with every msgspec error mapped onto the file.

msgspec stops at the first problem and reports only a path (`$.nodes[1].restart`). To report all problems,
each venue and each node is decoded on its own, and after each error the offending entry is dropped and the
decode retried (a bounded number of times). Errors caused only by such a drop (a required key that was
dropped) are not reported.
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from supervisor.config.describe import (
    DURATION_RULE,
    allows_null,
    describe,
    known_keys,
    members,
    show,
    type_at,
)
from supervisor.config.duration import parse_duration
from supervisor.config.errors import ConfigError, FieldPath, quote
from supervisor.config.marks import Document
from supervisor.config.schema import Duration, FleetSpec, NodeSpec, VenueSpec

# Per decoded unit (the top level, one venue, one node); more are rarely useful and cost a retry each.
MAX_ERRORS_PER_UNIT = 20

_MESSAGE = re.compile(r"^(?P<text>.*) - at `\$(?P<path>.*)`$", re.DOTALL)
_PATH_PART = re.compile(r"\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>\d+)\]|(?P<any>\[\.\.\.\])")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*)`$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>.*)`$", re.DOTALL)
# Stands for msgspec's `[...]` (a key of a dict it does not name) until the key is found.
_ANY_KEY = object()
_OFF_WORDS = frozenset({"off", "no", "none", "false", "disabled", "disable"})


def dec_hook(target: type, value: Any) -> Any:
    if target is Duration:
        if isinstance(value, str):
            return parse_duration(value)
        raise ValueError(f"expected {DURATION_RULE}")
    raise NotImplementedError(f"no decoder for {target!r}")


def decode_fleet(doc: Document) -> tuple[FleetSpec | None, list[ConfigError]]:
    """Decode the (defaults-merged) document; the spec when there is no error, else all errors found."""
    data = doc.data
    if not isinstance(data, dict):
        found = "an empty file" if data is None else show(data)
        return None, [doc.error((), 'a mapping with at least the key "fleet"', found)]
    errors: list[ConfigError] = []
    top = {k: v for k, v in data.items() if not _split_out(k, v)}
    errors += _decode_unit(doc, top, (), FleetSpec)
    if isinstance(data.get("venues"), dict):
        for name, venue in data["venues"].items():
            errors += _decode_unit(doc, venue, ("venues", name), VenueSpec)
    if isinstance(data.get("nodes"), list):
        for index, node in enumerate(data["nodes"]):
            errors += _decode_unit(doc, node, ("nodes", index), NodeSpec)
    if errors:
        return None, errors
    try:
        return msgspec.convert(data, FleetSpec, dec_hook=dec_hook), []
    except msgspec.ValidationError:
        # Not expected once every part decoded on its own; if it happens, report it like any other.
        return None, _decode_unit(doc, data, (), FleetSpec)


def _split_out(key: str, value: Any) -> bool:
    """Whether a top-level entry is decoded on its own, entry by entry."""
    return (key == "venues" and isinstance(value, dict)) or (key == "nodes" and isinstance(value, list))


def _decode_unit(doc: Document, data: Any, base: FieldPath, target: type) -> list[ConfigError]:
    work = copy.deepcopy(data)
    errors: list[ConfigError] = []
    dropped: set[FieldPath] = set()
    for _ in range(MAX_ERRORS_PER_UNIT):
        try:
            msgspec.convert(work, target, dec_hook=dec_hook)
            return errors
        except msgspec.ValidationError as exc:
            text, raw_path = _split_message(str(exc))
            path = _find_keys(work, raw_path, target, text)
            missing = _MISSING.match(text)
            if missing and (*path, missing["name"]) in dropped:
                return errors  # a consequence of an earlier drop, not a problem of its own
            errors.append(_translate(doc, text, base, path, work))
            unknown = _UNKNOWN.match(text)
            # Drop the unknown key, the bad value, or the mapping that lacks a required key; then retry.
            drop = (*path, unknown["name"]) if unknown else _droppable(path)
            if not drop or not _delete(work, drop):
                return errors
            dropped.add(drop)
    return errors


def _split_message(message: str) -> tuple[str, list[object]]:
    match = _MESSAGE.match(message)
    if match is None:
        return message, []
    parts: list[object] = []
    for part in _PATH_PART.finditer(match["path"]):
        if part["field"] is not None:
            parts.append(part["field"])
        elif part["index"] is not None:
            parts.append(int(part["index"]))
        else:
            parts.append(_ANY_KEY)
    return match["text"], parts


def _find_keys(work: Any, raw: list[object], target: type, text: str) -> FieldPath:
    """Replace msgspec's `[...]` placeholders by the dict key whose value fails the same way."""
    path: list[str | int] = []
    for part in raw:
        if part is _ANY_KEY:
            container = _get(work, tuple(path))
            key = _failing_key(work, tuple(path), container, target, text)
            if key is None:
                break
            path.append(key)
        else:
            assert isinstance(part, str | int)
            path.append(part)
    return tuple(path)


def _failing_key(work: Any, at: FieldPath, container: Any, target: type, text: str) -> str | None:
    if not isinstance(container, dict):
        return None
    for key in container:
        trial = copy.deepcopy(work)
        _set(trial, at, {key: container[key]})
        try:
            msgspec.convert(trial, target, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            if _split_message(str(exc))[0] == text:
                return str(key)
    return None


def _translate(doc: Document, text: str, base: FieldPath, path: FieldPath, work: Any) -> ConfigError:
    unknown = _UNKNOWN.match(text)
    if unknown:
        name = unknown["name"]
        return doc.error(
            (*base, *path, name), "a known key", quote(name), _suggest(name, base + path), at_key=True
        )
    missing = _MISSING.match(text)
    if missing:
        full = (*base, *path, missing["name"])
        return doc.error(full, describe(type_at(full)), "nothing (this key is required)")
    full = base + path
    expected_type = type_at(full)
    value = _get(work, path)
    return doc.error(full, describe(expected_type), show(value), _value_hint(expected_type, value))


def _too_long(text: str) -> bool:
    """A well-formed duration over the limit (as opposed to one that does not parse)."""
    try:
        parse_duration(text)
    except ValueError as exc:
        return "longer than a year" in str(exc)
    return False


def _suggest(name: str, parent: FieldPath) -> str | None:
    keys = known_keys(parent)
    if not keys:
        return None
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    if close:
        return f"did you mean {quote(close[0])}?"
    return "known keys: " + ", ".join(keys)


def _value_hint(expected: mi.Type | None, value: Any) -> str | None:  # noqa: PLR0911 - one hint per case
    kinds = members(expected)
    if isinstance(value, str):
        literal = next((m for m in kinds if isinstance(m, mi.LiteralType)), None)
        if literal is not None:
            close = difflib.get_close_matches(value, [str(v) for v in literal.values], n=1, cutoff=0.6)
            return f"did you mean {quote(close[0])}?" if close else None
        if any(isinstance(m, mi.IntType) for m in kinds) and re.fullmatch(r"0[0-7]+", value):
            return f"write 0o{value[1:]} for an octal number (a leading 0 does not make one)"
        if allows_null(expected) and value.lower() in _OFF_WORDS:
            return "write null to turn it off"
        if any(isinstance(m, mi.CustomType) and m.cls is Duration for m in kinds) and _too_long(value):
            return "at most a year (365 days)"
        return None
    if value is False and allows_null(expected):
        return "write null to turn it off"
    if any(isinstance(m, mi.CustomType) and m.cls is Duration for m in kinds) and isinstance(
        value, int | float
    ):
        return f"add a unit, e.g. {quote(f'{value}s')}"
    if any(isinstance(m, mi.StrType) for m in kinds) and isinstance(value, bool | int | float):
        return f"quote it if it is meant as text: {quote(show(value))}"
    return None


def _droppable(path: FieldPath) -> FieldPath:
    """The nearest entry of a mapping at or above `path` (list items are not dropped: indexes would shift)."""
    for end in range(len(path), 0, -1):
        if isinstance(path[end - 1], str):
            return path[:end]
    return ()


def _get(data: Any, path: FieldPath) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _set(data: Any, path: FieldPath, value: Any) -> None:
    parent = _get(data, path[:-1])
    if path and isinstance(parent, dict | list):
        parent[path[-1]] = value  # type: ignore[index]


def _delete(data: Any, path: FieldPath) -> bool:
    parent = _get(data, path[:-1])
    if isinstance(parent, dict) and path[-1] in parent:
        del parent[path[-1]]
        return True
    return False
