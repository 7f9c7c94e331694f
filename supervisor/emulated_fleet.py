"""A fleet run by the real daemon, watched the way an operator watches it: what `make demo` and `fleet drill`
share.

- `FleetDaemon`: `python -m supervisor run --config PATH` as a child process in its own session, with a
  NOTIFY_SOCKET of ours (as systemd would give it), its output in a log file, and the control socket to ask
  for node states.
- `RecoveryReports`: follows `<prefix>/#` on MQTT (as `mosquitto_sub` would), keeps every recovery report and
  every recovery phase event in arrival order, and can clear the retained topics it saw under its prefix.
- `forget_traders`, `forget_keys`: delete a set of traders' keys in Redis (nautilus' cache, the readable
  positions, the compaction archive), or the keys matching some patterns.
- `bounded_poll`: a bounded wait for something only a request can tell (the venue's or the daemon's state).

No nautilus here (supervisor/ stays light); the emulator is started by the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import aiomqtt
import redis.asyncio as aioredis

from supervisor.config.schema import MqttSpec, RedisSpec
from supervisor.control_client import ControlClient
from supervisor.notify_server import NotifyEndpoint
from supervisor.secrets import resolve_secret
from supervisor.status.connection import load_credentials

STOP_GRACE_S = 60.0


async def bounded_poll[T](
    what: str, check: Callable[[], Awaitable[T | None]], *, within: float, interval: float = 0.1
) -> T:
    """`check()` until it returns something truthy; TimeoutError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class FleetDaemon:
    """One run of the real daemon on a fleet file. Not re-entrant: start once, stop once."""

    def __init__(
        self, *, config: Path, control_socket: Path, work: Path, env: Mapping[str, str], log: Path
    ) -> None:
        self.config = config
        self.log_path = log
        self.control = ControlClient(control_socket)
        self._env = dict(env)
        self._ready = asyncio.Event()
        self._endpoint = NotifyEndpoint(work / "systemd.sock", self._on_notify)
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    def _on_notify(self, fields: dict[str, str], _pid: int) -> None:
        if fields.get("READY") == "1":
            self._ready.set()

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    async def start(self, *, ready_within: float = 60.0) -> None:
        """Start the daemon and wait for its READY=1 (it has read the file and started its nodes)."""
        self._endpoint.open()
        self._log = self.log_path.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "supervisor",
            "run",
            "--config",
            str(self.config),
            env={**self._env, "NOTIFY_SOCKET": str(self._endpoint.path)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        waiting = asyncio.create_task(self._ready.wait(), name="fleet-daemon.ready")
        exited = asyncio.create_task(self._process.wait(), name="fleet-daemon.exit")
        done, _ = await asyncio.wait(
            (waiting, exited), timeout=ready_within, return_when=asyncio.FIRST_COMPLETED
        )
        for task in (waiting, exited):
            task.cancel()
        await asyncio.gather(waiting, exited, return_exceptions=True)
        if not self._ready.is_set():
            why = f"exited with {self._process.returncode}" if exited in done else "did not say READY=1"
            raise RuntimeError(f"the daemon {why} within {ready_within:.0f}s (see {self.log_path})")

    async def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node's status as `fleet status --json` shows it, by name."""
        reply = await asyncio.to_thread(self.control.request, {"cmd": "status"})
        return {n["name"]: n for n in reply["nodes"]}

    async def wait_nodes(
        self, what: str, predicate: Callable[[dict[str, dict[str, Any]]], bool], *, within: float
    ) -> dict[str, dict[str, Any]]:
        async def check() -> dict[str, dict[str, Any]] | None:
            nodes = await self.nodes()
            return nodes if predicate(nodes) else None

        return await bounded_poll(what, check, within=within, interval=0.05)

    async def wait(self) -> int:
        """Until the daemon exits by itself (or is stopped); its exit code."""
        assert self._process is not None, "start() first"
        return await self._process.wait()

    async def stop(self) -> int | None:
        """SIGTERM (the daemon stops its nodes cleanly), SIGKILL of its process group after a grace."""
        process = self._process
        try:
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_GRACE_S)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
        finally:
            self._endpoint.close()
            if self._log is not None:
                self._log.close()
        return process.returncode if process is not None else None


class RecoveryReports:
    """Every recovery report published under a topic prefix, in arrival order (retained ones first)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.reports: list[dict[str, Any]] = []
        self.phases: list[dict[str, Any]] = []  # `phase` events of `<prefix>/events/<node>`, in arrival order
        self._retained_topics: set[str] = set()
        self._changed = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    async def run(
        self, spec: MqttSpec, environ: Mapping[str, str] | None = None, *, client_id: str | None = None
    ) -> None:
        """Follow the prefix until cancelled (run it as a task; `subscribed()` says when it listens)."""
        credentials = await asyncio.to_thread(load_credentials, spec, environ)
        password = credentials.password.reveal() if credentials.password is not None else None
        async with aiomqtt.Client(
            spec.host,
            spec.port,
            username=spec.username,
            password=password,
            identifier=client_id,
            tls_context=credentials.tls,
            timeout=10,
        ) as client:
            self._client = client
            await client.subscribe(f"{self.prefix}/#", qos=1)
            self._subscribed.set()
            async for message in client.messages:
                topic = str(message.topic)
                if not isinstance(message.payload, bytes) or not message.payload:
                    continue
                if f"{self.prefix}/events/" not in topic:  # states, reports, ...: retained by the daemon
                    self._retained_topics.add(topic)
                with contextlib.suppress(ValueError):
                    if topic.startswith(f"{self.prefix}/nodes/") and topic.endswith("/recovery"):
                        self.reports.append(json.loads(message.payload))
                        self._changed.set()
                    elif topic.startswith(f"{self.prefix}/events/"):
                        event = json.loads(message.payload)
                        if isinstance(event, dict) and event.get("event") == "phase":
                            self.phases.append(event)
                            self._changed.set()

    async def subscribed(self, within: float = 15.0) -> None:
        await asyncio.wait_for(self._subscribed.wait(), within)

    def mark(self) -> int:
        """A position in the stream: `next_report(..., after=mark)` sees only what arrived later."""
        return len(self.reports)

    async def next_report(
        self,
        node: str,
        *,
        after: int,
        within: float,
        accept: Callable[[dict[str, Any]], bool] = lambda _r: True,
    ) -> dict[str, Any]:
        """The first report of `node` that arrived after `after` and that `accept` takes."""
        async with asyncio.timeout(within):
            while True:
                for report in self.reports[after:]:
                    if report.get("node") == node and accept(report):
                        return report
                self._changed.clear()
                await self._changed.wait()

    def phase_mark(self) -> int:
        return len(self.phases)

    async def next_phase(self, node: str, names: set[str], *, after: int, within: float) -> dict[str, Any]:
        """The first `phase` event of `node` named in `names` that arrived after `after` (a `phase_mark`)."""
        async with asyncio.timeout(within):
            while True:
                for event in self.phases[after:]:
                    if event.get("node") == node and event.get("phase") in names:
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def clear_retained(self) -> int:
        """Remove every retained message seen under the prefix (states, reports) from the broker."""
        if self._client is None:
            return 0
        for topic in sorted(self._retained_topics):
            await self._client.publish(topic, b"", qos=1, retain=True)
        return len(self._retained_topics)


async def forget_traders(
    spec: RedisSpec, trader_ids: Sequence[str], environ: Mapping[str, str] | None = None
) -> int:
    """Delete these traders' keys (nautilus' cache, `positions:`, the compaction archive); the count."""
    patterns = [
        pattern
        for trader_id in trader_ids
        for pattern in (f"trader-{trader_id}:*", f"positions:{trader_id}:*", f"fleet-archive:{trader_id}:*")
    ]
    return await forget_keys(spec, *patterns, environ=environ)


async def forget_keys(spec: RedisSpec, *patterns: str, environ: Mapping[str, str] | None = None) -> int:
    """Delete the keys matching these SCAN patterns; the count."""
    password = resolve_secret(spec.password, dict(environ or os.environ)).reveal() if spec.password else None
    client = aioredis.Redis.from_url(
        spec.url, password=password, socket_timeout=spec.timeout, socket_connect_timeout=spec.timeout
    )
    deleted = 0
    try:
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if keys:
                deleted += int(await client.delete(*keys))
    finally:
        await client.aclose()
    return deleted
