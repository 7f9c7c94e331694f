"""Helpers for the strategy-side recovery tests (a module, not a conftest, so it cannot collide)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    process: asyncio.subprocess.Process | None

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            async with asyncio.timeout(10):
                await self.process.wait()


@contextlib.asynccontextmanager
async def private_redis(port: int | None = None) -> AsyncIterator[RedisServer]:
    """A redis-server of our own on a free port, or on `port` (again after a stop), so that tests that stop
    Redis do not stop the shared one."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    workdir = tempfile.mkdtemp(prefix="r2-redis-")
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(port, process)
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    await client.ping()
                    break
                except (ConnectionError, OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.05)
        yield server
    finally:
        await client.aclose()
        await server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
