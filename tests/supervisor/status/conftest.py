"""Fixtures for the status tests: private Mosquitto brokers, a subscriber that watches topics the way a user's
`mosquitto_sub` would, and publishers running as real tasks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from supervisor.clock import Clock, SystemClock
from supervisor.config.schema import MqttSpec
from supervisor.events import ExitInfo, NodeStatus, PhaseMark, RecoveryReport
from supervisor.states import ExitReason, NodeState
from supervisor.status.backoff import ReconnectPolicy
from supervisor.status.mqtt import MqttPublisher
from supervisor.status.session import FileSessionCounter

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SHARED_BROKER = ("127.0.0.1", 1883)
# Fast reconnects in tests; production uses the defaults (0.5 s up to 30 s).
FAST_RECONNECT = ReconnectPolicy(initial=0.05, cap=0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def eventually(condition: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """Wait (bounded) for a condition on an object that offers no event to wait on."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls state that has no event (a property, a log record)
            await asyncio.sleep(0.01)
    assert condition(), what


# ----- private brokers -----


@dataclasses.dataclass
class Broker:
    """A private mosquitto on a free port, which a test can stop and start again on the same port."""

    directory: Path
    port: int
    extra_config: str = ""
    anonymous: bool = True
    process: asyncio.subprocess.Process | None = None
    output: list[str] = dataclasses.field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    def write_config(self) -> None:
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            # Started as root, mosquitto would switch to the `mosquitto` user, which cannot read the test's
            # private tmp files (password file, keys). Stay the user running the tests.
            f"user {getpass.getuser()}\n"
            "persistence false\n"
            # stderr: unbuffered, so the "running" line arrives when it is written.
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n" + self.extra_config
        )

    async def start(self) -> None:
        assert self.process is None, "broker already running"
        self.write_config()
        self.process = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(self.config_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        running = asyncio.Event()
        self._reader = asyncio.create_task(self._read(self.process, running), name=f"mosquitto:{self.port}")
        waiting = asyncio.create_task(running.wait(), name="mosquitto.running")
        exited = asyncio.create_task(self.process.wait(), name="mosquitto.exited")
        await asyncio.wait((waiting, exited), timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        exited.cancel()
        if not running.is_set():
            await self.stop()
            raise AssertionError(f"mosquitto did not start: {''.join(self.output)}")

    async def _read(self, process: asyncio.subprocess.Process, running: asyncio.Event) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace")
            self.output.append(line)
            if " running" in line:
                running.set()

    async def stop(self) -> None:
        """A hard stop (SIGKILL): the broker vanishes the way a crash or a host loss looks to clients."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await self._reader
        self.process = None
        self._reader = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def broker_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Broker]]]:
    brokers: list[Broker] = []

    async def make(extra_config: str = "", anonymous: bool = True) -> Broker:
        directory = tmp_path / f"broker{len(brokers)}"
        directory.mkdir()
        broker = Broker(directory=directory, port=free_port(), extra_config=extra_config, anonymous=anonymous)
        brokers.append(broker)
        await broker.start()
        return broker

    yield make
    for broker in brokers:
        await broker.stop()


# ----- a subscriber, as a user would run one -----


@dataclasses.dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """Subscribes to a filter and records every message; tests wait for the messages they expect."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.messages: list[Received] = []
        self._changed = asyncio.Condition()

    @property
    def client(self) -> aiomqtt.Client:
        return self._client

    async def _pump(self) -> None:
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            async with self._changed:
                self.messages.append(Received(str(message.topic), payload, bool(message.retain)))
                self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Received], bool], within: float = 10.0, after: int = 0
    ) -> Received:
        """The first message (from index `after`) matching `predicate`, waiting for it if needed."""
        found: list[Received] = []

        def matched() -> bool:
            found[:] = [m for m in self.messages[after:] if predicate(m)]
            return bool(found)

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(matched)
        except TimeoutError:
            seen = "\n".join(f"  {m.topic} {m.payload[:200]!r}" for m in self.messages)
            raise AssertionError(f"no matching message within {within}s; received:\n{seen}") from None
        return found[0]

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]


@contextlib.asynccontextmanager
async def watching(
    topic_filter: str,
    *,
    host: str = SHARED_BROKER[0],
    port: int = SHARED_BROKER[1],
    **client_args: Any,
) -> AsyncIterator[Watcher]:
    client = aiomqtt.Client(host, port, identifier=f"watch-{uuid.uuid4().hex[:8]}", **client_args)
    async with client:
        watcher = Watcher(client)
        pump = asyncio.create_task(watcher._pump(), name="watcher.pump")
        try:
            await client.subscribe(topic_filter, qos=1)
            yield watcher
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await pump


async def retained_now(
    topic_filter: str, *, host: str = SHARED_BROKER[0], port: int = SHARED_BROKER[1]
) -> dict[str, bytes]:
    """What a new subscriber gets as retained messages right now.

    The broker sends a subscription's retained messages before it handles our next packets, so a message we
    publish to a marker topic after subscribing arrives after the whole retained burst.
    """
    async with watching(topic_filter, host=host, port=port) as watcher:
        marker = f"zz-marker/{uuid.uuid4().hex}"
        await watcher.client.subscribe(marker, qos=1)
        await watcher.client.publish(marker, b"x", qos=1)
        await watcher.wait_for(lambda m: m.topic == marker)
        return {m.topic: m.payload for m in watcher.messages if m.retain}


@pytest.fixture
def prefix() -> Iterator[str]:
    """A topic prefix of its own for each test, so tests on the shared broker never see each other."""
    yield f"nautilus-fleet-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def clean_shared_broker(prefix: str) -> AsyncIterator[None]:
    """Delete every retained message a test left under its prefix on the shared broker."""
    yield
    async with watching(f"{prefix}/#") as watcher:
        marker = f"{prefix}-done/{uuid.uuid4().hex}"
        await watcher.client.subscribe(marker, qos=1)
        await watcher.client.publish(marker, b"x", qos=1)
        await watcher.wait_for(lambda m: m.topic == marker)
        for topic in {m.topic for m in watcher.messages if m.retain and m.payload}:
            await watcher.client.publish(topic, b"", qos=1, retain=True)


# ----- publishers -----


@dataclasses.dataclass
class RunningPublisher:
    publisher: MqttPublisher
    task: asyncio.Task[None]

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def start_publisher(tmp_path: Path) -> AsyncIterator[Callable[..., RunningPublisher]]:
    running: list[RunningPublisher] = []

    def start(
        *,
        prefix: str,
        port: int = SHARED_BROKER[1],
        fleet: str = "test",
        host: str = "host-a",
        clock: Clock | None = None,
        session_file: Path | None = None,
        environ: dict[str, str] | None = None,
        reconnect: ReconnectPolicy = FAST_RECONNECT,
        **spec_fields: Any,
    ) -> RunningPublisher:
        spec = MqttSpec(host="127.0.0.1", port=port, topic_prefix=prefix, **spec_fields)
        publisher = MqttPublisher(
            spec=spec,
            fleet=fleet,
            host=host,
            sessions=FileSessionCounter(session_file or tmp_path / f"mqtt-session-{len(running)}"),
            clock=clock or SystemClock(),
            environ=environ,
            reconnect=reconnect,
        )
        task = asyncio.create_task(publisher.run(), name=f"publisher-{len(running)}")
        handle = RunningPublisher(publisher, task)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        await handle.stop()


# ----- the daemon's values, as the daemon would produce them -----


def node_status(
    state: NodeState,
    *,
    name: str = "alpha",
    trader_id: str = "TRADER-001",
    venues: tuple[str, ...] = ("binance",),
    pid: int | None = 4242,
    restarts: int = 0,
    since: float = 1_700_000_000.0,
    last_exit: ExitInfo | None = None,
) -> NodeStatus:
    return NodeStatus(
        name=name,
        trader_id=trader_id,
        venues=venues,
        state=state,
        pid=pid,
        restarts=restarts,
        since=since,
        started_at=since,
        last_exit=last_exit,
    )


def exit_info(reason: ExitReason = ExitReason.SIGNAL, signal: int | None = 9) -> ExitInfo:
    return ExitInfo(reason=reason, code=None, signal=signal, at=1_700_000_100.0)


def phase(name: str, ms: float | None, detail: dict[str, Any] | None = None) -> PhaseMark:
    return PhaseMark(
        name=name,
        epoch_ns=1_700_000_100_000_000_000 + int((ms or 0) * 1e6),
        mono_ns=5_000_000_000 + int((ms or 0) * 1e6),
        ms_since_detection=ms,
        detail=detail or {},
    )


def recovery_report(
    *,
    node: str = "alpha",
    venues: tuple[str, ...] = ("binance",),
    position_ms: float | None = 420.0,
    full_ms: float | None = 1300.0,
    discrepancies: tuple[dict[str, Any], ...] = (),
    actions: tuple[dict[str, Any], ...] = (),
    result: str = "ready",
    detected_at: float | None = 1_700_000_100.0,
) -> RecoveryReport:
    phases = (phase("detected", 0.0), phase("reconciled", position_ms), phase("ready", full_ms))
    return RecoveryReport(
        node=node,
        trader_id="TRADER-001",
        venues=venues,
        attempt=2,
        reason="signal",
        detected_at=detected_at,
        phases=phases,
        position_recovery_ms=position_ms,
        full_recovery_ms=full_ms,
        discrepancies=discrepancies,
        actions=actions,
        result=result,
    )
