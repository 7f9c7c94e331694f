"""Fixtures every test package uses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.supervisor.private_redis import private_redis


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (AF_UNIX paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="nf-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """A Redis server of the test module's own, on a free port: its tests may stop, pause or flush it."""
    with private_redis() as port:
        yield port


@pytest.fixture
async def private_redis_client(redis_port: int) -> AsyncIterator[aioredis.Redis]:
    """A client of the module's own Redis (`redis_port`), emptied for each test."""
    client = aioredis.Redis(port=redis_port, socket_timeout=5)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()
