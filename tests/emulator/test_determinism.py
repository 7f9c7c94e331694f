"""Same seed and same requests give the same state and ids; another seed gives other ids and history."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from emulator.testing import EmulatorProcess, VenueClient, running_emulator

pytestmark = pytest.mark.asyncio

TIME_KEYS = {
    "time",
    "update_time",
    "create_time",
    "trigger_time",
    "created",
    "keepalive",
    "live_start_ms",
    "current_minute",
    "frozen_bar",
    "bars",
}


def scrub(value: Any) -> Any:
    """The document without wall-clock times (the only thing two runs may not share)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


async def scenario(venue: EmulatorProcess, now: int) -> dict[str, Any]:
    async with VenueClient(venue.http_url, venue.api_key, venue.api_secret) as client:
        await venue.admin.set_price("BTCUSDT", "60000.0")
        await venue.admin.set_price("ETHUSDT", "3000.00")
        await client.post("/fapi/v1/listenKey", sign=False)
        await client.post(
            "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.020"}
        )
        limit = await client.post(
            "/fapi/v1/order",
            {
                "symbol": "ETHUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "quantity": "0.500",
                "price": "3100.00",
                "timeInForce": "GTC",
            },
        )
        await client.post(
            "/fapi/v1/algoOrder",
            {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.010",
                "triggerPrice": "58000.00",
                "reduceOnly": "true",
            },
        )
        await venue.admin.set_price("BTCUSDT", "57900.0")  # fires the stop
        await venue.admin.set_price("ETHUSDT", "3100.00")  # fills the limit
        await client.delete("/fapi/v1/order", {"symbol": "ETHUSDT", "orderId": str(limit.body["orderId"])})
        await venue.admin.funding("BTCUSDT")
        window = {
            "symbol": "BTCUSDT",
            "interval": "1m",
            "startTime": str(now - 6 * 3_600_000),
            "endTime": str(now - 3 * 3_600_000),
        }
        history = (await client.get("/fapi/v1/klines", window, sign=False)).body
    return {"state": await venue.admin.dump(), "history": history}


async def run(seed: int, now: int) -> dict[str, Any]:
    async with running_emulator(seed=seed, symbols=["BTCUSDT", "ETHUSDT"]) as venue:
        return await scenario(venue, now)


async def test_same_seed_same_state_and_ids() -> None:
    now = time.time_ns() // 1_000_000  # one history window for all three runs
    first, second, other = await asyncio.gather(run(5, now), run(5, now), run(6, now))
    assert scrub(first["state"]) == scrub(second["state"])
    assert first["history"] == second["history"] and len(first["history"]) == 180
    venue_state = first["state"]["venue"]
    assert len(venue_state["orders"]) == 3 and len(venue_state["trades"]) == 3  # market, stop child, limit
    assert [a["status"] for a in venue_state["algos"].values()] == ["FINISHED"]
    assert set(first["state"]["venue"]["orders"]) != set(
        other["state"]["venue"]["orders"]
    )  # ids differ by seed
    assert first["history"] != other["history"]
