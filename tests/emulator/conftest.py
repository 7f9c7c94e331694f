"""Fixtures for the emulator's tests: a real emulator subprocess, a signed REST client, WebSocket helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.testing import EmulatorProcess, VenueClient, running_emulator

WS_TIMEOUT_S = 5.0
WS_CLOSE = aiohttp.ClientWSTimeout(ws_close=5.0)  # connecting is bounded by the session timeout
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
async def venue() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=11, symbols=SYMBOLS) as emulator:
        await emulator.admin.set_price("BTCUSDT", "60000.0")
        await emulator.admin.set_price("ETHUSDT", "3000.00")
        yield emulator


@pytest.fixture
async def client(venue: EmulatorProcess) -> AsyncIterator[VenueClient]:
    async with VenueClient(venue.http_url, venue.api_key, venue.api_secret) as rest:
        yield rest


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = WS_TIMEOUT_S) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout_s)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type} {msg.data!r}"
    return json.loads(msg.data)


async def receive_until(
    ws: aiohttp.ClientWebSocketResponse, predicate: Any, timeout_s: float = WS_TIMEOUT_S
) -> list[Any]:
    """Messages up to and including the first one `predicate` accepts."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while True:
            message = await receive_json(ws, timeout_s)
            seen.append(message)
            if predicate(message):
                return seen


async def window_with_room(window_s: float, need_s: float = 3.0) -> None:
    """Return at a moment with at least `need_s` left in the venue's current `window_s` window (windows
    start on the clock), so that a test's requests are counted in one window."""
    left = window_s - time.time() % window_s
    if left < need_s:
        await asyncio.sleep(left + 0.05)
