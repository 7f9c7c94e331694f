"""The node <-> supervisor notify protocol: systemd's sd_notify datagrams plus fields of our own.

A message is newline-separated `KEY=VALUE` assignments sent as one datagram to the Unix socket named by
`NOTIFY_SOCKET` (a leading `@` means the abstract namespace). Standard keys: READY, STATUS, WATCHDOG,
STOPPING, EXTEND_TIMEOUT_USEC, MAINPID. Ours, for recovery phases:

- `X_PHASE=<name>`  a recovery phase was reached (cache_loaded, reconciled, orders_restored, ...)
- `X_MONO=<ns>`     CLOCK_MONOTONIC at that moment (comparable across processes on one host)
- `X_TS=<ns>`       wall clock (epoch ns) at that moment
- `X_DETAIL=<json>` details of the phase, at most `MAX_DETAIL_BYTES`
- `X_FATAL=<text>`  do not restart me: quarantine (exit code 78 means the same)

This module is the whole client side and has no dependencies beyond the standard library, so any Python
node can use it; under plain systemd the same calls talk to systemd itself.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

READY = "READY"
STATUS = "STATUS"
WATCHDOG = "WATCHDOG"
STOPPING = "STOPPING"
EXTEND_TIMEOUT_USEC = "EXTEND_TIMEOUT_USEC"
MAINPID = "MAINPID"
X_PHASE = "X_PHASE"
X_MONO = "X_MONO"
X_TS = "X_TS"
X_DETAIL = "X_DETAIL"
X_FATAL = "X_FATAL"

# Exit code meaning "configuration error: do not restart" (sysexits EX_CONFIG); same effect as X_FATAL.
EXIT_FATAL = 78
# Said once, and lost if no supervisor listened at that moment (it was being restarted): sent again with the
# next datagram that gets through, so a supervisor that adopts the node still learns it.
STICKY_FIELDS = (READY, X_FATAL, X_DETAIL)
# The node lost its lease (another host may own its trader_id now): it halted trading and exited. Not
# restarted on this host by the restart policy; the runner waits in standby for the lease instead.
EXIT_LEASE_LOST = 75
# A datagram must fit the receiver's buffer; details beyond this are cut by the sender (and refused by the
# receiver), so a phase report can never grow without bound.
MAX_DETAIL_BYTES = 32 * 1024
MAX_DATAGRAM_BYTES = MAX_DETAIL_BYTES + 4096


def encode(fields: Mapping[str, str]) -> bytes:
    """Encode assignments; values may not contain newlines (JSON details are compact, so they don't)."""
    lines = []
    for key, value in fields.items():
        if "\n" in value or "=" in key or "\n" in key:
            raise ValueError(f"notify field {key!r} may not contain a newline")
        lines.append(f"{key}={value}")
    return ("\n".join(lines) + "\n").encode()


def decode(data: bytes) -> dict[str, str]:
    """Parse a datagram into its assignments; lines without `=` are ignored, as systemd does."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


def _address(path: str) -> str:
    return "\0" + path[1:] if path.startswith("@") else path


class Notifier:
    """Sends notify messages; a no-op when NOTIFY_SOCKET is unset (the node runs without a supervisor)."""

    def __init__(self, socket_path: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # systemd sets WATCHDOG_PID; honour it only when it names us.
        mine = not pid or pid == str(os.getpid())
        self.watchdog_usec = int(usec) if usec.isdigit() and mine else None
        self._sock: socket.socket | None = None
        self._unsent: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._path)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the timeout, as sd_watchdog_enabled(3) recommends."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, fields: Mapping[str, str]) -> bool:
        """Send one datagram. Never raises for a missing or full socket: the node must not die of it.

        READY=1 and X_FATAL= that could not be sent (no supervisor bound the socket just then) ride along with
        the next datagram, e.g. the next watchdog ping."""
        if not self._path:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        merged = {**self._unsent, **fields}
        try:
            self._sock.sendto(encode(merged), _address(self._path))
        except OSError:
            self._unsent = {k: v for k, v in merged.items() if k in STICKY_FIELDS}
            if X_DETAIL in self._unsent and X_FATAL not in self._unsent:
                del self._unsent[X_DETAIL]  # a phase's detail is not worth repeating on its own
            return False
        self._unsent = {}
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = {READY: "1"}
        if status:
            fields[STATUS] = status
        return self.send(fields)

    def status(self, text: str) -> bool:
        return self.send({STATUS: text})

    def watchdog(self) -> bool:
        return self.send({WATCHDOG: "1"})

    def stopping(self) -> bool:
        return self.send({STOPPING: "1"})

    def extend_timeout(self, seconds: float) -> bool:
        return self.send({EXTEND_TIMEOUT_USEC: str(int(seconds * 1e6))})

    def phase(self, name: str, detail: Mapping[str, Any] | None = None, status: str | None = None) -> bool:
        fields = {X_PHASE: name, X_MONO: str(time.monotonic_ns()), X_TS: str(time.time_ns())}
        if detail:
            fields[X_DETAIL] = encode_detail(detail)
        if status:
            fields[STATUS] = status
        return self.send(fields)

    def fatal(self, reason: str, detail: Mapping[str, Any] | None = None) -> bool:
        fields = {X_FATAL: reason.replace("\n", " ")[:1024]}
        if detail:
            fields[X_DETAIL] = encode_detail(detail)
        return self.send(fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def encode_detail(detail: Mapping[str, Any]) -> str:
    """Compact JSON, cut to MAX_DETAIL_BYTES with a marker saying so (still valid JSON)."""
    text = json.dumps(detail, separators=(",", ":"), default=str)
    if len(text.encode()) <= MAX_DETAIL_BYTES:
        return text
    return json.dumps({"truncated": True, "bytes": len(text.encode()), "keys": sorted(detail)[:50]})
