"""Recovery scenarios end to end: the daemon restarts a killed strategy node, and what comes back is exact.

What is checked is what an operator sees: the recovery report on MQTT, the node's state from the control
socket, the venue's orders (emulator admin API, with attempts per client order id) and the node's cache in
Redis.
"""

from __future__ import annotations

import json
import os
import signal
from decimal import Decimal
from typing import Any

import pytest

from recovery.client_ids import Owner, ProtectiveKind, protective_client_order_id
from tests.e2e.conftest import BTC, ENTRY, STRATEGY_ID, Fleet
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.mqtt]

SL = Decimal(ENTRY) - 5000
TP = Decimal(ENTRY) + 5000


def protective_ids(fleet: Fleet) -> tuple[str, str]:
    owner = Owner(fleet.trader_id, STRATEGY_ID)
    return (
        protective_client_order_id(owner, BTC, ProtectiveKind.STOP_LOSS, 1),
        protective_client_order_id(owner, BTC, ProtectiveKind.TAKE_PROFIT, 1),
    )


async def open_algos(fleet: Fleet) -> dict[str, dict[str, Any]]:
    algos = (await fleet.venue.admin.orders("BTCUSDT"))["algo_orders"]
    return {a["clientAlgoId"]: a for a in algos if a["algoStatus"] == "NEW"}


async def enter_and_protect(fleet: Fleet) -> tuple[str, str]:
    """A trade at ENTRY makes the probe buy 0.010; then its stop-loss and take-profit are at the venue."""
    await fleet.venue.admin.set_price("BTCUSDT", ENTRY)
    ids = protective_ids(fleet)

    async def protected() -> bool:
        return set(await open_algos(fleet)) == set(ids)

    await until("the entry is protected at the venue", protected)
    return ids


async def seed_hash(fleet: Fleet) -> dict[str, str]:
    raw = await fleet.redis.hgetall(f"positions:{fleet.trader_id}:emu:{BTC}")
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def venue_position(fleet: Fleet) -> dict[str, str]:
    accounts = (await fleet.venue.admin.state())["accounts"]
    position: dict[str, str] = next(iter(accounts.values()))["positions"].get("BTCUSDT", {})
    return position


async def kill_node(fleet: Fleet) -> int:
    node = await fleet.node()
    os.kill(node["pid"], signal.SIGKILL)
    return int(node["pid"])


async def test_a_killed_node_comes_back_with_its_position_stops_and_state(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    sl, tp = await enter_and_protect(fleet)
    state_key = f"trader-{fleet.trader_id}:general:recovery:{STRATEGY_ID}:state"
    before = json.loads(await fleet.redis.get(state_key) or b"{}")
    assert before["fields"]["entries"] == 1

    mark = len(fleet.mqtt.messages)
    old_pid = await kill_node(fleet)
    report = await fleet.report(reason="signal", after=mark)

    assert report["result"] == "ready", report["error"]
    phases = [p["phase"] for p in report["phases"]]
    assert phases == [
        "detected",
        "prepared",
        "spawned",
        "cache_loaded",
        "reconciled",
        "state_restored",
        "orders_restored",
        "warmed",
        "ready",
    ]
    assert 0 < report["position_recovery_ms"] <= report["full_recovery_ms"]
    assert report["discrepancies"] == []
    relinked = {a["client_order_id"] for a in report["actions"] if a["action"] == "protective_relinked"}
    assert relinked == {sl, tp}
    assert not [a for a in report["actions"] if a["action"] == "protective_placed"]

    node = await fleet.node()
    assert node["state"] == "ready" and node["pid"] != old_pid and node["restarts"] == 1
    assert node["last_exit"]["reason"] == "signal"
    # The venue: the stops were sent once each and are still the only open orders.
    attempts = await fleet.venue.admin.attempts()
    assert {cid: (attempts[cid]["attempts"], attempts[cid]["accepted"]) for cid in (sl, tp)} == {
        sl: (1, 1),
        tp: (1, 1),
    }
    assert set(await open_algos(fleet)) == {sl, tp}
    # The node's cache equals the venue; the strategy's state is the last write.
    venue = await venue_position(fleet)
    cached = await seed_hash(fleet)
    assert (cached["side"], Decimal(cached["quantity"])) == ("LONG", Decimal(venue["amount"]))
    assert Decimal(cached["avg_entry_price"]) == Decimal(venue["entry_price"])
    after = json.loads(await fleet.redis.get(state_key) or b"{}")
    assert after["seq"] >= before["seq"] and after["fields"]["entries"] == 1


async def test_a_stop_hit_while_the_node_was_down_is_resolved_not_alarmed(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    sl, tp = await enter_and_protect(fleet)
    mark = len(fleet.mqtt.messages)
    await kill_node(fleet)
    # The node needs more than a second to come back (Python and nautilus imports): the stop triggers now.
    await fleet.venue.admin.set_price("BTCUSDT", str(SL - 100))
    report = await fleet.report(reason="signal", after=mark)
    assert report["result"] == "ready", report["error"]

    # Flat at the venue and in the cache; the stop filled, the orphaned take-profit was cancelled.
    assert await venue_position(fleet) == {}
    assert await seed_hash(fleet) == {}
    assert await open_algos(fleet) == {}
    cancelled = {a["client_order_id"] for a in report["actions"] if a["action"] == "protective_cancelled"}
    assert cancelled == {tp}
    # The discrepancy is reported, and resolved (so it is no PositionMismatch alert).
    assert report["discrepancies"], report
    assert all(d["resolved"] for d in report["discrepancies"])
    raw = await fleet.redis.get(f"trader-{fleet.trader_id}:general:recovery:{STRATEGY_ID}:state")
    state = json.loads(raw or b"{}")
    # The stop's fill reached the strategy once, as a missed fill of its stop-loss.
    assert [m.split(":")[-1] for m in state["fields"]["missed"]] == [ProtectiveKind.STOP_LOSS.value]
    del sl


async def test_a_reconciliation_that_fails_never_reports_ready_and_backs_off(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    await enter_and_protect(fleet)
    await fleet.venue.admin.http_error("/fapi/v1/userTrades", status=503)
    mark = len(fleet.mqtt.messages)
    await kill_node(fleet)
    failed = await fleet.report(reason="signal", after=mark, result="failed")
    assert "ready" not in [p["phase"] for p in failed["phases"]]
    assert "userTrades" in failed["error"] or "reconcil" in failed["error"], failed["error"]

    async def backing_off() -> bool:
        node = await fleet.node()
        return node["restarts"] >= 2 and node["state"] in ("backoff", "starting", "recovering")

    await until("the supervisor keeps restarting it with backoff", backing_off, timeout_s=60)
    # The venue recovers: so does the node.
    await fleet.venue.admin.clear_faults()

    async def ready_again() -> bool:
        return bool((await fleet.node())["state"] == "ready")

    await until("the node is ready once the venue answers again", ready_again, timeout_s=60)


async def test_a_corrupt_cache_entry_quarantines_the_node_and_deletes_nothing(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    await enter_and_protect(fleet)
    await fleet.daemon.request({"cmd": "stop", "node": "probe"})
    keys = [k async for k in fleet.redis.scan_iter(match=f"trader-{fleet.trader_id}:positions:*")]
    assert len(keys) == 1
    await fleet.redis.lset(keys[0], 0, b"\xc1 not msgpack")  # type: ignore[arg-type]  # bytes are fine
    before = {
        k: await fleet.redis.dump(k) async for k in fleet.redis.scan_iter(match=f"trader-{fleet.trader_id}:*")
    }

    await fleet.daemon.request({"cmd": "start", "node": "probe"})

    async def quarantined() -> bool:
        return bool((await fleet.node())["state"] == "quarantined")

    await until("the node is quarantined", quarantined, timeout_s=60)
    node = await fleet.node()
    assert node["last_exit"]["reason"] == "fatal"
    assert keys[0].decode() in node["last_exit"]["detail"]
    assert node["restarts"] == 0  # not restarted in a loop
    after = {
        k: await fleet.redis.dump(k) async for k in fleet.redis.scan_iter(match=f"trader-{fleet.trader_id}:*")
    }
    assert after == before


async def test_a_lost_cache_is_reported_and_the_venue_state_adopted_not_doubled(fleet_factory: Any) -> None:
    fleet: Fleet = await fleet_factory(entry_price=ENTRY)
    sl, tp = await enter_and_protect(fleet)
    await fleet.daemon.request({"cmd": "stop", "node": "probe"})
    # Redis flushed (or replaced) while the venue still holds the position and its stops.
    for pattern in (f"trader-{fleet.trader_id}:*", f"positions:{fleet.trader_id}:*"):
        keys = [k async for k in fleet.redis.scan_iter(match=pattern)]
        await fleet.redis.delete(*keys)
    mark = len(fleet.mqtt.messages)
    await fleet.daemon.request({"cmd": "start", "node": "probe"})
    report = await fleet.report(reason="cold_start", after=mark)
    assert report["result"] == "ready", report["error"]

    kinds = {(d["kind"], d["resolved"]) for d in report["discrepancies"]}
    assert ("missing_in_cache", True) in kinds, report["discrepancies"]
    relinked = {a["client_order_id"] for a in report["actions"] if a["action"] == "protective_relinked"}
    assert relinked == {sl, tp}
    assert not [a for a in report["actions"] if a["action"] == "protective_placed"]
    attempts = await fleet.venue.admin.attempts()
    assert [attempts[cid]["attempts"] for cid in (sl, tp)] == [1, 1]
    venue = await venue_position(fleet)
    cached = await seed_hash(fleet)
    assert Decimal(cached["quantity"]) == Decimal(venue["amount"])
