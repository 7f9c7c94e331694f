"""Restart scenarios with a real node process, the emulator and Redis: what comes back equals the venue.

Each defect test runs with our exec client and, as a strict xfail, with nautilus' stock client: that the stock
run fails proves the emulator reproduces the upstream defect instead of hiding it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from tests.recovery.cache_reader import read_cache, venue_positions, venue_realized, venue_wallet
from tests.recovery.conftest import BTC, NodeLauncher
from tests.recovery.scenarios import (
    ENTRY_ID,
    ENTRY_PX,
    STOP_ID,
    open_position_with_stop,
    per_symbol_calls,
    request_seq,
    until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

STOCK_DEFECT = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="nautilus 1.231 stock exec client"
)
CLIENTS = [pytest.param("fleet", id="fleet"), pytest.param("stock", id="stock", marks=STOCK_DEFECT)]


@pytest.mark.parametrize("client", CLIENTS)
async def test_plain_restart_fetches_each_symbol_once_and_invents_nothing(
    client: str, venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Defect 1: a plain restart, nothing changed at the venue."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    since = await request_seq(venue)

    node = await nodes.start(spec, "--exec-client", client)
    await node.wait_until(
        "reconciliation ended", lambda: bool({"reconciled", "reconcile_failed"} & set(node.phases()))
    )
    calls = await per_symbol_calls(venue, since)
    assert calls == {
        ("/fapi/v1/userTrades", "BTCUSDT"): 1,
        ("/fapi/v1/allOrders", "BTCUSDT"): 1,
        ("/fapi/v1/allAlgoOrders", "BTCUSDT"): 1,
    }
    await node.wait_ready()
    detail = node.detail("reconciled")
    assert detail["discrepancies"] == [] and detail["result"] == "matched"
    assert detail["positions"] == [{"instrument": BTC, "side": "LONG", "quantity": "0.010"}]
    assert detail["open_orders"] == 1
    assert await node.terminate() == 0

    cached = read_cache(trader_id)
    assert cached.synthetic_orders() == {}
    assert sorted(cached.orders) == [ENTRY_ID, STOP_ID]
    assert cached.orders[STOP_ID].status == "ACCEPTED"
    [position] = cached.open_positions()
    truth = (await venue_positions(venue))[BTC]
    assert (position.side, position.signed_qty, position.avg_px_open) == (
        "LONG",
        truth.signed_qty,
        truth.entry_price,
    )
    assert position.realized_pnl == await venue_realized(venue, "BTCUSDT")
    assert cached.balances["USDT"] == await venue_wallet(venue)


@pytest.mark.parametrize("client", CLIENTS)
async def test_stop_triggered_while_down_ends_filled_at_the_venue_price(
    client: str, venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Defect 2: the stop (an algo order) triggered while the node was down."""
    spec, first = await open_position_with_stop(nodes, venue, redis_client, trader_id)
    await first.kill()
    await venue.admin.set_price("BTCUSDT", "54900.0")

    async def stop_finished() -> bool:
        algos = (await venue.admin.orders("BTCUSDT", client_order_id=STOP_ID))["algo_orders"]
        return bool(algos) and algos[0]["algoStatus"] == "FINISHED"

    await until("the stop filled at the venue", stop_finished)
    assert await venue_positions(venue) == {}

    node = await nodes.start(spec, "--exec-client", client)
    await node.wait_ready()
    assert await node.terminate() == 0

    cached = read_cache(trader_id)
    assert cached.synthetic_orders() == {}
    stop = cached.orders[STOP_ID]
    assert stop.status == "FILLED"
    assert stop.avg_px == Decimal("54900.0")
    assert [f.reconciliation for f in stop.fills] == [True]  # found by reconciliation, not seen live
    assert cached.open_positions() == []
    [position] = cached.positions
    assert position.realized_pnl == await venue_realized(venue, "BTCUSDT")
    assert cached.balances["USDT"] == await venue_wallet(venue)
    assert [o for o in cached.orders.values() if o.status in ("ACCEPTED", "SUBMITTED", "TRIGGERED")] == []
    assert cached.orders[ENTRY_ID].avg_px == ENTRY_PX


async def test_an_order_the_venue_never_saw_is_rejected_before_strategies_start(
    venue: EmulatorProcess, nodes: NodeLauncher, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Crash after nautilus recorded the stop as SUBMITTED but before the venue processed it: nautilus would
    leave it in flight for 20+ s (its continuous check); the node resolves it as REJECTED during
    reconciliation, so a strategy can place its stop again under the same id before it trades."""
    from tests.recovery.conftest import node_spec
    from tests.recovery.scenarios import stop_probe

    await venue.admin.hang("/fapi/v1/algoOrder", method="POST", hang_ms=120_000, count=None)
    spec = node_spec(venue, trader_id, [stop_probe()])
    first = await nodes.start(spec)
    await first.wait_ready()

    async def stop_submitted() -> bool:
        return int(await redis_client.llen(f"trader-{trader_id}:orders:{STOP_ID}")) >= 2

    await until("the stop is SUBMITTED in the cache", stop_submitted)
    await first.kill()
    await venue.admin.clear_faults()
    assert (await venue.admin.orders("BTCUSDT", client_order_id=STOP_ID))["algo_orders"] == []

    node = await nodes.start(spec)
    await node.wait_ready()
    assert node.detail("reconciled")["rejected_inflight"] == [STOP_ID]
    assert await node.terminate() == 0
    cached = read_cache(trader_id)
    assert cached.orders[STOP_ID].status == "REJECTED"
    assert cached.synthetic_orders() == {}
    assert [p.signed_qty for p in cached.open_positions()] == [Decimal("0.010")]
