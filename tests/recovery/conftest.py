"""Fixtures for node tests: a real emulator, a unique trader id with its Redis keys removed afterwards, and a
harness that runs `python -m recovery.node` as a real process with a bound notify socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess, running_emulator
from supervisor.notify_server import NotifyEndpoint

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
BTC = "BTCUSDT-PERP.BINANCE"
ETH = "ETHUSDT-PERP.BINANCE"
PROBE = "tests.recovery.strategies:HubProbe"
PROBE_CONFIG = "tests.recovery.strategies:HubProbeConfig"
WAIT_S = 30.0
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def venue() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=5, symbols=SYMBOLS) as emulator:
        await emulator.admin.set_price("BTCUSDT", "60000.0")
        await emulator.admin.set_price("ETHUSDT", "3000.00")
        yield emulator


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def trader_id(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A trader id nobody else uses; its nautilus keys and seed hashes are deleted afterwards."""
    tid = f"RT{uuid.uuid4().hex[:8].upper()}-001"
    try:
        yield tid
    finally:
        for pattern in (f"trader-{tid}:*", f"positions:{tid}:*"):
            keys = [k async for k in redis_client.scan_iter(match=pattern)]
            if keys:
                await redis_client.delete(*keys)


def probe_strategy(instrument: str = BTC, **config: Any) -> dict[str, Any]:
    return {
        "path": PROBE,
        "config_path": PROBE_CONFIG,
        "config": {"instrument_id": instrument, "order_id_tag": "001", **config},
    }


def node_spec(
    venue: EmulatorProcess,
    trader_id: str,
    strategies: list[dict[str, Any]],
    *,
    redis_url: str = REDIS_URL,
    ready_timeout: str = "40s",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON the supervisor hands a strategy node ($FLEET_NODE_SPEC)."""
    return {
        "fleet": "test",
        "node": {
            "name": "probe",
            "trader_id": trader_id,
            "venues": ["emu"],
            "strategies": strategies,
            "ready_timeout": ready_timeout,
            "watchdog": {"timeout": "10s"},
            "stop": {"signal": "SIGTERM", "grace": "10s"},
            "env": env or {},
        },
        "venues": {
            "emu": {
                "type": "binance_usdm",
                "base_url_http": venue.http_url,
                "base_url_ws": venue.ws_url,
                "api_key": {"env": "EMU_API_KEY"},
                "api_secret": {"env": "EMU_API_SECRET"},
            }
        },
        "redis": {"url": redis_url, "timeout": "2s"},
        "state_dir": None,
    }


@dataclass
class NodeRunResult:
    code: int
    messages: list[dict[str, str]]
    log: str


@dataclass
class NodeProcess:
    """One `python -m recovery.node` process and what it said over notify."""

    process: asyncio.subprocess.Process
    endpoint: NotifyEndpoint
    log_path: Path
    messages: list[dict[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, fields: dict[str, str], pid: int) -> None:
        self.messages.append(fields)
        self.changed.set()

    def phases(self) -> list[str]:
        return [m["X_PHASE"] for m in self.messages if "X_PHASE" in m]

    def phase(self, name: str) -> dict[str, str] | None:
        return next((m for m in self.messages if m.get("X_PHASE") == name), None)

    def detail(self, name: str) -> dict[str, Any]:
        message = self.phase(name)
        assert message is not None, f"no {name} phase; phases: {self.phases()}\n{self.log_tail()}"
        return dict(json.loads(message.get("X_DETAIL", "{}")))

    @property
    def ready(self) -> bool:
        return any(m.get("READY") == "1" for m in self.messages)

    @property
    def fatal(self) -> dict[str, str] | None:
        return next((m for m in self.messages if "X_FATAL" in m), None)

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_until(self, what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.process.returncode is not None and not condition():
                code = self.process.returncode
                raise AssertionError(
                    f"node exited ({code}) before {what}; {self.phases()}\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for {what}; phases {self.phases()}\n{self.log_tail()}"
                )
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))

    async def wait_ready(self, timeout_s: float = WAIT_S) -> None:
        await self.wait_until("READY=1", lambda: self.ready, timeout_s)

    async def wait_exit(self, timeout_s: float = WAIT_S) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"node did not exit within {timeout_s}s\n{self.log_tail()}") from None

    async def terminate(self, timeout_s: float = WAIT_S) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout_s)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class NodeLauncher:
    """Starts node processes for one test; kills whatever is left at the end."""

    def __init__(self, venue: EmulatorProcess, workdir: Path) -> None:
        self.venue = venue
        self.workdir = workdir
        self.started: list[NodeProcess] = []

    async def start(
        self, spec: dict[str, Any], *extra_args: str, watchdog_usec: int | None = None
    ) -> NodeProcess:
        n = len(self.started)
        spec_path = self.workdir / f"spec{n}.json"
        spec_path.write_text(json.dumps(spec))
        node = NodeProcess(process=None, endpoint=None, log_path=self.workdir / f"node{n}.log")  # type: ignore[arg-type]
        endpoint = NotifyEndpoint(self.workdir / f"n{n}.sock", node.on_message)
        endpoint.open()
        node.endpoint = endpoint
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(endpoint.path),
            "EMU_API_KEY": self.venue.api_key,
            "EMU_API_SECRET": self.venue.api_secret,
            "PYTHONPATH": str(REPO),
            "FLEET_NODE_LOG_LEVEL": "INFO",
        }
        env.pop("WATCHDOG_USEC", None)
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        with node.log_path.open("wb") as log:
            node.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "recovery.node",
                "--spec",
                str(spec_path),
                *extra_args,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(node)
        return node

    async def close(self) -> None:
        for node in self.started:
            with contextlib.suppress(ProcessLookupError):
                await node.kill()
            node.endpoint.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short: AF_UNIX socket paths are limited to 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="rn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def nodes(venue: EmulatorProcess, workdir: Path) -> AsyncIterator[NodeLauncher]:
    launcher = NodeLauncher(venue, workdir)
    try:
        yield launcher
    finally:
        await launcher.close()
