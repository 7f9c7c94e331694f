"""Protective client order ids: deterministic, venue-valid, recognisable as ours."""

from __future__ import annotations

import re

import pytest

from recovery.client_ids import (
    MAX_LENGTH,
    InvalidClientOrderId,
    Owner,
    ProtectiveKind,
    owned_protective_id,
    owner_digest,
    parse_protective_id,
    protective_client_order_id,
    validate_client_order_id,
)

OWNER = Owner("EMA-001", "EMACross-001")
BINANCE = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("O-20260101-000000-001-001-1", True),
        ("a" * 36, True),
        ("a" * 37, False),  # nautilus takes 37, Binance does not
        ("", False),
        ("has space", False),
        ("SL-BTC\u00e9-g1", False),  # non-ASCII would abort nautilus with a Rust panic
        ("\u6211\u8e0f\u9a6c\u6765\u4e86USDT", False),
        ("x.y:z/w_v-1", True),
        ("semi;colon", False),
    ],
)
def test_validate_client_order_id(value: str, ok: bool) -> None:
    if ok:
        assert validate_client_order_id(value) == value
    else:
        with pytest.raises(InvalidClientOrderId) as err:
            validate_client_order_id(value)
        assert err.value.value == value


@pytest.mark.parametrize(
    ("instrument", "kind", "generation", "expected_prefix"),
    [
        ("BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1, "SL-BTCUSDT-PERP-"),
        ("BTCUSDT-PERP.BINANCE", ProtectiveKind.TAKE_PROFIT, 2, "TP-BTCUSDT-PERP-"),
        ("1000SHIBUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 999_999, "SL-1000SHIBUSDT-PER"),
        (
            "\u6211\u8e0f\u9a6c\u6765\u4e86USDT-PERP.BINANCE",
            ProtectiveKind.STOP_LOSS,
            3,
            "SL-_____USDT-PERP-",
        ),
        ("VERYLONGSYMBOLNAMEUSDT-PERP.BINANCE", ProtectiveKind.TAKE_PROFIT, 12, "TP-VERYLONGSYMBOLNAME"),
    ],
)
def test_protective_id_shape(
    instrument: str, kind: ProtectiveKind, generation: int, expected_prefix: str
) -> None:
    cid = protective_client_order_id(OWNER, instrument, kind, generation)
    assert BINANCE.fullmatch(cid), cid
    assert len(cid) <= MAX_LENGTH
    assert cid.startswith(expected_prefix)
    assert cid.endswith(f"-{owner_digest(OWNER, instrument)}-g{generation}")
    parsed = parse_protective_id(cid)
    assert parsed is not None
    assert (parsed.kind, parsed.generation) == (kind, generation)
    assert owned_protective_id(cid, OWNER, instrument) == parsed


def test_same_inputs_same_id_and_every_input_matters() -> None:
    base = protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1)
    assert base == protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1)
    variants = {
        protective_client_order_id(
            Owner("EMA-002", "EMACross-001"), "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1
        ),
        protective_client_order_id(
            Owner("EMA-001", "EMACross-002"), "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1
        ),
        protective_client_order_id(OWNER, "ETHUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 1),
        protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.TAKE_PROFIT, 1),
        protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 2),
    }
    assert base not in variants
    assert len(variants) == 5


@pytest.mark.parametrize("generation", [0, -1, 1_000_000])
def test_generation_range(generation: int) -> None:
    with pytest.raises(ValueError, match="generation"):
        protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, generation)


@pytest.mark.parametrize(
    "value",
    [
        "O-20260101-000000-001-001-1",  # nautilus' own ids
        "SL-BTCUSDT-PERP-abcdef-g0",  # generation 0 is never issued
        "SL-BTCUSDT-PERP-ABCDEF-g1",  # digest is lowercase base32
        "XX-BTCUSDT-PERP-abcdef-g1",
        "SL-BTCUSDT-PERP-abcdef-1",
        "8f1b2c3d-0000-4000-8000-000000000000",
    ],
)
def test_other_ids_are_not_protective(value: str) -> None:
    assert parse_protective_id(value) is None


def test_someone_elses_protective_id_is_not_ours() -> None:
    theirs = protective_client_order_id(
        Owner("EMA-009", "EMACross-001"), "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 4
    )
    assert parse_protective_id(theirs) is not None
    assert owned_protective_id(theirs, OWNER, "BTCUSDT-PERP.BINANCE") is None
    ours = protective_client_order_id(OWNER, "BTCUSDT-PERP.BINANCE", ProtectiveKind.STOP_LOSS, 4)
    # The digest binds the id to its instrument too: the same id reported on another instrument is not ours.
    assert owned_protective_id(ours, OWNER, "ETHUSDT-PERP.BINANCE") is None
