"""The declared-state codec: round trip, versioning, and loud errors that name the key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from recovery.state import NoState, StateCodec, check_state_type
from recovery.strategy_errors import StateDecodeError

KEY = "trader-EMA-001:general:recovery:EMACross-001:state"


class EmaState(msgspec.Struct, frozen=True, kw_only=True):
    last_signal: str = "NONE"
    entries: int = 0
    trailing_ref: Decimal | None = None


class EmaStateV2(msgspec.Struct, frozen=True, kw_only=True):
    last_signal: str = "NONE"
    entries: int = 0
    trailing_ref: Decimal | None = None
    cooldown_bars: int = 0


def test_round_trip_keeps_values_seq_and_delivered() -> None:
    codec = StateCodec(EmaState)
    value = EmaState(last_signal="LONG", entries=3, trailing_ref=Decimal("65000.10"))
    data = codec.encode(value, seq=17, delivered={"BTCUSDT-PERP.BINANCE:12", "BTCUSDT-PERP.BINANCE:11"})
    loaded = codec.decode(KEY, data)
    assert loaded.value == value
    assert loaded.value.trailing_ref == Decimal("65000.10")
    assert loaded.seq == 17
    assert loaded.delivered == frozenset({"BTCUSDT-PERP.BINANCE:12", "BTCUSDT-PERP.BINANCE:11"})
    assert loaded.migrated_from is None
    # Readable in redis-cli, not a binary blob.
    assert b'"last_signal":"LONG"' in data


def test_fresh_state_is_the_defaults() -> None:
    assert StateCodec(EmaState).fresh() == EmaState()


def _record(fields: Any, **overrides: Any) -> bytes:
    record: dict[str, Any] = {"format": 1, "type": "x:EmaState", "version": 1, "seq": 1, "fields": fields}
    record.update(overrides)
    return msgspec.json.encode(record)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x93\xa3not json", "not a state record"),
        (b"", "not a state record"),
        (b'{"format": 1}', "not a state record"),
        (_record({"entries": 1}, format=2), "record format 2"),
        (_record({"entries": 1}, version=3), "written by state_version 3"),
        (_record({"entries": "three"}), "Expected `int`, got `str` - at `$.entries`"),
        (_record({"trailing_ref": "abc"}), "$.trailing_ref"),
        (_record({"entries": 1, "legacy_flag": True}), "legacy_flag not declared"),
        (_record([1, 2]), "fields are not an object"),
        (_record({"entries": 1}, surprise=1), "not a state record"),
    ],
)
def test_undecodable_state_is_an_error_naming_the_key(data: bytes, reason: str) -> None:
    with pytest.raises(StateDecodeError) as err:
        StateCodec(EmaState).decode(KEY, data)
    assert err.value.key == KEY
    assert KEY in str(err.value)
    assert reason in str(err.value)
    assert err.value.fatal


def test_older_version_goes_through_migrate_state() -> None:
    old = StateCodec(EmaState, version=1).encode(EmaState(entries=4), seq=9)

    def migrate(from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        assert from_version == 1
        return {**fields, "cooldown_bars": 2}

    loaded = StateCodec(EmaStateV2, version=2, migrate=migrate).decode(KEY, old)
    assert loaded.value == EmaStateV2(entries=4, cooldown_bars=2)
    assert loaded.migrated_from == 1
    assert loaded.seq == 9


def test_older_version_without_migration_is_refused() -> None:
    old = StateCodec(EmaState, version=1).encode(EmaState(entries=4), seq=9)
    with pytest.raises(StateDecodeError, match="no migrate_state"):
        StateCodec(EmaStateV2, version=2).decode(KEY, old)


def test_failing_migration_is_reported_with_the_key() -> None:
    old = StateCodec(EmaState, version=1).encode(EmaState(), seq=1)

    def migrate(from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("gone")

    with pytest.raises(StateDecodeError, match=r"migrate_state\(1\) failed") as err:
        StateCodec(EmaStateV2, version=2, migrate=migrate).decode(KEY, old)
    assert err.value.key == KEY


def test_encode_refuses_another_type() -> None:
    with pytest.raises(TypeError):
        StateCodec(EmaState).encode(EmaStateV2(), seq=1)  # type: ignore[arg-type]


class Mutable(msgspec.Struct):
    x: int = 0


class NoDefault(msgspec.Struct, frozen=True):
    x: int


@pytest.mark.parametrize(
    ("state_type", "message"),
    [(Mutable, "frozen"), (NoDefault, "needs a default"), (dict, "msgspec.Struct")],
)
def test_state_type_rules(state_type: type[Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        check_state_type(state_type)


def test_no_state_is_a_valid_state_type() -> None:
    check_state_type(NoState)
    codec = StateCodec(NoState)
    assert codec.decode(KEY, codec.encode(NoState(), seq=1)).value == NoState()
