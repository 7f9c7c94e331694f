"""Reversal orders (one order that closes a position and opens the opposite one) across kill -9 and restarts.

Regression for issue 12. A reversal that swept two price levels is two venue trades with one transaction
time; nautilus' partial-window fill adjustment then split the fill history at the wrong place and reported
the next reversal (one trade of 0.020) as filled 0.010. The cache held 0.020, nautilus refused the report and
every start failed. Each test here kills the node around a reversal and restarts it several times; every
start must reach READY with the cache equal to the venue: the net position, each order's fills (trade ids and
quantities), exactly one stop-loss and take-profit, nothing invented, no client order id accepted twice.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from tests.recovery.conftest import NodeLauncher, NodeProcess, node_spec
from tests.recovery.reversal_checks import (
    LONG_PX,
    SHORT_PX,
    SIZE,
    SYMBOL,
    cache_differences,
    open_protective,
    reverser,
    settled,
    trades_subscribed,
    venue_position,
)
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

RESTARTS = 3


class KillPoint(enum.Enum):
    BEFORE_FILL_SEEN = "the venue filled the reversal, the node never saw it (user stream frozen)"
    AFTER_SETTLED = "the reversal filled and its new stops are at the venue"
    DURING_RECOVERY = "the next start is killed again as soon as its cache is loaded"


async def start_trading(nodes: NodeLauncher, venue: EmulatorProcess, spec: dict[str, Any]) -> NodeProcess:
    """A node that is READY and receives trade prints (a print before its subscription reaches the venue is
    not delivered to it, as on the real venue)."""
    node = await nodes.start(spec)
    await node.wait_ready()
    await until("the node's trade stream is subscribed", lambda: trades_subscribed(venue))
    return node


async def kill(venue: EmulatorProcess, node: NodeProcess) -> None:
    await node.kill()

    async def unsubscribed() -> bool:
        return not await trades_subscribed(venue)

    await until("the killed node's trade stream is gone", unsubscribed)


async def wait_settled(node: NodeProcess, venue: EmulatorProcess, target: Decimal) -> None:
    try:
        await until(f"the venue holds {target} with one SL and one TP", lambda: settled(venue, target))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log ---\n{node.log_tail(80)}") from None


async def start_in_position(
    nodes: NodeLauncher, venue: EmulatorProcess, trader_id: str, target: Decimal
) -> tuple[dict[str, Any], NodeProcess]:
    """A reversing node, READY and holding `target` (SIZE long, -SIZE short) with its stop-loss and
    take-profit at the venue; its spec and process."""
    await venue.admin.set_price(SYMBOL, "3000.00")
    spec = node_spec(venue, trader_id, [reverser()])
    node = await start_trading(nodes, venue, spec)
    await venue.admin.set_price(SYMBOL, LONG_PX if target > 0 else SHORT_PX)
    await wait_settled(node, venue, target)
    return spec, node


async def restart_and_check(
    nodes: NodeLauncher, venue: EmulatorProcess, node: NodeProcess, spec: dict[str, Any], trader_id: str
) -> NodeProcess:
    await kill(venue, node)
    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, await venue_position(venue))
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    assert "order_history" not in node.phase("reconciled").get("X_DETAIL", "")  # type: ignore[union-attr]
    return node


@pytest.mark.parametrize(
    ("level_qty", "kill_point"),
    [
        (None, KillPoint.BEFORE_FILL_SEEN),  # one trade
        (SIZE, KillPoint.AFTER_SETTLED),  # close and open: two trades, one transaction time (issue 12)
        (SIZE, KillPoint.BEFORE_FILL_SEEN),
        (Decimal("0.005"), KillPoint.DURING_RECOVERY),  # four trades
    ],
    ids=["one-trade-unseen", "two-trades-settled", "two-trades-unseen", "four-trades-recovering"],
)
async def test_a_reversal_comes_back_exact_after_kills_around_it(
    nodes: NodeLauncher,
    venue: EmulatorProcess,
    redis_client: aioredis.Redis,
    trader_id: str,
    level_qty: Decimal | None,
    kill_point: KillPoint,
) -> None:
    await venue.admin.set_ratelimit(weight_per_minute=20_000)  # many restarts within one minute
    spec, node = await start_in_position(nodes, venue, trader_id, SIZE)

    await venue.admin.set_depth(SYMBOL, level_qty)
    if kill_point is KillPoint.BEFORE_FILL_SEEN:
        await venue.admin.freeze_streams("user")
    await venue.admin.set_price(SYMBOL, SHORT_PX)  # SELL 0.020
    if kill_point is KillPoint.BEFORE_FILL_SEEN:

        async def filled() -> bool:
            return await venue_position(venue) == -SIZE

        await until("the venue filled the reversal", filled)
        await kill(venue, node)
        await venue.admin.freeze_streams("user", frozen=False)
    else:
        await wait_settled(node, venue, -SIZE)
        await kill(venue, node)
    await venue.admin.set_depth(SYMBOL, None)
    if kill_point is KillPoint.DURING_RECOVERY:
        loading = await nodes.start(spec)
        await loading.wait_until("cache_loaded", lambda: "cache_loaded" in loading.phases())
        node = loading
    else:
        node = await start_trading(nodes, venue, spec)
        await wait_settled(node, venue, -SIZE)
    for _ in range(RESTARTS):
        node = await restart_and_check(nodes, venue, node, spec, trader_id)

    # And back in one trade: after a swept reversal, this is the order nautilus reported half-filled.
    await venue.admin.set_price(SYMBOL, LONG_PX)
    await wait_settled(node, venue, SIZE)
    for _ in range(RESTARTS):
        node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def test_a_partial_reversal_completed_while_the_node_is_down(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """A resting reversal order fills past zero (0.015 of 0.020: long 0.010 -> short 0.005), the node is
    killed, the rest fills while it is down; every restart comes back exact."""
    await venue.admin.set_ratelimit(weight_per_minute=20_000)
    await venue.admin.set_price(SYMBOL, "3000.00")
    spec = node_spec(venue, trader_id, [reverser(resting_offset="5")])
    node = await start_trading(nodes, venue, spec)
    await venue.admin.set_price(SYMBOL, LONG_PX)  # a LIMIT BUY 0.010 at 3005.00 rests; fill it
    entry = await resting_order(venue)
    await venue.admin.fill(SYMBOL, order_id=entry["orderId"])
    await wait_settled(node, venue, SIZE)

    await venue.admin.set_price(SYMBOL, SHORT_PX)  # a LIMIT SELL 0.020 at 2995.00 rests
    reversal = await resting_order(venue)
    await venue.admin.fill(SYMBOL, order_id=reversal["orderId"], qty="0.015")
    await wait_settled(node, venue, Decimal("-0.005"))
    await kill(venue, node)
    await venue.admin.fill(SYMBOL, order_id=reversal["orderId"])  # the last 0.005, while the node is down
    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, -SIZE)
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    for _ in range(RESTARTS):
        node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def resting_order(venue: EmulatorProcess) -> dict[str, Any]:
    async def one_resting() -> bool:
        return len(await resting(venue)) == 1

    await until("the strategy's order rests at the venue", one_resting)
    [order] = await resting(venue)
    return order


async def resting(venue: EmulatorProcess) -> list[dict[str, Any]]:
    orders = (await venue.admin.orders(SYMBOL))["orders"]
    return [o for o in orders if o["status"] in ("NEW", "PARTIALLY_FILLED") and o["type"] == "LIMIT"]


async def add_cached_fill(
    redis_client: aioredis.Redis, trader_id: str, client_order_id: str, qty: str
) -> None:
    """Corrupt the cache the way a duplicated fill would: the order's event list gets one more OrderFilled
    (a trade the venue never made); the position's own record is left as it was."""
    import msgspec
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.serialization.serializer import MsgSpecSerializer

    serializer = MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True)
    key = f"trader-{trader_id}:orders:{client_order_id}"
    last = serializer.deserialize(await redis_client.lindex(key, -1))
    assert isinstance(last, OrderFilled)
    values = OrderFilled.to_dict(last)
    values.update(trade_id="999999999", last_qty=qty, event_id=UUID4().value)
    await redis_client.rpush(key, serializer.serialize(OrderFilled.from_dict(values)))


async def test_an_order_the_venue_reports_shorter_than_the_cache_never_blocks_recovery(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The cache holds a fill of an order that the venue does not report (a duplicated fill); the positions
    agree. nautilus would refuse the whole reconciliation at every start. The node withholds that order's
    report, reaches READY, and reports the order, both fill lists and `kept_cache` as an order_history
    discrepancy; a second start does the same instead of looping."""
    await venue.admin.set_price(SYMBOL, "3000.00")
    spec = node_spec(venue, trader_id, [reverser(resting_offset="5")])
    node = await start_trading(nodes, venue, spec)
    await venue.admin.set_price(SYMBOL, LONG_PX)  # LIMIT BUY 0.010 rests at 3005.00
    entry = await resting_order(venue)
    await venue.admin.fill(SYMBOL, order_id=entry["orderId"], qty="0.005")
    await wait_settled(node, venue, Decimal("0.005"))
    await kill(venue, node)
    await add_cached_fill(redis_client, trader_id, entry["clientOrderId"], "0.003")

    for _ in range(2):
        node = await start_trading(nodes, venue, spec)
        await wait_settled(node, venue, Decimal("0.005"))
        reconciled = node.detail("reconciled")
        [found] = [d for d in reconciled["discrepancies"] if d["kind"] == "order_history"]
        assert found == {
            "venue": "emu",
            "instrument": "ETHUSDT-PERP.BINANCE",
            "kind": "order_history",
            "cached_qty": "0.008",
            "venue_qty": "0.005",
            "resolved": True,
            "resolution": "kept_cache",
            "client_order_id": entry["clientOrderId"],
            "venue_order_id": str(entry["orderId"]),
        }
        [withheld] = reconciled["history_mismatches"]
        assert withheld["cached_trades"][-1] == "999999999"
        assert "999999999" not in withheld["venue_trades"] and len(withheld["venue_trades"]) == 1
        assert reconciled["result"] == "resolved"
        await kill(venue, node)


@pytest.mark.parametrize("level_qty", [None, SIZE], ids=["one-trade", "two-trades"])
async def test_a_kill_between_the_order_write_and_the_position_write_is_repaired_from_the_order(
    nodes: NodeLauncher,
    venue: EmulatorProcess,
    redis_client: aioredis.Redis,
    trader_id: str,
    level_qty: Decimal | None,
) -> None:
    """nautilus writes a fill to the order, then to the position. Killed in between, the cache holds the
    reversal on the order and the old short on the position. The node applies the order's own fill to the
    position (the venue's position confirms it) instead of letting nautilus invent one."""
    spec, node = await start_in_position(nodes, venue, trader_id, -SIZE)
    position_key = f"trader-{trader_id}:positions:ETHUSDT-PERP.BINANCE-ReversingProbe-001"
    before_reversal = await redis_client.dump(position_key)
    assert before_reversal is not None
    await venue.admin.set_depth(SYMBOL, level_qty)
    await venue.admin.set_price(SYMBOL, LONG_PX)  # BUY 0.020
    await wait_settled(node, venue, SIZE)
    await kill(venue, node)
    await redis_client.restore(position_key, 0, before_reversal, replace=True)  # the position write lost

    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, SIZE)
    reconciled = node.detail("reconciled")
    reversal_trades = [t["id"] for t in await venue.admin.trades(SYMBOL) if t["side"] == "BUY"]
    assert sorted(r["trade_id"] for r in reconciled["repaired_fills"]) == sorted(map(str, reversal_trades))
    assert [(d["kind"], d["resolution"]) for d in reconciled["discrepancies"]] == [
        ("side", "order_fills_applied")
    ]
    assert reconciled.get("actions", []) == []  # nothing invented
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def test_a_kill_between_a_reversals_close_and_reopen_is_repaired_from_the_order(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """nautilus applies a reversal to a NETTING position in two writes: the close (the position's record gets
    the closing part of the fill, and is closed), then the re-open (the record is replaced by the new
    lifecycle). Killed in between, the cache holds the order filled, the position closed, and the venue the
    new position; nautilus' position reconciliation then did nothing (the closed position already holds the
    trade) and every start failed its post-check (found by the kill drill)."""
    import msgspec
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.serialization.serializer import MsgSpecSerializer

    spec, node = await start_in_position(nodes, venue, trader_id, -SIZE)
    position_id = "ETHUSDT-PERP.BINANCE-ReversingProbe-001"
    position_key = f"trader-{trader_id}:positions:{position_id}"
    short = await redis_client.dump(position_key)
    assert short is not None
    await venue.admin.set_price(SYMBOL, LONG_PX)  # BUY 0.020: closes the short, opens a long
    await wait_settled(node, venue, SIZE)
    await kill(venue, node)

    # The cache as the kill left it: the short's record plus the closing half of the reversal, closed.
    serializer = MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True)
    [reversal] = [o for o in (await venue.admin.orders(SYMBOL))["orders"] if o["side"] == "BUY"]
    fill = serializer.deserialize(
        await redis_client.lindex(f"trader-{trader_id}:orders:{reversal['clientOrderId']}", -1)
    )
    assert isinstance(fill, OrderFilled)
    closing = OrderFilled.to_dict(fill)
    closing.update(last_qty=str(SIZE), event_id=UUID4().value)
    await redis_client.restore(position_key, 0, short, replace=True)
    await redis_client.rpush(position_key, serializer.serialize(OrderFilled.from_dict(closing)))
    await redis_client.srem(f"trader-{trader_id}:index:positions_open", position_id)
    await redis_client.sadd(f"trader-{trader_id}:index:positions_closed", position_id)

    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, SIZE)
    [repaired] = node.detail("reconciled")["repaired_fills"]
    assert (repaired["client_order_id"], repaired["open_half"]) == (reversal["clientOrderId"], str(SIZE))
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def test_a_kill_before_a_new_position_was_written_is_repaired_from_the_order(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """A strategy's first order filled, nautilus wrote the order and was killed before it wrote the position
    the fill opened: the cache holds a filled order and no position at all. nautilus' reconciliation left
    the position at 0 and every start failed its post-check (found by `fleet drill`, seed 78)."""
    # SELL 0.010: the node's first position
    spec, node = await start_in_position(nodes, venue, trader_id, -SIZE)
    await kill(venue, node)
    position_id = "ETHUSDT-PERP.BINANCE-ReversingProbe-001"
    await redis_client.delete(f"trader-{trader_id}:positions:{position_id}")  # the position write lost
    async for key in redis_client.scan_iter(match=f"trader-{trader_id}:index:*"):
        if await redis_client.type(key) == b"set":
            await redis_client.srem(key, position_id)

    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, -SIZE)
    reconciled = node.detail("reconciled")
    [opening] = [t["id"] for t in await venue.admin.trades(SYMBOL) if t["side"] == "SELL"]
    assert [r["trade_id"] for r in reconciled["repaired_fills"]] == [str(opening)]
    assert reconciled.get("actions", []) == []  # nothing invented
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def test_a_stop_indexed_without_its_record_comes_back_from_the_venue(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """A kill while nautilus wrote a new stop left its `index:order_position` entry and no `orders:` record.
    Reconciliation brought the stop back from the venue and nautilus refused to add it ("already contained in
    '_index_order_position'") on every start until the daemon quarantined the node (`fleet drill`, seed
    1207). The node drops the stale entry first: READY, with the venue's stop, nothing placed twice."""
    # SELL 0.010, then its stop-loss and take-profit
    spec, node = await start_in_position(nodes, venue, trader_id, -SIZE)
    await kill(venue, node)
    [stop] = [a["clientAlgoId"] for a in await open_protective(venue) if a["clientAlgoId"].startswith("SL")]
    prefix = f"trader-{trader_id}:"
    assert await redis_client.hexists(f"{prefix}index:order_position", stop)
    await redis_client.delete(f"{prefix}orders:{stop}")  # the record's write lost, its index entry kept
    async for key in redis_client.scan_iter(match=f"{prefix}index:*"):
        if await redis_client.type(key) == b"set":
            await redis_client.srem(key, stop)

    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, -SIZE)
    assert [
        a["clientAlgoId"] for a in await open_protective(venue) if a["clientAlgoId"].startswith("SL")
    ] == [stop]
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    node = await restart_and_check(nodes, venue, node, spec, trader_id)


async def test_a_kill_between_a_swept_reversals_two_trades_is_repaired_from_the_order_and_the_venue(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """A reversal swept two levels: one trade closes the short, the next opens the long. Killed after nautilus
    wrote the first trade to the order and before it wrote anything else, the cache holds the order with one
    fill and the old short. The repair declined (that fill alone does not make the venue's long) and nautilus
    invented a fill on an EXTERNAL order (the reversal drill, seed 1207). The venue's second trade of the same
    order, which reconciliation applies next, now counts: the first goes to the position, nothing invented."""
    spec, node = await start_in_position(nodes, venue, trader_id, -SIZE)
    prefix = f"trader-{trader_id}:"
    position_key = f"{prefix}positions:ETHUSDT-PERP.BINANCE-ReversingProbe-001"
    before_reversal = await redis_client.dump(position_key)
    assert before_reversal is not None
    await venue.admin.set_depth(SYMBOL, SIZE)
    await venue.admin.set_price(SYMBOL, LONG_PX)  # BUY 0.020: two trades
    await wait_settled(node, venue, SIZE)
    await kill(venue, node)
    await venue.admin.set_depth(SYMBOL, None)
    [reversal] = [o for o in (await venue.admin.orders(SYMBOL))["orders"] if o["side"] == "BUY"]
    closing, _opening = sorted(t["id"] for t in await venue.admin.trades(SYMBOL) if t["side"] == "BUY")
    cid = reversal["clientOrderId"]
    await redis_client.restore(position_key, 0, before_reversal, replace=True)  # the position write lost
    await redis_client.rpop(f"{prefix}orders:{cid}")  # and the order's second fill
    await redis_client.smove(f"{prefix}index:orders_closed", f"{prefix}index:orders_open", cid)

    node = await start_trading(nodes, venue, spec)
    await wait_settled(node, venue, SIZE)
    reconciled = node.detail("reconciled")
    assert [r["trade_id"] for r in reconciled.get("repaired_fills", [])] == [str(closing)], node.log_tail(80)
    assert reconciled.get("actions", []) == []  # nothing invented
    assert await cache_differences(venue, trader_id) == [], node.log_tail(80)
    node = await restart_and_check(nodes, venue, node, spec, trader_id)
