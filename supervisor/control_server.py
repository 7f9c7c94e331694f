"""The daemon's control socket: `fleet status|start|stop|restart|reset|logs|reload` talk to it.

A Unix stream socket (mode 0600 by default); one JSON request line, then JSON response lines. `logs` with
`follow` keeps streaming the node's output until the client hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from supervisor import control_protocol as proto
from supervisor.events import ReloadOutcome
from supervisor.node_runner import NodeRunner
from supervisor.spares import SpareInfo

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 5.0
# How long a `stop` request waits for the node to be stopped before answering "stopping".
STOP_REPLY_TIMEOUT_SECONDS = 60.0


class Fleet(Protocol):
    """What the control server needs from the daemon."""

    config_path: Path
    host: str

    async def hosts_view(self) -> dict[str, dict[str, Any]]: ...

    def runners(self) -> list[NodeRunner]: ...

    def runner(self, name: str) -> NodeRunner | None: ...

    async def reload(self, *, trigger: str = "control") -> ReloadOutcome: ...

    def last_reload(self) -> ReloadOutcome | None: ...

    def summary(self) -> str: ...

    def audit_status(self, name: str) -> dict[str, Any]: ...
    def spares(self) -> list[SpareInfo]: ...


class ControlServer:
    def __init__(self, *, path: Path, mode: int, fleet: Fleet) -> None:
        self.path = path
        self._mode = mode
        self._fleet = fleet
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if len(os.fsencode(self.path)) >= 108:
            raise OSError(f"control socket path too long for AF_UNIX (108 bytes): {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        # The umask makes the socket private from the moment it exists; chmod then sets the configured mode.
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._on_client, path=os.fspath(self.path), limit=proto.MAX_REQUEST_BYTES
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self._mode)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except TimeoutError:
            log.debug("control client sent no request in time")
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_SECONDS)
            request = proto.decode(line)
        except (ValueError, asyncio.LimitOverrunError):
            await _send(writer, {"ok": False, "error": "malformed request"})
            return
        cmd = request.get("cmd")
        if cmd not in proto.COMMANDS:
            await _send(writer, {"ok": False, "error": f"unknown command {cmd!r}"})
            return
        if cmd == "status":
            await _send(writer, await self._status())
            return
        if cmd == "reload":
            # Answered when the reload is done, with its outcome (a refused reload is not an error of the
            # request: the daemon did what was asked and says why it changed nothing).
            outcome = await self._fleet.reload(trigger="control")
            await _send(writer, {"ok": True, "reload": outcome.to_json()})
            return
        name = request.get("node")
        runner = self._fleet.runner(name) if isinstance(name, str) else None
        if runner is None:
            known = ", ".join(r.name for r in self._fleet.runners()) or "none"
            await _send(writer, {"ok": False, "error": f"no node named {name!r} (nodes: {known})"})
            return
        if cmd == "logs":
            await self._logs(runner, request, writer)
            return
        await self._command(cmd, runner, writer)

    async def _status(self) -> dict[str, Any]:
        """This host's nodes, each shown as the host that runs it has it (the fleet-wide view in Redis)."""
        from supervisor.fleet_view import merge_nodes

        last = self._fleet.last_reload()
        local = [
            {**runner.status().to_json(), "audit": self._fleet.audit_status(runner.name)}
            for runner in self._fleet.runners()
        ]
        views = await self._fleet.hosts_view()
        hosts = {
            host: {"at": view.get("at"), "nodes": len(view.get("nodes", []))} for host, view in views.items()
        }
        return {
            "ok": True,
            "summary": self._fleet.summary(),
            "host": self._fleet.host,
            "hosts": hosts,
            "config": {"path": str(self._fleet.config_path), "last_reload": last.to_json() if last else None},
            "nodes": merge_nodes(local, views, self._fleet.host),
            "local_nodes": local,
            "spares": [spare.to_json() for spare in self._fleet.spares()],
        }

    async def _command(self, cmd: str, runner: NodeRunner, writer: asyncio.StreamWriter) -> None:
        log.info("control: %s %s", cmd, runner.name, extra={"node": runner.name})
        if cmd == "start":
            runner.start()
        elif cmd == "restart":
            runner.restart()
        elif cmd == "reset":
            runner.reset()
        elif cmd == "stop":
            try:
                await asyncio.wait_for(asyncio.shield(runner.stop()), STOP_REPLY_TIMEOUT_SECONDS)
            except TimeoutError:
                await _send(writer, {"ok": True, "state": str(runner.state), "note": "still stopping"})
                return
        await _send(writer, {"ok": True, "state": str(runner.state)})

    async def _logs(self, runner: NodeRunner, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        lines = request.get("lines", 50)
        count = lines if isinstance(lines, int) and 0 <= lines <= 100_000 else 50
        with runner.output.follow() as live:
            # Subscribed before reading the tail, so nothing falls between the two (a line may repeat).
            for text in await runner.output.tail(count) if count else []:
                writer.write(proto.encode({"line": text}))
            await writer.drain()
            if not request.get("follow"):
                return
            while True:
                text = await live.get()
                writer.write(proto.encode({"line": text}))
                await writer.drain()


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(proto.encode(message))
    await writer.drain()
