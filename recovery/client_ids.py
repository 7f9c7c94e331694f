"""Deterministic client order ids for protective orders (pure).

A protective order's id is derived from who owns the position (trader, strategy, instrument), what kind of
order it is (stop-loss or take-profit) and a generation number:

    SL-BTCUSDT-PERP-k3j9qa-g2
    ^^ ^^^^^^^^^^^^ ^^^^^^ ^^
    kind  symbol    owner  generation

The same position, kind and generation always give the same id, so a retry after a crash sends the id the
venue already has (Binance refuses a duplicate client id among open orders) instead of doubling the stop.
The owner digest tells our orders apart from another trader's or strategy's on the same account, and lets a
restarted node recognise its own orders for an instrument it no longer holds (orphans to cancel).

Binance accepts `^[.A-Z:/a-z0-9_-]{1,36}$`. nautilus accepts more (37 characters, spaces) and aborts the whole
process with a Rust panic on a non-ASCII id, so every id is validated here before a `ClientOrderId` is built.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from dataclasses import dataclass

MAX_LENGTH = 36
_VALID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
_SYMBOL_UNSAFE = re.compile(r"[^.A-Z:/a-z0-9_-]")
_DIGEST_LENGTH = 6
_MAX_GENERATION = 999_999
_PROTECTIVE = re.compile(r"(SL|TP)-(.*)-([a-z2-7]{6})-g([1-9][0-9]{0,5})")


class InvalidClientOrderId(ValueError):
    """A client order id the venue (or nautilus) would not accept."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid client order id {value!r}: {reason}")
        self.value = value
        self.reason = reason


class ProtectiveKind(enum.StrEnum):
    STOP_LOSS = "SL"
    TAKE_PROFIT = "TP"


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose protective orders these are: a strategy of a trader."""

    trader_id: str
    strategy_id: str


@dataclass(frozen=True, slots=True)
class ProtectiveId:
    """A parsed protective client order id."""

    kind: ProtectiveKind
    symbol: str
    digest: str
    generation: int


def validate_client_order_id(value: str) -> str:
    """Return `value` if Binance and nautilus both accept it as a client order id, else raise."""
    if not value:
        raise InvalidClientOrderId(value, "empty")
    if len(value) > MAX_LENGTH:
        raise InvalidClientOrderId(value, f"{len(value)} characters, at most {MAX_LENGTH}")
    if not _VALID.fullmatch(value):
        bad = sorted({c for c in value if not _VALID.fullmatch(c)})
        raise InvalidClientOrderId(value, f"characters outside [.A-Z:/a-z0-9_-]: {''.join(bad)!r}")
    return value


def owner_digest(owner: Owner, instrument_id: str) -> str:
    """Six lowercase base32 characters naming (trader, strategy, instrument)."""
    material = f"{owner.trader_id}\x1f{owner.strategy_id}\x1f{instrument_id}".encode()
    digest = hashlib.sha256(material).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_DIGEST_LENGTH]


def protective_client_order_id(
    owner: Owner, instrument_id: str, kind: ProtectiveKind, generation: int
) -> str:
    """The client order id of a protective order; validated, at most 36 characters."""
    if not 1 <= generation <= _MAX_GENERATION:
        raise ValueError(f"generation {generation} outside 1..{_MAX_GENERATION}")
    digest = owner_digest(owner, instrument_id)
    suffix = f"-{digest}-g{generation}"
    room = MAX_LENGTH - len(kind.value) - 1 - len(suffix)
    # The symbol is for people reading the venue's order list; identity is in the digest, so a long or
    # non-ASCII symbol is made safe and shortened rather than refused.
    symbol = _SYMBOL_UNSAFE.sub("_", _symbol_of(instrument_id))[:room]
    return validate_client_order_id(f"{kind.value}-{symbol}{suffix}")


def parse_protective_id(value: str) -> ProtectiveId | None:
    """The parts of a protective id, or None for any other client order id."""
    match = _PROTECTIVE.fullmatch(value)
    if match is None:
        return None
    kind, symbol, digest, generation = match.groups()
    return ProtectiveId(ProtectiveKind(kind), symbol, digest, int(generation))


def owned_protective_id(value: str, owner: Owner, instrument_id: str) -> ProtectiveId | None:
    """The parsed id if `value` is one of `owner`'s protective orders for `instrument_id`, else None."""
    parsed = parse_protective_id(value)
    if parsed is None or parsed.digest != owner_digest(owner, instrument_id):
        return None
    return parsed


def _symbol_of(instrument_id: str) -> str:
    # "BTCUSDT-PERP.BINANCE" -> "BTCUSDT-PERP" (the venue suffix is the same for every order of the account).
    symbol, _, _venue = instrument_id.rpartition(".")
    return symbol or instrument_id
