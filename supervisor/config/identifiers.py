"""Rules for identifiers, checked without importing nautilus_trader.

A trader_id that nautilus rejects does not raise an exception: `TraderId(...)` aborts the node process with a
Rust panic. The rule below is nautilus_trader 1.231's (`TraderId::new_checked` in the Rust core, reached from
`nautilus_trader.model.identifiers.TraderId`): a non-empty ASCII string, not only whitespace, containing a
`-`, with non-empty text on both sides of the last `-`. The fleet asks for more on top, because a trader_id
also becomes part of MQTT topics, Redis keys and metric labels: only letters, digits, `_`, `.` and `-`.
Each function returns None when the value is fine, else the reason, phrased to follow "expected ...".
"""

from __future__ import annotations

import re

TRADER_ID_RULE = 'a trader id "NAME-TAG" like "TRADER-001"'
_FLEET_TRADER_ID = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def nautilus_trader_id_problem(value: str) -> str | None:  # noqa: PLR0911 - one reason per rule
    """Why nautilus_trader 1.231 would reject `value` as a TraderId (None if it accepts it)."""
    if not value:
        return "it is empty"
    if not value.isascii():
        return "it has non-ASCII characters"
    if value.isspace():
        return "it is only whitespace"
    if "-" not in value:
        return 'it has no "-" between name and tag'
    name, tag = value.rsplit("-", 1)
    if not name:
        return 'the name before the last "-" is empty'
    if not tag:
        return 'the tag after the last "-" is empty'
    return None


def trader_id_problem(value: str) -> str | None:
    """Why the fleet rejects `value` as a trader_id: nautilus' rule, then the fleet's character set."""
    problem = nautilus_trader_id_problem(value)
    if problem is not None:
        return problem + " (nautilus would abort the node)"
    if not _FLEET_TRADER_ID.fullmatch(value):
        return (
            'it has characters other than letters, digits, "_", "." and "-" (it is used in topics and keys)'
        )
    return None


def instrument_id_problem(value: str) -> str | None:
    """Why `value` is not a nautilus InstrumentId string "SYMBOL.VENUE" (like "BTCUSDT-PERP.BINANCE")."""
    if "." not in value:
        return 'it has no "." between symbol and venue'
    symbol, venue = value.rsplit(".", 1)
    if not symbol.strip():
        return "the symbol is empty"
    if not venue.strip():
        return "the venue is empty"
    return None


def is_env_name(value: str) -> bool:
    return _ENV_NAME.fullmatch(value) is not None


def is_import_path(value: str) -> bool:
    """ "package.module:Name" """
    return _IMPORT_PATH.fullmatch(value) is not None


HOST_RULE = 'a host name or IP address like "broker.example.com" or "127.0.0.1"'
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NUMBER_WITH_UNIT = re.compile(r"[0-9][0-9.]*(ms|h|m|s)?")


def host_problem(value: str) -> str | None:
    """Why `value` is not a host to connect to (None if it is): an IP address, or DNS labels of letters,
    digits, `-` (and `_`, which container networks use). A name whose last label is a number is refused
    (RFC 3696): "1883" or "30s" in a host field is a value typed into the wrong line."""
    import ipaddress

    try:
        ipaddress.ip_address(value.strip("[]") if value.startswith("[") else value)
    except ValueError:
        pass
    else:
        return None
    if not value or len(value) > 253:
        return "it is empty" if not value else "it is longer than 253 characters"
    labels = value.removesuffix(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return "it has characters a host name cannot have"
    if _NUMBER_WITH_UNIT.fullmatch(labels[-1]):
        return "it looks like a number or a duration, not a host"
    return None
