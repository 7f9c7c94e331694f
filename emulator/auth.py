"""Request authentication as Binance does it: HMAC-SHA256 over the exact query string plus body, and a
timestamp that must fall inside `recvWindow` of the server's clock.

Pure functions of their inputs, so every rule is table-tested without a server.
"""

from __future__ import annotations

import hashlib
import hmac

from emulator import errors

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
AHEAD_TOLERANCE_MS = 1000


def split_signature(raw: str) -> tuple[str, str | None]:
    """Remove the `signature=...` component from a raw urlencoded string; return (rest, signature)."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def signed_payload(query_string: str, body: str) -> tuple[str, str | None]:
    """The text the client signed (query then body, concatenated as sent) and the signature it sent."""
    query_rest, query_sig = split_signature(query_string)
    body_rest, body_sig = split_signature(body)
    return query_rest + body_rest, query_sig if query_sig is not None else body_sig


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify_signature(secret: str, payload: str, signature: str | None) -> None:
    if signature is None or signature == "":
        raise errors.mandatory_missing("signature")
    if not hmac.compare_digest(sign(secret, payload), signature.lower()):
        raise errors.bad_signature()


def parse_recv_window(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_RECV_WINDOW_MS
    if not value.isdigit():
        raise errors.illegal_characters("recvWindow", errors.INTEGER_PATTERN)
    window = int(value)
    if window > MAX_RECV_WINDOW_MS:
        raise errors.recv_window_too_large()
    return window


def check_timestamp(timestamp: str | None, recv_window: str | None, server_ms: int) -> None:
    """Binance's rule: accepted when `timestamp < server + 1000` and `server - timestamp <= recvWindow`."""
    if timestamp is None or timestamp == "":
        raise errors.mandatory_missing("timestamp")
    if not timestamp.isdigit():
        raise errors.illegal_characters("timestamp", errors.INTEGER_PATTERN)
    window = parse_recv_window(recv_window)
    sent = int(timestamp)
    if sent >= server_ms + AHEAD_TOLERANCE_MS:
        raise errors.timestamp_ahead()
    if server_ms - sent > window:
        raise errors.timestamp_outside_window()
