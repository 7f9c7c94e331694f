"""Typed access to request parameters, answering malformed input with the venue's error codes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from emulator import errors
from emulator.errors import VenueError

_DECIMAL_RE = re.compile(errors.DECIMAL_PATTERN)
_INTEGER_RE = re.compile(r"^-?[0-9]{1,20}$")
_CLIENT_ID_RE = re.compile(errors.CLIENT_ID_PATTERN)


class Params:
    """Request parameters (query and form body merged) as strings, read through typed accessors."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def as_dict(self) -> dict[str, str]:
        return dict(self._values)

    def has(self, name: str) -> bool:
        return self._values.get(name, "") != ""

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise errors.mandatory_missing(name)
            return None
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _DECIMAL_RE.match(value):
            raise errors.illegal_characters(name, errors.DECIMAL_PATTERN)
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes these
            raise errors.illegal_characters(name, errors.DECIMAL_PATTERN) from exc

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not _INTEGER_RE.match(value):
            raise errors.illegal_characters(name, errors.INTEGER_PATTERN)
        return int(value)

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise errors.invalid_value(name)

    def choice(
        self,
        name: str,
        allowed: frozenset[str],
        *,
        required: bool = False,
        default: str | None = None,
        invalid: Callable[[], VenueError] | None = None,
    ) -> str | None:
        value = self.text(name, required=required)
        if value is None:
            return default
        if value not in allowed:
            raise invalid() if invalid is not None else errors.invalid_value(name)
        return value

    def client_id(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not _CLIENT_ID_RE.match(value):
            raise errors.illegal_characters(name, errors.CLIENT_ID_PATTERN)
        return value

    def limit(self, name: str = "limit", *, default: int, maximum: int) -> int:
        value = self.integer(name)
        if value is None:
            return default
        if value <= 0:
            raise errors.invalid_value(name)
        return min(value, maximum)
