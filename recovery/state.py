"""Declared strategy state: a versioned record, encoded as JSON, decoded strictly.

A strategy declares its state as a frozen `msgspec.Struct` whose fields all have defaults (the defaults are
the fresh state). The record written to Redis is

    {"format": 1, "type": "pkg.mod:EmaState", "version": 1, "seq": 17,
     "fields": {...the struct...}, "delivered": ["BTCUSDT-PERP.BINANCE:123", ...]}

- `version` is the strategy's declared `state_version`. A record written by an older version goes through the
  strategy's `migrate_state`; one written by a newer version is refused (a rollback must not reinterpret it).
- `seq` counts writes, so the report and the tests can tell which write came back.
- `delivered` holds the missed fills already handed to the strategy (`recovery.missed`): kept in the same
  record so the state a fill produced and the fact that it was delivered are written by one SET.

Decoding never falls back to defaults: a record that is not JSON, has another format, a newer version, a field
of the wrong type or a field the struct does not declare raises `StateDecodeError` naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from recovery.strategy_errors import StateDecodeError

STATE_FORMAT = 1

Migration = Callable[[int, dict[str, Any]], Mapping[str, Any]]


class NoState(msgspec.Struct, frozen=True, kw_only=True):
    """The state of a strategy that declares none."""


class _Record(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    format: int
    type: str
    version: int
    seq: int
    fields: msgspec.Raw
    delivered: list[str] = []


@dataclass(frozen=True, slots=True)
class LoadedState[S: msgspec.Struct]:
    value: S
    seq: int
    version: int
    delivered: frozenset[str]
    migrated_from: int | None = None


class StateCodec[S: msgspec.Struct]:
    """Encodes and decodes one strategy's declared state type."""

    def __init__(self, state_type: type[S], *, version: int = 1, migrate: Migration | None = None) -> None:
        check_state_type(state_type)
        if version < 1:
            raise ValueError(f"state_version must be >= 1, got {version}")
        self.state_type = state_type
        self.version = version
        self._migrate = migrate
        self._type_name = f"{state_type.__module__}:{state_type.__qualname__}"
        self._field_names = frozenset(f.encode_name for f in msgspec.structs.fields(state_type))

    def fresh(self) -> S:
        return self.state_type()

    def encode(self, value: S, *, seq: int, delivered: Iterable[str] = ()) -> bytes:
        if not isinstance(value, self.state_type):
            raise TypeError(f"state must be a {self._type_name}, got {type(value).__name__}")
        record = _Record(
            format=STATE_FORMAT,
            type=self._type_name,
            version=self.version,
            seq=seq,
            fields=msgspec.Raw(msgspec.json.encode(value)),
            delivered=sorted(delivered),
        )
        return msgspec.json.encode(record)

    def decode(self, key: str, data: bytes) -> LoadedState[S]:
        """Decode the record stored under `key` (named in every error)."""
        try:
            record = msgspec.json.decode(data, type=_Record)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StateDecodeError(key, f"not a state record: {exc}") from exc
        if record.format != STATE_FORMAT:
            raise StateDecodeError(key, f"record format {record.format}, this code reads {STATE_FORMAT}")
        if record.version > self.version:
            raise StateDecodeError(
                key, f"written by state_version {record.version}, this strategy declares {self.version}"
            )
        try:
            raw_fields = msgspec.json.decode(record.fields, type=dict[str, Any])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StateDecodeError(key, f"fields are not an object: {exc}") from exc
        migrated_from = None
        if record.version < self.version:
            raw_fields = self._run_migration(key, record.version, raw_fields)
            migrated_from = record.version
        unknown = sorted(set(raw_fields) - self._field_names)
        if unknown:
            raise StateDecodeError(
                key,
                f"stored field(s) {', '.join(unknown)} not declared by {self._type_name} "
                "(bump state_version and migrate instead of dropping them)",
            )
        try:
            # Through JSON again (not msgspec.convert) so that types decode exactly as when they were written.
            value = msgspec.json.decode(msgspec.json.encode(raw_fields), type=self.state_type)
        except msgspec.ValidationError as exc:
            raise StateDecodeError(key, str(exc)) from exc
        return LoadedState(value, record.seq, record.version, frozenset(record.delivered), migrated_from)

    def _run_migration(self, key: str, from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        if self._migrate is None:
            raise StateDecodeError(
                key, f"written by state_version {from_version}, declared {self.version}, and no migrate_state"
            )
        try:
            return dict(self._migrate(from_version, fields))
        except StateDecodeError:
            raise
        except Exception as exc:
            raise StateDecodeError(key, f"migrate_state({from_version}) failed: {exc!r}") from exc


def check_state_type(state_type: type[Any]) -> None:
    """A state type must be a frozen msgspec.Struct whose defaults make the fresh state."""
    if not (isinstance(state_type, type) and issubclass(state_type, msgspec.Struct)):
        raise TypeError(f"state_type must be a msgspec.Struct subclass, got {state_type!r}")
    if not state_type.__struct_config__.frozen:
        raise TypeError(
            f"{state_type.__qualname__} must be frozen (frozen=True): state changes go through set_state(), "
            "which persists them"
        )
    try:
        fresh = state_type()
    except TypeError as exc:
        raise TypeError(
            f"every field of {state_type.__qualname__} needs a default (the fresh state): {exc}"
        ) from exc
    msgspec.json.encode(fresh)
