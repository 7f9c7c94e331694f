"""Steps shared by the end-to-end node tests."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from tests.recovery.conftest import BTC, NodeLauncher, NodeProcess, node_spec, probe_strategy

STOP_ID = "SL-1"
ENTRY_ID = "ENTRY-1"
ENTRY_PX = Decimal("60000.00")
STOP_PX = "55000"


def stop_probe(**extra: Any) -> dict[str, Any]:
    """The probe strategy opening 0.010 BTC long at market and protecting it with a stop at 55,000."""
    return probe_strategy(
        BTC,
        entry_side="BUY",
        entry_qty="0.010",
        entry_client_order_id=ENTRY_ID,
        stop_trigger=STOP_PX,
        stop_client_order_id=STOP_ID,
        **extra,
    )


async def until(what: str, check: Any, timeout_s: float = 20.0) -> None:
    """Poll an async condition (venue or Redis state the test does not own) until true, bounded."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def open_position_with_stop(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> tuple[dict[str, Any], NodeProcess]:
    """Run a node that opens a long with a stop; return once both are at the venue and in Redis (the node is
    still running)."""
    spec = node_spec(venue, trader_id, [stop_probe()])
    node = await nodes.start(spec)
    await node.wait_ready()

    async def stop_accepted_everywhere() -> bool:
        algos = (await venue.admin.orders("BTCUSDT", client_order_id=STOP_ID))["algo_orders"]
        if not algos or algos[0]["algoStatus"] != "NEW":
            return False
        # OrderInitialized, OrderSubmitted, OrderAccepted: the node wrote the accepted stop.
        return int(await redis_client.llen(f"trader-{trader_id}:orders:{STOP_ID}")) >= 3

    await until("the stop is accepted at the venue and in the cache", stop_accepted_everywhere)
    return spec, node


async def request_seq(venue: EmulatorProcess) -> int:
    entries = await venue.admin.requests()
    return max((int(e["seq"]) for e in entries), default=0)


async def per_symbol_calls(venue: EmulatorProcess, since: int) -> dict[tuple[str, str], int]:
    """(path, symbol) -> how many times the node asked since `since` (reconciliation's history calls)."""
    counts: dict[tuple[str, str], int] = {}
    for entry in await venue.admin.requests(since=since):
        if entry["path"] in ("/fapi/v1/userTrades", "/fapi/v1/allOrders", "/fapi/v1/allAlgoOrders"):
            key = (entry["path"], entry["params"].get("symbol", ""))
            counts[key] = counts.get(key, 0) + 1
    return counts


async def redis_dump(redis_client: aioredis.Redis, pattern: str) -> dict[bytes, bytes | None]:
    """Every key matching `pattern` with its serialized value (DUMP), to prove nothing changed."""
    keys = sorted([k async for k in redis_client.scan_iter(match=pattern)])
    return {k: await redis_client.dump(k) for k in keys}
