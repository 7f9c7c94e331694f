"""A bounded log of the requests the venue answered, for tests and drills to inspect (via the admin API)."""

from __future__ import annotations

from collections import deque

import msgspec

MAX_ENTRIES = 20_000


class LogEntry(msgspec.Struct, kw_only=True):
    seq: int
    time: int
    method: str
    path: str
    params: dict[str, str]
    account: str | None
    address: str  # the client address request weight is counted by
    client: str
    status: int
    code: int | None
    weight: int
    duration_us: int
    signed: bool


class RequestLog:
    def __init__(self, maxlen: int = MAX_ENTRIES) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, entry: LogEntry) -> None:
        self._entries.append(entry)

    def since(self, seq: int = 0, path: str | None = None) -> list[LogEntry]:
        return [e for e in self._entries if e.seq > seq and (path is None or e.path == path)]

    def clear(self) -> None:
        self._entries.clear()


def client_name(user_agent: str) -> str:
    """Which client sent a request, from its User-Agent (ccxt and nautilus name themselves)."""
    lowered = user_agent.lower()
    if "nautilus" in lowered:
        return "nautilus"
    if "ccxt" in lowered or "python-requests" in lowered or "aiohttp" in lowered:
        return "ccxt" if "ccxt" in lowered else "python"
    return user_agent[:40]
