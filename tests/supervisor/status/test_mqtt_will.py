"""The Last Will: `lost` when the supervisor dies, and an old session's late will never has the last word."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from supervisor.status import payloads
from supervisor.status.payloads import SupervisorIdentity, SupervisorState
from tests.supervisor.status.conftest import Broker, Received, RunningPublisher, retained_now, watching

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
PREFIX = "nautilus-fleet/test"
STATE_TOPIC = f"{PREFIX}/supervisors/host-a/state"


def _state(m: Received) -> tuple[str, int] | None:
    if not m.payload:
        return None
    decoded = m.json()
    return decoded["state"], decoded["session"]


async def test_will_lost_arrives_when_the_supervisor_process_is_killed(
    broker_factory: Callable[..., Awaitable[Broker]], tmp_path: Path
) -> None:
    broker = await broker_factory()
    session_file = tmp_path / "mqtt-session"
    async with watching(f"{PREFIX}/#", port=broker.port) as watcher:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.supervisor.status.publisher_proc",
            "--port",
            str(broker.port),
            "--prefix",
            PREFIX,
            "--session-file",
            str(session_file),
            cwd=REPO,
        )
        try:
            birth = await watcher.wait_for(lambda m: m.topic == STATE_TOPIC and _state(m) == ("online", 1))
            await watcher.wait_for(lambda m: m.topic == f"{PREFIX}/nodes/alpha/state")
            assert birth.json()["pid"] == process.pid
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
            lost = await watcher.wait_for(lambda m: m.topic == STATE_TOPIC and _state(m) == ("lost", 1))
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert lost.json()["pid"] == process.pid
    retained = await retained_now(f"{PREFIX}/#", port=broker.port)
    assert _state(Received(STATE_TOPIC, retained[STATE_TOPIC], True)) == ("lost", 1)
    # The node's last known state stays retained: subscribers see it together with the supervisor's loss.
    assert f"{PREFIX}/nodes/alpha/state" in retained


def _mqtt_string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect_packet(client_id: str, will_topic: str, will_payload: bytes, keepalive: int) -> bytes:
    """An MQTT 3.1.1 CONNECT with a retained QoS 1 will, written out by hand."""
    flags = 0x02 | 0x04 | 0x08 | 0x20  # clean session, will, will QoS 1, will retain
    variable = _mqtt_string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    payload = (
        _mqtt_string(client_id.encode()) + _mqtt_string(will_topic.encode()) + _mqtt_string(will_payload)
    )
    body = variable + payload
    return bytes([0x10]) + _remaining_length(len(body)) + body


@contextlib.asynccontextmanager
async def half_open_session(port: int, client_id: str, will: bytes, keepalive: int) -> AsyncIterator[None]:
    """A connection that said CONNECT (with a will) and then went silent, like a process on a frozen host:
    the broker fires its will only when the keepalive runs out (1.5 x keepalive)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_connect_packet(client_id, STATE_TOPIC, will, keepalive))
        await writer.drain()
        async with asyncio.timeout(5):
            connack = await reader.readexactly(4)
        assert connack == b"\x20\x02\x00\x00", connack
        yield
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _old_will(session: int) -> bytes:
    identity = SupervisorIdentity(fleet="test", host="host-a", pid=os.getpid(), version="old", started_at=0.0)
    return payloads.encode(
        payloads.supervisor_payload(
            identity=identity,
            state=SupervisorState.LOST,
            session=session,
            connected_at=0.0,
            since=None,
            summary=None,
            counts=None,
        )
    )


async def test_a_late_will_from_an_older_session_is_overwritten_by_the_birth(
    broker_factory: Callable[..., Awaitable[Broker]],
    start_publisher: Callable[..., RunningPublisher],
    tmp_path: Path,
) -> None:
    broker = await broker_factory()
    session_file = tmp_path / "mqtt-session"
    session_file.write_text("5\n")  # the old process used session 5; ours will be 6
    # The old connection uses another client id (a restart with another id, or a NAT'd connection that still
    # looks alive to the broker), so our connect does not take its session over.
    async with (
        watching(STATE_TOPIC, port=broker.port) as watcher,
        # keepalive 2 s: the broker fires the old will ~3 s after its CONNECT, well after our birth.
        half_open_session(broker.port, "fleet-old-process", _old_will(5), keepalive=2),
    ):
        start_publisher(prefix=PREFIX, port=broker.port, session_file=session_file)
        first = await watcher.wait_for(lambda m: _state(m) == ("online", 6))
        late = await watcher.wait_for(lambda m: _state(m) == ("lost", 5), within=10)
        again = await watcher.wait_for(
            lambda m: _state(m) == ("online", 6), after=watcher.messages.index(late)
        )
    order = [watcher.messages.index(m) for m in (first, late, again)]
    assert order == sorted(order) and len(set(order)) == 3
    retained = await retained_now(STATE_TOPIC, port=broker.port)
    assert _state(Received(STATE_TOPIC, retained[STATE_TOPIC], True)) == ("online", 6)


async def test_an_old_session_taken_over_fires_its_will_before_our_birth(
    broker_factory: Callable[..., Awaitable[Broker]],
    start_publisher: Callable[..., RunningPublisher],
    tmp_path: Path,
) -> None:
    broker = await broker_factory()
    session_file = tmp_path / "mqtt-session"
    session_file.write_text("5\n")
    async with (
        watching(STATE_TOPIC, port=broker.port) as watcher,
        # Same client id as ours: the broker ends the old session when we connect, firing its will then.
        half_open_session(broker.port, "fleet-test-host-a", _old_will(5), keepalive=60),
    ):
        start_publisher(prefix=PREFIX, port=broker.port, session_file=session_file)
        lost = await watcher.wait_for(lambda m: _state(m) == ("lost", 5))
        birth = await watcher.wait_for(lambda m: _state(m) == ("online", 6))
        assert watcher.messages.index(lost) < watcher.messages.index(birth)
    retained = await retained_now(STATE_TOPIC, port=broker.port)
    assert _state(Received(STATE_TOPIC, retained[STATE_TOPIC], True)) == ("online", 6)
