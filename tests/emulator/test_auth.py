"""Table tests of signature and timestamp rules."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from emulator import auth
from emulator.errors import VenueError

SECRET = "s3cret"


def _sig(payload: str) -> str:
    return hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("query", "body", "payload", "signature"),
    [
        (
            "symbol=BTCUSDT&timestamp=1&signature=abc",
            "",
            "symbol=BTCUSDT&timestamp=1",
            "abc",
        ),  # nautilus: query
        ("", "symbol=BTCUSDT&timestamp=1&signature=abc", "symbol=BTCUSDT&timestamp=1", "abc"),  # ccxt: body
        (
            "symbol=BTCUSDT",
            "timestamp=1&signature=abc",
            "symbol=BTCUSDTtimestamp=1",
            "abc",
        ),  # mixed: concatenated
        ("signature=abc&timestamp=1", "", "timestamp=1", "abc"),
        ("timestamp=1", "", "timestamp=1", None),
        ("", "", "", None),
    ],
)
def test_signed_payload(query: str, body: str, payload: str, signature: str | None) -> None:
    assert auth.signed_payload(query, body) == (payload, signature)


def test_verify_signature_accepts_the_hmac_and_rejects_anything_else() -> None:
    payload = "symbol=BTCUSDT&timestamp=1700000000000"
    auth.verify_signature(SECRET, payload, _sig(payload))
    auth.verify_signature(SECRET, payload, _sig(payload).upper())
    for bad in (_sig(payload + "x"), "00", _sig(payload)[:-1]):
        with pytest.raises(VenueError) as info:
            auth.verify_signature(SECRET, payload, bad)
        assert (info.value.code, info.value.status) == (-1022, 400)
    with pytest.raises(VenueError) as missing:
        auth.verify_signature(SECRET, payload, None)
    assert missing.value.code == -1102


@pytest.mark.parametrize(
    ("timestamp", "window", "server", "code"),
    [
        ("10000", None, 10000, None),
        ("5000", None, 10000, None),  # exactly recvWindow old (default 5000)
        ("4999", None, 10000, -1021),  # one ms too old
        ("10999", None, 10000, None),  # less than 1000 ms ahead
        ("11000", None, 10000, -1021),  # 1000 ms ahead
        ("1000", "9000", 10000, None),
        ("999", "9000", 10000, -1021),
        ("1", "60001", 10000, -1131),
        (None, None, 10000, -1102),
        ("12ab", None, 10000, -1100),
        ("10000", "x", 10000, -1100),
    ],
)
def test_check_timestamp(timestamp: str | None, window: str | None, server: int, code: int | None) -> None:
    if code is None:
        auth.check_timestamp(timestamp, window, server)
        return
    with pytest.raises(VenueError) as info:
        auth.check_timestamp(timestamp, window, server)
    assert info.value.code == code
    assert info.value.status == 400
