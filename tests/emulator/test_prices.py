"""Price modes: the seeded walk in real time, a scripted path, and admin moves."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from emulator.pricepath import PricePath
from emulator.symbols import KNOWN_SYMBOLS
from emulator.testing import VenueClient, running_emulator

pytestmark = pytest.mark.asyncio


async def _price(client: VenueClient, symbol: str = "BTCUSDT") -> Decimal:
    reply = await client.get("/fapi/v1/ticker/price", {"symbol": symbol}, sign=False)
    return Decimal(reply.body["price"])


async def test_walk_mode_follows_the_seeded_path(tmp_path: Path) -> None:
    async with (
        running_emulator(seed=21, symbols=["BTCUSDT"], price_mode="walk", tick_ms=50) as venue,
        VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client,
    ):
        path = PricePath(21, KNOWN_SYMBOLS["BTCUSDT"])
        seen = {await _price(client)}
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            seen.add(await _price(client))
        assert len(seen) >= 3  # it moves by itself
        expected = float(path.price(time.time_ns() // 1_000_000))
        assert all(abs(float(p) / expected - 1) < 0.002 for p in seen)  # and stays on the seeded path
        await venue.admin.set_price("BTCUSDT", "70000.0")  # the walk continues from an admin move
        after = await _price(client)
        assert abs(float(after) / 70000 - 1) < 0.002


async def test_scripted_prices_apply_at_their_time(tmp_path: Path) -> None:
    script = tmp_path / "path.jsonl"
    points = [
        {"t": 0.3, "symbol": "BTCUSDT", "price": "61234.5"},
        {"t": 0.6, "symbol": "BTCUSDT", "price": "61000"},
    ]
    script.write_text("\n".join(json.dumps(p) for p in points))
    async with (
        running_emulator(
            symbols=["BTCUSDT"], tick_ms=50, extra_args=["--price-script", str(script)]
        ) as venue,
        VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client,
    ):
        deadline = time.monotonic() + 5
        prices: list[Decimal] = []
        while time.monotonic() < deadline and (not prices or prices[-1] != Decimal("61000.00")):
            prices.append(await _price(client))
            await asyncio.sleep(0.05)
        assert Decimal("61234.50") in prices and prices[-1] == Decimal("61000.00")


async def test_manual_mode_moves_only_when_told() -> None:
    async with (
        running_emulator(symbols=["BTCUSDT"], tick_ms=50) as venue,
        VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client,
    ):
        first = await _price(client)
        await asyncio.sleep(0.3)
        assert await _price(client) == first
        moved = await venue.admin.step_price("BTCUSDT", -25)
        assert Decimal(moved["last"]) == first - Decimal("2.5")
        await venue.admin.set_mark("BTCUSDT", "59000")
        premium = (await client.get("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, sign=False)).body
        assert premium["markPrice"] == "59000.00000000"
