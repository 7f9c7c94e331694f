"""Runs the real daemon (`python -m supervisor run`) as a child process, the way systemd would: it binds the
NOTIFY_SOCKET the daemon reports READY/STOPPING to, and talks to the daemon's control socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.control_client import ControlClient
from supervisor.notify_server import NotifyEndpoint
from tests.supervisor.conftest import REPO, TEST_NODE


def node_yaml(name: str, *flags: str, extra: str = "") -> str:
    argv = ", ".join(f'"{a}"' for a in [sys.executable, str(TEST_NODE), *flags])
    body = f"""\
    - name: {name}
      trader_id: TEST-{name.upper().replace("_", "")}
      command: [{argv}]
    """
    text = textwrap.dedent(body)
    if extra:
        text += textwrap.indent(textwrap.dedent(extra), "  ")
    return text


def fleet_yaml(
    base: Path, nodes: list[str], *, mqtt: str = "{enabled: false}", metrics: str = "{enabled: false}"
) -> str:
    header = f"""\
    fleet: test
    runtime_dir: {base}/run
    state_dir: {base}/state
    mqtt: {mqtt}
    metrics: {metrics}
    defaults:
      restart: {{backoff_initial: 50ms, backoff_max: 200ms, reset_after: 30s}}
      stop: {{grace: 2s}}
      watchdog: {{timeout: 2s}}
      ready_timeout: 10s
    nodes:
    """
    return textwrap.dedent(header) + "".join(textwrap.indent(n, "  ") for n in nodes)


def write_atomically(path: Path, text: str) -> None:
    """As editors do: write a temporary file, then rename it over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class DaemonUnderTest:
    def __init__(self, base: Path, config: Path, *, env: dict[str, str] | None = None) -> None:
        self.base = base
        self.config = config
        self.extra_env = env or {}
        self.process: asyncio.subprocess.Process | None = None
        self.systemd_messages: list[dict[str, str]] = []
        self._systemd_changed = asyncio.Event()
        self._endpoint = NotifyEndpoint(base / "systemd.sock", self._on_systemd)
        self.client = ControlClient(base / "run" / "control.sock")
        self.output: list[str] = []
        self._output_changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def _on_systemd(self, fields: dict[str, str], pid: int) -> None:
        self.systemd_messages.append(fields)
        self._systemd_changed.set()

    async def start(self, *, wait_ready: bool = True, watchdog_usec: int | None = None) -> None:
        self._endpoint.open()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "NOTIFY_SOCKET": str(self._endpoint.path),
            "FLEET_LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "supervisor",
            "run",
            "--config",
            str(self.config),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            # A log line longer than asyncio's default 64 KiB would end the reader, and the daemon would then
            # block writing to a full pipe.
            limit=16 << 20,
        )
        self._reader = asyncio.create_task(self._read_output(), name="test.daemon-output")
        if wait_ready:
            await self.wait_systemd(lambda m: m.get("READY") == "1")

    async def _read_output(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            # The daemon logs JSON lines when stderr is not a TTY; keep the message text.
            line = raw.decode(errors="replace").rstrip()
            with contextlib.suppress(ValueError, AttributeError):
                line = json.loads(line)["msg"]
            self.output.append(line)
            self._output_changed.set()

    async def wait_systemd(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not any(predicate(m) for m in self.systemd_messages):
                self._systemd_changed.clear()
                await self._systemd_changed.wait()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.request, message)

    async def nodes(self) -> dict[str, dict[str, Any]]:
        reply = await self.request({"cmd": "status"})
        return {n["name"]: n for n in reply["nodes"]}

    async def wait_nodes(
        self, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 15
    ) -> dict[str, dict[str, Any]]:
        """Bounded wait for a fleet condition, asking the daemon every 50 ms."""
        async with asyncio.timeout(timeout):
            while True:
                nodes = await self.nodes()
                if predicate(nodes):
                    return nodes
                await asyncio.sleep(0.05)

    async def wait_output(self, text: str, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.output):
                self._output_changed.clear()
                await self._output_changed.wait()

    async def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)
        self._endpoint.close()
        # Shown by pytest when the test failed: what the daemon said.
        print("\n".join(["--- daemon output ---", *self.output]))
