"""The notify protocol: encoding, and a real datagram round trip with sender credentials."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from supervisor import notify
from supervisor.notify_server import NotifyEndpoint


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (b"READY=1\n", {"READY": "1"}),
        (b"READY=1\nSTATUS=a=b c\n", {"READY": "1", "STATUS": "a=b c"}),
        (b"garbage\nWATCHDOG=1", {"WATCHDOG": "1"}),
        (b"=x\n", {}),
    ],
)
def test_decode(data: bytes, fields: dict[str, str]) -> None:
    assert notify.decode(data) == fields


def test_encode_refuses_newlines() -> None:
    with pytest.raises(ValueError, match="newline"):
        notify.encode({"STATUS": "two\nlines"})


def test_oversized_detail_is_replaced_by_a_marker() -> None:
    detail = {"blob": "x" * (notify.MAX_DETAIL_BYTES + 10)}
    encoded = json.loads(notify.encode_detail(detail))
    assert encoded["truncated"] is True and encoded["keys"] == ["blob"]


def test_notifier_without_socket_is_a_noop() -> None:
    notifier = notify.Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False


def test_watchdog_interval_is_half_the_timeout() -> None:
    notifier = notify.Notifier(environ={"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000"})
    assert notifier.watchdog_interval == 2.0
    other = notify.Notifier(environ={"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None


async def test_round_trip_carries_sender_pid(short_dir: Path) -> None:
    received: asyncio.Queue[tuple[dict[str, str], int]] = asyncio.Queue()
    endpoint = NotifyEndpoint(short_dir / "s", lambda fields, pid: received.put_nowait((fields, pid)))
    endpoint.open()
    try:
        notifier = notify.Notifier(str(short_dir / "s"))
        assert notifier.phase("reconciled", {"venue": "binance"}, status="reconciling")
        fields, pid = await asyncio.wait_for(received.get(), 5)
        assert pid == os.getpid()
        assert fields["X_PHASE"] == "reconciled"
        assert json.loads(fields["X_DETAIL"]) == {"venue": "binance"}
        assert int(fields["X_MONO"]) > 0 and int(fields["X_TS"]) > 0
        notifier.close()
    finally:
        endpoint.close()
    assert not (short_dir / "s").exists()


async def test_ready_said_while_no_supervisor_listened_rides_on_the_next_ping(short_dir: Path) -> None:
    """A supervisor that adopts a recovering node must still learn its READY=1, sent during the gap."""
    path = short_dir / "s"
    notifier = notify.Notifier(str(path))
    try:
        assert not notifier.ready(status="ready")  # nobody bound the socket (the daemon is being replaced)
        assert not notifier.phase("warmed", {"bars": 3})
        received: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        endpoint = NotifyEndpoint(path, lambda fields, pid: received.put_nowait(fields))
        endpoint.open()
        try:
            assert notifier.watchdog()
            fields = await asyncio.wait_for(received.get(), 5)
            assert fields["READY"] == "1" and fields["WATCHDOG"] == "1"
            assert "X_DETAIL" not in fields  # a lost phase's detail is not repeated
            assert notifier.watchdog()
            assert await asyncio.wait_for(received.get(), 5) == {"WATCHDOG": "1"}  # once, not forever
        finally:
            endpoint.close()
    finally:
        notifier.close()
