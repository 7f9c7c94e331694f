"""Cache compaction: the pure decisions (table tests), then against a private redis-server with caches that
real nautilus 1.231 wrote and reads back (tests/supervisor/nautilus_cache.py, in child processes)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from supervisor.cache_history import (
    AccountRecord,
    HistoryDecodeError,
    OrderRecord,
    PositionRecord,
    parse_ts,
    read_account,
    read_order,
    read_position,
)
from supervisor.cache_keys import TraderKeys, position_archive_id
from supervisor.compaction import (
    CompactionBusy,
    CompactionError,
    CompactionPolicy,
    archive_summary,
    compact_trader,
    list_archived,
    restore,
)
from supervisor.compaction_plan import OrderIndex, account_cut, plan_compaction
from supervisor.compaction_scripts import digest, frame, unframe
from supervisor.config.builtins import from_builtins
from tests.supervisor.nautilus_cache import BASE_TS_NS, REPO, Scenario, load, populate, reconcile
from tests.supervisor.private_redis import free_port, private_redis

S = 1_000_000_000  # one second in ns
# "Now" for compactions in these tests: a year after the written history (dated 2026-01-01), so that the
# venue window keeps none of it unless a test says otherwise; independent of this machine's clock.
LATER = BASE_TS_NS + 365 * 86_400 * S

# -- pure: decoding ---------------------------------------------------------------------------------------


def ev(kind: str, **fields: Any) -> bytes:
    """An event as nautilus' msgpack serializer writes it (timestamps as decimal strings)."""
    fields.setdefault("ts_event", str(BASE_TS_NS))
    fields.setdefault("ts_init", str(BASE_TS_NS))
    return msgspec.msgpack.encode({"type": kind, **fields})


def init(cid: str, qty: str = "1.0", **fields: Any) -> bytes:
    return ev(
        "OrderInitialized",
        client_order_id=cid,
        instrument_id="BTCUSDT-PERP.BINANCE",
        strategy_id="S-001",
        quantity=qty,
        **fields,
    )


def fill(cid: str, qty: str, side: str = "BUY", ts: int = BASE_TS_NS, pid: str = "P-1") -> bytes:
    return ev(
        "OrderFilled",
        client_order_id=cid,
        instrument_id="BTCUSDT-PERP.BINANCE",
        strategy_id="S-001",
        last_qty=qty,
        order_side=side,
        position_id=pid,
        ts_event=str(ts),
        ts_init=str(ts),
    )


@pytest.mark.parametrize(
    ("events", "closed"),
    [
        ([init("A")], False),  # INITIALIZED: neither open nor closed, never archived
        ([init("A"), ev("OrderSubmitted"), ev("OrderAccepted")], False),
        ([init("A"), ev("OrderAccepted"), ev("OrderCanceled")], True),
        ([init("A"), ev("OrderRejected")], True),
        ([init("A"), ev("OrderDenied")], True),
        ([init("A"), ev("OrderAccepted"), ev("OrderExpired")], True),
        ([init("A"), ev("OrderAccepted"), fill("A", "0.4")], False),  # partially filled: open
        ([init("A"), ev("OrderAccepted"), fill("A", "0.4"), fill("A", "0.6")], True),
        ([init("A"), ev("OrderUpdated", quantity="0.4"), fill("A", "0.4")], True),  # quantity reduced
        ([init("A"), ev("OrderAccepted"), ev("OrderCanceled"), ev("OrderPendingCancel")], False),
    ],
)
def test_read_order_decides_closed_from_events(events: list[bytes], closed: bool) -> None:
    assert read_order("A", events).closed is closed


def test_read_order_collects_links_and_times() -> None:
    events = [
        init("A", order_list_id="OL-1", linked_order_ids=["B", "C"], parent_order_id="P", exec_spawn_id="X"),
        fill("A", "1.0", ts=BASE_TS_NS + 5 * S, pid="P-9"),
    ]
    record = read_order("A", events)
    assert record.group_refs == {"B", "C", "P", "list:OL-1", "spawn:X"}
    assert record.position_ids == {"P-9"}
    assert (record.ts_first, record.ts_last, record.events) == (BASE_TS_NS, BASE_TS_NS + 5 * S, 2)


def test_read_order_accepts_json_and_iso_timestamps() -> None:
    events = [
        msgspec.json.encode(
            {
                "type": "OrderInitialized",
                "client_order_id": "A",
                "quantity": "1",
                "ts_event": "2026-01-01T00:00:00.000000001Z",
                "ts_init": 1_767_225_600_000_000_002,
            }
        ),
        msgspec.json.encode({"type": "OrderCanceled", "ts_event": "2026-01-01T00:00:01Z", "ts_init": "1"}),
    ]
    record = read_order("A", events)
    assert record.closed
    assert record.ts_first == BASE_TS_NS + 1  # the earlier of the first event's two timestamps
    assert record.ts_last == BASE_TS_NS + S  # the latest timestamp on any event


@pytest.mark.parametrize(
    "events",
    [
        [],
        [b"\xc1garbage"],
        [ev("OrderAccepted")],  # does not start with OrderInitialized
        [init("B")],  # another order's events
        [init("A", qty="one")],
        [init("A"), ev("OrderCanceled", ts_event="yesterday")],
    ],
)
def test_read_order_rejects_what_nautilus_did_not_write(events: list[bytes]) -> None:
    with pytest.raises(HistoryDecodeError):
        read_order("A", events)


def test_read_position_is_closed_when_fills_net_to_zero() -> None:
    opened = [fill("A", "0.010"), fill("B", "0.005")]
    assert not read_position("P-1", opened).closed
    record = read_position("P-1", [*opened, fill("C", "0.015", side="SELL", ts=BASE_TS_NS + 9 * S)])
    assert record.closed
    assert record.client_order_ids == {"A", "B", "C"}
    assert (record.ts_opened, record.ts_last) == (BASE_TS_NS, BASE_TS_NS + 9 * S)
    with pytest.raises(HistoryDecodeError):
        read_position("P-1", [ev("OrderCanceled")])


def test_read_account_lists_currencies_per_event() -> None:
    def state(*currencies: str, margins: int = 0) -> bytes:
        return ev(
            "AccountState",
            balances=[{"type": "AccountBalance", "currency": c, "total": "1"} for c in currencies],
            margins=[{"initial": "1"}] * margins,
        )

    record = read_account("ACC", [state("USDT"), state("USDT", "BTC"), state(), state(margins=1)])
    assert record.currencies == (frozenset({"USDT"}), frozenset({"USDT", "BTC"}), frozenset(), frozenset())
    assert record.sets_state == (True, True, False, True)


def test_parse_ts_forms() -> None:
    assert parse_ts(5) == 5
    assert parse_ts("1767225600000000000") == BASE_TS_NS
    assert parse_ts("2026-01-01T00:00:00.5Z") == BASE_TS_NS + S // 2


# -- pure: framing and keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("events", [[], [b""], [b"a", b"", b"\x00\xff" * 300]])
def test_frame_round_trips_bytes_exactly(events: list[bytes]) -> None:
    assert unframe(frame(events)) == events
    assert len(digest(events)) == 40


def test_unframe_rejects_truncated_records() -> None:
    with pytest.raises(ValueError, match="truncated"):
        unframe(frame([b"abc"])[:-1])


def test_trader_keys_parse_only_the_shapes_nautilus_loads() -> None:
    keys = TraderKeys("EMA-001")
    assert keys.order("O-1") == "trader-EMA-001:orders:O-1"
    assert keys.order_id("trader-EMA-001:orders:O-1") == "O-1"
    assert keys.order_id("trader-EMA-001:orders:O-1:x") is None
    assert keys.order_id("trader-EMA-0011:orders:O-1") is None
    assert keys.order_id("trader-EMA-001:orders:") is None
    assert keys.position_id("trader-EMA-001:positions:P-1") == "P-1"
    assert keys.archive_prefix == "fleet-archive:EMA-001:"
    assert position_archive_id("P-1", 7) == "P-1@7"
    for bad in ("", "A*", "A:B", "A?", "A[1]"):
        with pytest.raises(ValueError, match="trader_id"):
            TraderKeys(bad)


def test_policy_decodes_like_a_fleet_yaml_section() -> None:
    policy = from_builtins({"keep_closed": 5, "venue_window": "1h"}, CompactionPolicy)
    assert (policy.enabled, policy.keep_closed, policy.venue_window) == (True, 5, 3600.0)
    with pytest.raises(msgspec.ValidationError):
        from_builtins({"keep_closed": -1}, CompactionPolicy)
    with pytest.raises(msgspec.ValidationError):
        from_builtins({"keep_closd": 1}, CompactionPolicy)


# -- pure: the plan ---------------------------------------------------------------------------------------


def order(
    cid: str,
    t: int,
    *,
    closed: bool = True,
    pids: frozenset[str] = frozenset(),
    refs: frozenset[str] = frozenset(),
) -> OrderRecord:
    return OrderRecord(
        client_order_id=cid,
        closed=closed,
        ts_first=t,
        ts_last=t,
        instrument_id="I",
        strategy_id="S",
        position_ids=pids,
        group_refs=refs,
        events=3,
    )


def position(pid: str, opened: int, last: int, cids: set[str], *, closed: bool = True) -> PositionRecord:
    return PositionRecord(
        position_id=pid,
        closed=closed,
        ts_opened=opened,
        ts_last=last,
        instrument_id="I",
        strategy_id="S",
        client_order_ids=frozenset(cids),
        events=len(cids),
    )


def index_for(
    orders: dict[str, OrderRecord], positions: dict[str, PositionRecord], **extra: Any
) -> OrderIndex:
    """The index nautilus would hold for these records (tests then make it disagree on purpose)."""
    fields: dict[str, Any] = {
        "orders_open": frozenset(c for c, o in orders.items() if not o.closed),
        "orders_closed": frozenset(c for c, o in orders.items() if o.closed),
        "positions_open": frozenset(p for p, r in positions.items() if not r.closed),
        "positions_closed": frozenset(p for p, r in positions.items() if r.closed),
        "order_position": {c: next(iter(o.position_ids)) for c, o in orders.items() if o.position_ids},
    }
    fields.update(extra)
    return OrderIndex(**fields)


def hedging_history(n: int) -> tuple[dict[str, OrderRecord], dict[str, PositionRecord]]:
    """n closed round trips (entry + exit + canceled stop), then one open position with an open stop."""
    orders: dict[str, OrderRecord] = {}
    positions: dict[str, PositionRecord] = {}
    for i in range(n + 1):
        pid, t = f"P-{i}", i * 100
        is_open = i == n
        orders[f"E{i}"] = order(f"E{i}", t, pids=frozenset({pid}))
        orders[f"S{i}"] = order(f"S{i}", t + 50, closed=not is_open, pids=frozenset({pid}))
        cids = {f"E{i}"}
        if not is_open:
            orders[f"X{i}"] = order(f"X{i}", t + 50, pids=frozenset({pid}))
            cids.add(f"X{i}")
        positions[pid] = position(pid, t, t + 50, cids, closed=not is_open)
    return orders, positions


def test_plan_archives_closed_history_beyond_k_oldest_first() -> None:
    orders, positions = hedging_history(5)
    plan = plan_compaction(
        orders=orders,
        positions=positions,
        index=index_for(orders, positions),
        keep_closed_positions=2,
        keep_closed_orders=1,
    )
    assert plan.positions == ("P-0", "P-1", "P-2")
    # Orders of the kept positions P-3, P-4 and the open P-5 stay; of the rest, the latest closed one stays.
    archived = [cid for group in plan.order_groups for cid in group]
    assert archived == ["E0", "S0", "X0", "E1", "S1", "X1", "E2", "S2"]  # X2 is the most recent other
    assert plan.kept == {
        "positions_open": 1,
        "positions_recent": 2,
        "orders_open": 1,  # S5, the open position's stop
        "orders_of_kept_positions": 7,  # E3 S3 X3 E4 S4 X4 E5
        "orders_recent": 1,
    }


def test_plan_with_keep_zero_keeps_only_open_state() -> None:
    orders, positions = hedging_history(3)
    plan = plan_compaction(
        orders=orders,
        positions=positions,
        index=index_for(orders, positions),
        keep_closed_positions=0,
        keep_closed_orders=0,
    )
    assert set(plan.positions) == {"P-0", "P-1", "P-2"}
    stay = set(orders) - {c for g in plan.order_groups for c in g}
    assert stay == {"E3", "S3"}  # the open position's entry and its open stop


@pytest.mark.parametrize(
    ("extra", "stays"),
    [
        # nautilus' index says the position is open although its fills net to zero: it stays, with its orders
        ({"positions_open": frozenset({"P-0"})}, {"P-0", "E0", "X0", "S0"}),
        # not in index:positions_closed: stays
        ({"positions_closed": frozenset({"P-1", "P-2"})}, {"P-0", "E0", "X0", "S0"}),
        # an order closed by its events but open, in flight or emulated per the index: stays
        ({"orders_open": frozenset({"S0", "S3"})}, {"S0"}),
        ({"orders_inflight": frozenset({"S0"})}, {"S0"}),
        ({"orders_emulated": frozenset({"S0"})}, {"S0"}),
    ],
)
def test_plan_moves_nothing_the_index_does_not_agree_is_closed(
    extra: dict[str, Any], stays: set[str]
) -> None:
    orders, positions = hedging_history(3)
    plan = plan_compaction(
        orders=orders,
        positions=positions,
        index=index_for(orders, positions, **extra),
        keep_closed_positions=0,
        keep_closed_orders=0,
    )
    moved = set(plan.positions) | {c for g in plan.order_groups for c in g}
    assert not moved & stays
    assert moved  # the rest still goes


def test_plan_netting_keeps_only_the_open_round_trip_of_a_reused_position_id() -> None:
    # NETTING: one id for every round trip; nautilus rewrote the position's fills at the reopen (t=1000).
    orders = {
        "E-old": order("E-old", 100, pids=frozenset({"N"})),
        "X-old": order("X-old", 200, pids=frozenset({"N"})),
        "S-old": order("S-old", 200),  # its stop, canceled at the old close
        "E-new": order("E-new", 1000, pids=frozenset({"N"})),
        "S-new": order("S-new", 1000, closed=False),
        "TP-new": order("TP-new", 1100),  # a take-profit canceled during the open round trip
    }
    positions = {"N": position("N", 1000, 1000, {"E-new"}, closed=False)}
    index = index_for(
        orders,
        positions,
        order_position={c: "N" for c in ("E-old", "X-old", "S-old", "E-new", "S-new", "TP-new")},
    )
    plan = plan_compaction(
        orders=orders, positions=positions, index=index, keep_closed_positions=0, keep_closed_orders=0
    )
    assert plan.positions == ()
    assert sorted(c for g in plan.order_groups for c in g) == ["E-old", "S-old", "X-old"]


def test_plan_keeps_orders_the_venue_still_reports() -> None:
    orders, positions = hedging_history(5)
    plan = plan_compaction(
        orders=orders,
        positions=positions,
        index=index_for(orders, positions),
        keep_closed_positions=0,
        keep_closed_orders=0,
        venue_window_start_ns=250,  # orders closed at t >= 250 stay
    )
    archived = {c for g in plan.order_groups for c in g}
    assert archived == {"E0", "S0", "X0", "E1", "S1", "X1", "E2"}
    assert plan.kept["orders_in_venue_window"] == 8  # S2 X2 E3 S3 X3 E4 S4 X4


def test_plan_moves_contingency_groups_whole_or_not_at_all() -> None:
    orders = {
        # a closed bracket: all three go, as one unit
        "B1": order("B1", 10, refs=frozenset({"B2", "B3", "list:OL-1"})),
        "B2": order("B2", 11, refs=frozenset({"B1", "list:OL-1"})),
        "B3": order("B3", 12, refs=frozenset({"B1", "list:OL-1"})),
        # a parent whose child is still open: both stay
        "C1": order("C1", 20, refs=frozenset({"C2"})),
        "C2": order("C2", 21, closed=False, refs=frozenset({"C1"})),
        # a spawned child of an exec algorithm whose other child is unreadable: stays
        "D1": order("D1", 30, refs=frozenset({"spawn:D0"})),
        "D2": order("D2", 31, refs=frozenset({"spawn:D0", "D3"})),
    }
    plan = plan_compaction(
        orders=orders,
        positions={},
        index=index_for(orders, {}),
        unreadable_orders={"D3"},
        keep_closed_positions=0,
        keep_closed_orders=0,
    )
    assert plan.order_groups == (("B1", "B2", "B3"),)
    assert plan.kept["orders_grouped_with_kept"] == 3  # C1, D1, D2


def test_plan_keeps_everything_linked_to_an_unreadable_position() -> None:
    orders = {"E": order("E", 1), "F": order("F", 2)}
    plan = plan_compaction(
        orders=orders,
        positions={},
        index=index_for(orders, {}, order_position={"E": "P-bad"}),
        unreadable_positions={"P-bad"},
        keep_closed_positions=0,
        keep_closed_orders=0,
    )
    assert plan.order_groups == (("F",),)
    assert plan.kept["positions_unreadable"] == 1


@pytest.mark.parametrize(
    ("currencies", "sets_state", "keep", "cut"),
    [
        ([{"USDT"}] * 10, [True] * 10, 3, 6),  # events 1..6 go, 0 and the last 3 stay
        ([{"USDT"}] * 10, [True] * 10, 20, 0),
        ([{"USDT"}] * 2, [True] * 2, 1, 0),
        # BTC was last set by event 2: events 1 only may go
        ([{"USDT"}, {"USDT"}, {"USDT", "BTC"}, {"USDT"}, {"USDT"}], [True] * 5, 1, 1),
        # a currency only event 0 ever set stays with event 0: no limit
        ([{"USDT", "BNB"}, {"USDT"}, {"USDT"}, {"USDT"}], [True] * 4, 1, 2),
        # the last event sets nothing (no balances, no margins): the last one that does stays
        ([{"USDT"}] * 4 + [set()], [True] * 4 + [False], 1, 2),
    ],
)
def test_account_cut_keeps_what_rebuilds_the_same_balances(
    currencies: list[set[str]], sets_state: list[bool], keep: int, cut: int
) -> None:
    record = AccountRecord(
        account_id="A", currencies=tuple(frozenset(c) for c in currencies), sets_state=tuple(sets_state)
    )
    assert account_cut(record, keep_events=keep) == cut


# -- real Redis, real nautilus ------------------------------------------------------------------------


@pytest.fixture
def redis_port() -> Iterator[int]:
    with private_redis() as port:
        yield port


@pytest.fixture
async def client(redis_port: int) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis(port=redis_port, socket_timeout=5)
    yield connection
    await connection.aclose()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def snapshot(client: aioredis.Redis, pattern: str) -> dict[bytes | str, Any]:
    """Every matching key with its exact content (lists in order)."""
    out: dict[bytes | str, Any] = {}
    async for key in client.scan_iter(match=pattern, count=5000):
        kind = text(await client.type(key))
        if kind == "list":
            out[key] = ("list", tuple(await client.lrange(key, 0, -1)))
        elif kind == "set":
            out[key] = ("set", frozenset(await client.smembers(key)))
        elif kind == "hash":
            out[key] = ("hash", await client.hgetall(key))
        elif kind == "string":
            out[key] = ("string", await client.get(key))
        else:
            out[key] = (kind, None)
    return out


async def index_problems(client: aioredis.Redis, trader_id: str) -> list[str]:
    """Index entries without their item, and items missing from `index:orders` / `index:positions`."""
    keys = TraderKeys(trader_id)

    async def ids(pattern: str) -> set[str]:
        return {text(k).rpartition(":")[2] async for k in client.scan_iter(match=pattern)}

    async def members(name: str) -> set[str]:
        return {text(m) for m in await client.smembers(keys.index(f"index:{name}"))}

    orders, positions = await ids(keys.orders_pattern), await ids(keys.positions_pattern)
    problems = []
    for name in ("orders", "orders_open", "orders_closed", "orders_emulated", "orders_inflight", "order_ids"):
        problems += [f"{name}:{m}" for m in await members(name) - orders]
    for name in ("order_position", "order_client"):
        fields = {text(f) for f in await client.hkeys(keys.index(f"index:{name}"))}
        problems += [f"{name}:{f}" for f in fields - orders]
    for name in ("positions", "positions_open", "positions_closed"):
        problems += [f"{name}:{m}" for m in await members(name) - positions]
    problems += [f"unindexed order {c}" for c in orders - await members("orders")]
    problems += [f"unindexed position {p}" for p in positions - await members("positions")]
    return problems


def assert_loaded_cleanly(loaded: dict[str, Any]) -> None:
    assert loaded["integrity"], loaded["log"][-3000:]
    assert "[ERROR]" not in loaded["log"], loaded["log"][-3000:]
    assert "Integrity" not in loaded["log"] or "Integrity check passed" in loaded["log"]


def open_state(loaded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {p: loaded["positions"][p] for p in loaded["positions_open"]},
        {o: loaded["orders"][o] for o in loaded["orders_open"]},
    )


async def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.mark.slow
@pytest.mark.redis
async def test_compaction_keeps_open_state_and_a_real_node_loads_cleanly(
    client: aioredis.Redis, redis_port: int
) -> None:
    tid = "HEDGE-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=40, open_positions=3))
    before = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(before)
    assert await index_problems(client, tid) == []

    result = await compact_trader(
        client, tid, keep_closed=5, keep_account_events=3, wall_clock_ns=lambda: LATER
    )

    after = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(after)
    assert await index_problems(client, tid) == []
    assert result.complete and not result.skipped
    assert result.positions_archived == 35 and result.positions_seen == 43
    assert len(after["positions"]) == 3 + 5
    assert len(after["orders"]) == result.orders_seen - result.orders_archived
    assert open_state(after) == open_state(before)
    assert len(after["positions_open"]) == 3 and len(after["orders_open"]) == 3 * 2 + 1
    # Every item that stayed loads exactly as before (quantities, prices, PnL, events, linked orders).
    for cid, view in after["orders"].items():
        assert view == before["orders"][cid]
    for pid, view in after["positions"].items():
        assert view == before["positions"][pid]
    # The account comes back with the same balances and starting balances from fewer events.
    (account_before,) = before["accounts"].values()
    (account_after,) = after["accounts"].values()
    assert account_after["balances"] == account_before["balances"]
    assert account_after["starting"] == account_before["starting"]
    assert account_after["last_event"] == account_before["last_event"]
    assert account_after["events"] == 1 + 3 < account_before["events"]

    summary = await archive_summary(client, tid)
    assert (summary.orders, summary.positions) == (result.orders_archived, result.positions_archived)
    assert sum(summary.account_events.values()) == result.account_events_archived
    listed = await list_archived(client, tid)
    assert len(listed) == result.orders_archived + result.positions_archived
    assert [i.closed_ns for i in listed] == sorted(i.closed_ns for i in listed)
    assert {i.item_id for i in listed if i.kind == "position"} == set(before["positions"]) - set(
        after["positions"]
    )


@pytest.mark.slow
@pytest.mark.redis
async def test_netting_history_is_archived_around_the_open_position(
    client: aioredis.Redis, redis_port: int
) -> None:
    tid = "NET-001"
    scenario = Scenario(trader_id=tid, oms="NETTING", closed_positions=30, open_positions=2)
    await run_blocking(populate, redis_port, scenario)
    before = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(before)
    # NETTING reuses one position id per instrument: both are open again, history hangs off them.
    assert sorted(before["positions_open"]) == sorted(before["positions"])

    result = await compact_trader(client, tid, keep_closed=0, wall_clock_ns=lambda: LATER)

    after = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(after)
    assert await index_problems(client, tid) == []
    assert result.positions_archived == 0 and result.orders_archived > 100
    assert open_state(after) == open_state(before)
    for pid in after["positions_open"]:
        # The open round trip keeps the orders it was built from and its protective orders.
        assert set(after["positions"][pid]["orders"]) <= set(after["orders"])


@pytest.mark.slow
@pytest.mark.redis
async def test_restore_puts_everything_back_byte_for_byte(client: aioredis.Redis, redis_port: int) -> None:
    tid = "REST-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=25, open_positions=2))
    original = await snapshot(client, f"trader-{tid}:*")
    loaded = await run_blocking(load, redis_port, tid)
    await compact_trader(client, tid, keep_closed=0, keep_account_events=1, wall_clock_ns=lambda: LATER)
    assert await snapshot(client, f"trader-{tid}:*") != original

    # One item first, by its archive id, then the rest.
    (first,) = [i for i in await list_archived(client, tid, kind="position")][:1]
    partial = await restore(client, tid, positions=[first.archive_id], orders=["no-such-order"])
    assert (partial.positions, partial.orders) == (1, 0)
    assert partial.refused == {"no-such-order": "missing"}
    result = await restore(client, tid, everything=True)
    assert not result.refused

    assert await snapshot(client, f"trader-{tid}:*") == original
    assert await snapshot(client, f"fleet-archive:{tid}:*") == {}
    reloaded = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(reloaded)
    assert (reloaded["orders"], reloaded["positions"], reloaded["accounts"]) == (
        loaded["orders"],
        loaded["positions"],
        loaded["accounts"],
    )


@pytest.mark.slow
@pytest.mark.redis
async def test_compaction_is_idempotent(client: aioredis.Redis, redis_port: int) -> None:
    tid = "IDEM-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=20))
    first = await compact_trader(client, tid, keep_closed=3, wall_clock_ns=lambda: LATER)
    state = await snapshot(client, "*")
    second = await compact_trader(client, tid, keep_closed=3, wall_clock_ns=lambda: LATER)
    assert first.orders_archived > 0 and first.positions_archived == 17
    assert (second.orders_archived, second.positions_archived, second.account_events_archived) == (0, 0, 0)
    assert second.complete and not second.skipped
    assert await snapshot(client, "*") == state


@pytest.mark.slow
@pytest.mark.redis
async def test_kill_9_mid_compaction_leaves_a_cache_nautilus_loads(
    client: aioredis.Redis, redis_port: int
) -> None:
    tid = "KILL-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=150, open_positions=3))
    original = await snapshot(client, f"trader-{tid}:*")
    before = await run_blocking(load, redis_port, tid)
    keys = TraderKeys(tid)

    # One item per round trip, so that the kill lands mid-run; stop it (SIGSTOP) as soon as the archive has
    # grown, then kill -9 it.
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.supervisor.compaction_child"),
        *("--port", str(redis_port), "--trader-id", tid, "--now-ns", str(LATER)),
        cwd=REPO,
    )
    try:
        async with asyncio.timeout(60):
            while await client.hlen(keys.archived_orders) < 50:
                assert child.returncode is None, "the compaction finished before it could be interrupted"
                await asyncio.sleep(0.005)
        child.send_signal(signal.SIGSTOP)
        child.send_signal(signal.SIGKILL)
    finally:
        if child.returncode is None:
            child.kill()
        async with asyncio.timeout(10):
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    archived = await client.hlen(keys.archived_orders)
    assert 50 <= archived < 150 * 5  # interrupted: some, not all, of the closed orders moved

    interrupted = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(interrupted)
    assert await index_problems(client, tid) == []
    assert open_state(interrupted) == open_state(before)

    # The next run takes over (the dead run's lock expires; here we free it as the daemon's timeout would).
    await client.delete(keys.lock)
    result = await compact_trader(client, tid, keep_closed=0, wall_clock_ns=lambda: LATER)
    assert result.complete and result.orders_archived > 0
    finished = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(finished)
    assert open_state(finished) == open_state(before)
    # Nothing was lost on the way.
    await restore(client, tid, everything=True)
    assert await snapshot(client, f"trader-{tid}:*") == original


@pytest.mark.slow
@pytest.mark.redis
async def test_other_traders_and_other_keys_are_untouched(client: aioredis.Redis, redis_port: int) -> None:
    await run_blocking(populate, redis_port, Scenario(trader_id="ONE-001", closed_positions=10))
    await run_blocking(
        populate, redis_port, Scenario(trader_id="ONE-0011", closed_positions=10)
    )  # same prefix
    await client.hset("positions:ONE-001:binance:BTCUSDT-PERP.BINANCE", mapping={"qty": "1"})
    await client.set("trader-ONE-001:general:recovery-state", b"\x00\x01")
    others = await snapshot(client, "trader-ONE-0011:*")
    others.update(await snapshot(client, "positions:*"))
    general = await snapshot(client, "trader-ONE-001:general:*")

    result = await compact_trader(client, "ONE-001", keep_closed=0, wall_clock_ns=lambda: LATER)

    assert result.orders_archived > 0
    after = await snapshot(client, "trader-ONE-0011:*")
    after.update(await snapshot(client, "positions:*"))
    assert after == others
    assert await snapshot(client, "trader-ONE-001:general:*") == general
    assert await snapshot(client, "fleet-archive:ONE-0011:*") == {}


@pytest.mark.slow
@pytest.mark.redis
async def test_unknown_key_shapes_and_unreadable_items_are_left_alone(
    client: aioredis.Redis, redis_port: int
) -> None:
    tid = "ODD-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=5))
    await client.rpush(f"trader-{tid}:orders:odd-1:extra", b"x")  # an id nautilus would not load as this key
    await client.set(f"trader-{tid}:orders:odd-string", b"not a list")
    await client.rpush(f"trader-{tid}:orders:odd-garbage", b"\xc1\xc1")  # not msgpack
    await client.sadd(f"trader-{tid}:index:orders_closed", b"odd-garbage")
    await client.hset(f"trader-{tid}:positions:P-hash", mapping={"a": "b"})
    await client.rpush(f"trader-{tid}:orders_extra:x", b"y")
    odd = await snapshot(client, f"trader-{tid}:orders:odd-*")
    odd.update(await snapshot(client, f"trader-{tid}:positions:P-hash"))
    odd.update(await snapshot(client, f"trader-{tid}:orders_extra:*"))

    result = await compact_trader(client, tid, keep_closed=0, wall_clock_ns=lambda: LATER)

    assert result.orders_archived > 0
    assert result.skipped == {"unknown_key": 3, "unreadable": 1}
    kept = await snapshot(client, f"trader-{tid}:orders:odd-*")
    kept.update(await snapshot(client, f"trader-{tid}:positions:P-hash"))
    kept.update(await snapshot(client, f"trader-{tid}:orders_extra:*"))
    assert kept == odd
    assert await client.sismember(f"trader-{tid}:index:orders_closed", "odd-garbage")


@pytest.mark.slow
@pytest.mark.redis
async def test_orders_the_venue_still_reports_stay_and_why(client: aioredis.Redis, redis_port: int) -> None:
    """nautilus 1.231 re-creates an order the venue reports but its cache lacks as an EXTERNAL order, with its
    fills: a phantom position. Orders inside the venue's reporting window therefore stay."""
    tid = "WIN-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=20, open_positions=0))
    before = await run_blocking(load, redis_port, tid)
    entries = sorted((cid for cid, o in before["orders"].items() if o["type"] == "MARKET"), key=lambda c: c)
    # 20 round trips of 15 one-second events: the history spans 300 s. "Now" is 400 s after its start and the
    # window 200 s long, so the last third of it is what the venue still reports.
    now = BASE_TS_NS + 400 * S
    result = await compact_trader(client, tid, keep_closed=0, venue_window=200, wall_clock_ns=lambda: now)
    after = await run_blocking(load, redis_port, tid)
    assert result.kept["orders_in_venue_window"] > 0
    recent = [c for c in entries if c in after["orders"]]
    archived = [c for c in entries if c not in after["orders"]]
    assert recent and archived

    def report(cid: str) -> dict[str, Any]:
        return {"client_order_id": cid, **before["orders"][cid]}

    # The venue reports a recent (kept) filled entry: nautilus knows it, nothing new appears.
    known = await run_blocking(reconcile, redis_port, tid, [report(recent[-1])])
    assert not [o for o in known["orders"].values() if o["strategy_id"] == "EXTERNAL"]
    assert not known["positions_open"]
    # Had an order still reported by the venue been archived, nautilus would invent an EXTERNAL position.
    phantom = await run_blocking(reconcile, redis_port, tid, [report(archived[0])])
    assert phantom["orders"][archived[0]]["strategy_id"] == "EXTERNAL"
    assert [p for p in phantom["positions_open"] if "EXTERNAL" in p]


@pytest.mark.redis
async def test_a_second_compaction_of_the_same_trader_is_refused(client: aioredis.Redis) -> None:
    await client.set(TraderKeys("BUSY-001").lock, b"someone")
    with pytest.raises(CompactionBusy):
        await compact_trader(client, "BUSY-001")
    with pytest.raises(CompactionBusy):
        await restore(client, "BUSY-001", everything=True)


@pytest.mark.redis
async def test_the_lock_is_released_after_a_run(client: aioredis.Redis) -> None:
    result = await compact_trader(client, "EMPTY-001")
    assert (result.orders_seen, result.positions_seen, result.complete) == (0, 0, True)
    assert not await client.exists(TraderKeys("EMPTY-001").lock)


@pytest.mark.redis
async def test_a_client_that_decodes_responses_is_refused(redis_port: int) -> None:
    decoding = aioredis.Redis(port=redis_port, decode_responses=True)
    try:
        with pytest.raises(CompactionError, match="decode_responses"):
            await compact_trader(decoding, "DEC-001")
    finally:
        await decoding.aclose()


async def test_an_unreachable_redis_is_an_error_not_a_hang() -> None:
    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=1)
    try:
        # redis-py retries the connection; our per-call bound ends it either way.
        async with asyncio.timeout(10):
            with pytest.raises(CompactionError, match=r"DEAD-001: Redis (failed|did not answer)"):
                await compact_trader(dead, "DEAD-001", call_timeout=1.0)
    finally:
        await dead.aclose()


async def test_a_redis_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = aioredis.Redis(port=silent.getsockname()[1])
        try:
            async with asyncio.timeout(10):
                with pytest.raises(CompactionError, match="did not answer"):
                    await compact_trader(mute, "MUTE-001", call_timeout=0.2)
        finally:
            await mute.aclose()


@pytest.mark.slow
@pytest.mark.redis
async def test_time_budget_stops_between_batches_and_the_next_run_continues(
    client: aioredis.Redis, redis_port: int
) -> None:
    tid = "BUDGET-001"
    await run_blocking(populate, redis_port, Scenario(trader_id=tid, closed_positions=30))
    ticks = iter(range(1_000_000))
    # A fake monotonic clock that advances one second per look at it.
    partial = await compact_trader(
        client,
        tid,
        keep_closed=0,
        batch_size=10,
        time_budget=6.5,
        clock=lambda: float(next(ticks)),
        wall_clock_ns=lambda: LATER,
    )
    # Looks: 0 at the start, 1 after reading, 2-4 before the 3 position batches, 5-6 before two order
    # batches, 7 is past the budget.
    assert not partial.complete
    assert (partial.positions_archived, partial.orders_archived) == (30, 20)
    loaded = await run_blocking(load, redis_port, tid)
    assert_loaded_cleanly(loaded)
    rest = await compact_trader(client, tid, keep_closed=0, wall_clock_ns=lambda: LATER)
    assert rest.complete
    assert (rest.positions_archived, rest.orders_archived) == (0, 30 * 5 - 20)


@pytest.mark.redis
async def test_an_unusable_archive_is_an_error_and_the_lock_is_still_released(client: aioredis.Redis) -> None:
    keys = TraderKeys("BROKEN-001")
    await client.rpush(keys.order("A"), init("A"), ev("OrderCanceled"))
    await client.sadd(keys.index("index:orders"), "A")
    await client.sadd(keys.index("index:orders_closed"), "A")
    await client.set(keys.archived_orders, b"not a hash")
    with pytest.raises(CompactionError, match="wrongtype:archive"):
        await compact_trader(client, "BROKEN-001", keep_closed=0, wall_clock_ns=lambda: LATER)
    assert await client.llen(keys.order("A")) == 2  # nothing moved
    assert not await client.exists(keys.lock)
    await client.delete(keys.archived_orders)
    result = await compact_trader(client, "BROKEN-001", keep_closed=0, wall_clock_ns=lambda: LATER)
    assert result.orders_archived == 1
    assert not await client.exists(keys.order("A"))
    assert not await client.smembers(keys.index("index:orders_closed"))
