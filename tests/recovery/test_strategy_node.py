"""RecoverableStrategy in real nodes (`python -m recovery.node`) against the emulator and a real Redis.

Every test runs real node processes, kills them with SIGKILL where the scenario says so, and judges the
result by what the venue holds (the emulator's admin API: open orders, per-client-id attempt counts) and what
Redis holds (the strategy's state record), never by what the node says about itself alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from recovery.client_ids import Owner, ProtectiveKind, protective_client_order_id
from tests.recovery.cache_reader import read_cache
from tests.recovery.conftest import BTC, REPO, NodeLauncher, NodeProcess, node_spec
from tests.recovery.recoverable_probe import CONFIG_PATH, PATH
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

STRATEGY_ID = "RecoverableProbe-001"
ENTRY = "60100.0"  # the probe buys 0.010 on a trade at this price
SL_PX = Decimal("55100.0")  # entry - 5000
TP_PX = Decimal("65100.0")  # entry + 5000


def probe(**config: Any) -> dict[str, Any]:
    return {
        "path": PATH,
        "config_path": CONFIG_PATH,
        "config": {"instrument_id": BTC, "order_id_tag": "001", "entry_price": ENTRY, **config},
    }


def cid(trader_id: str, kind: ProtectiveKind, generation: int = 1) -> str:
    return protective_client_order_id(Owner(trader_id, STRATEGY_ID), BTC, kind, generation)


async def state_record(redis_client: aioredis.Redis, trader_id: str) -> dict[str, Any]:
    raw = await redis_client.get(f"trader-{trader_id}:general:recovery:{STRATEGY_ID}:state")
    assert raw is not None, "no state record in Redis"
    return dict(json.loads(raw))


async def open_algos(venue: EmulatorProcess) -> dict[str, dict[str, Any]]:
    algos = (await venue.admin.orders("BTCUSDT"))["algo_orders"]
    return {a["clientAlgoId"]: a for a in algos if a["algoStatus"] == "NEW"}


async def venue_account(venue: EmulatorProcess) -> dict[str, Any]:
    return dict((await venue.admin.state())["accounts"]["main"])


async def venue_position(venue: EmulatorProcess) -> Decimal:
    position = (await venue_account(venue))["positions"].get("BTCUSDT")
    return Decimal(position["amount"]) if position else Decimal(0)


async def open_position_with_protection(
    nodes: NodeLauncher, venue: EmulatorProcess, trader_id: str, **config: Any
) -> tuple[dict[str, Any], NodeProcess]:
    """A node whose probe bought 0.010 at 60,100 and has its stop-loss and take-profit at the venue."""
    spec = node_spec(venue, trader_id, [probe(**config)])
    node = await nodes.start(spec)
    await node.wait_ready()
    await venue.admin.set_price("BTCUSDT", ENTRY)

    async def protected() -> bool:
        return set(await open_algos(venue)) == {
            cid(trader_id, ProtectiveKind.STOP_LOSS),
            cid(trader_id, ProtectiveKind.TAKE_PROFIT),
        }

    await watch(node, "the stop-loss and take-profit are open at the venue", protected)
    return spec, node


async def watch(node: NodeProcess, what: str, check: Any, timeout_s: float = 20.0) -> None:
    """`until`, with the node's log in the failure message."""
    try:
        await until(what, check, timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log ---\n{node.log_tail(80)}") from None


def actions(node: NodeProcess, kind: str) -> list[dict[str, Any]]:
    return [a for a in node.detail("orders_restored").get("actions", []) if a.get("action") == kind]


def strategy_detail(node: NodeProcess, phase: str) -> dict[str, Any]:
    return dict(node.detail(phase)["strategies"][STRATEGY_ID])


async def test_cold_start_initializes_fresh_state(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    node = await nodes.start(node_spec(venue, trader_id, [probe(entry_price=None)]))
    await node.wait_ready()
    assert node.phases()[-3:] == ["state_restored", "orders_restored", "warmed"]
    assert strategy_detail(node, "state_restored")["path"] == "fresh"
    record = await state_record(redis_client, trader_id)
    assert record["fields"]["entries"] == 0
    assert record["version"] == 1
    assert strategy_detail(node, "orders_restored")["missed_fills"] == []
    warm = strategy_detail(node, "warmed")["requests"]
    assert warm and warm[0]["bar_type"] == f"{BTC}-1-MINUTE-LAST-EXTERNAL" and warm[0]["bars"] == 5
    assert await open_algos(venue) == {}


async def test_an_order_submitted_during_recovery_is_denied(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The probe submits a market order in on_setup and another on its first warm-up bar."""
    node = await nodes.start(
        node_spec(venue, trader_id, [probe(entry_price=None, submit_during_recovery=True)])
    )
    await node.wait_ready()
    record = await state_record(redis_client, trader_id)
    assert len(record["fields"]["denied"]) == 1  # the on_setup one is denied before hooks receive events
    assert record["fields"]["denied"][0].startswith("RECOVERING")
    cached = await asyncio.to_thread(read_cache, trader_id)
    mine = [o for o in cached.orders.values() if o.strategy_id == STRATEGY_ID]
    assert [o.status for o in mine] == ["DENIED", "DENIED"]
    # Nothing reached the venue: no order of any kind was attempted, the account is still flat.
    assert await venue.admin.attempts() == {}
    assert await venue_position(venue) == 0


async def test_warm_start_relinks_each_stop_exactly_once_and_restores_the_last_state(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec, first = await open_position_with_protection(nodes, venue, trader_id)
    await until("the entry is in the state", lambda: _entries_at_least(redis_client, trader_id, 1))
    before = await state_record(redis_client, trader_id)
    await first.kill()

    second = await nodes.start(spec)
    await second.wait_ready()
    restored = strategy_detail(second, "state_restored")
    assert restored["path"] == "restored"
    assert restored["state_seq"] == before["seq"]  # the last write came back, not an older one
    after = await state_record(redis_client, trader_id)
    # Equal to the last write, except what the second run's on_ready recorded since.
    assert {k: v for k, v in after["fields"].items() if k != "ema_count_at_ready"} == {
        k: v for k, v in before["fields"].items() if k != "ema_count_at_ready"
    }
    assert [p["instrument"] for p in restored["positions"]] == [BTC]
    relinked = {a["client_order_id"] for a in actions(second, "protective_relinked")}
    assert relinked == {cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)}
    assert actions(second, "protective_placed") == []
    # The venue: each protective order exists once and was sent once.
    algos = await open_algos(venue)
    assert set(algos) == relinked
    assert Decimal(algos[cid(trader_id, ProtectiveKind.STOP_LOSS)]["triggerPrice"]) == SL_PX
    attempts = await venue.admin.attempts()
    for client_id in relinked:
        assert (attempts[client_id]["attempts"], attempts[client_id]["accepted"]) == (1, 1)
    # Indicators were warm before the first order (first run) and when trading opened again (second run).
    assert after["fields"]["ema_count_at_entry"] >= 5
    assert after["fields"]["ema_count_at_ready"] >= 5


async def _entries_at_least(redis_client: aioredis.Redis, trader_id: str, n: int) -> bool:
    raw = await redis_client.get(f"trader-{trader_id}:general:recovery:{STRATEGY_ID}:state")
    return raw is not None and json.loads(raw)["fields"]["entries"] >= n


async def test_a_state_change_killed_right_after_is_there_after_restart(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The probe changes its state and submits its entry in the same hook; the node is killed the moment the
    venue sees the entry. Write-ahead: the order cannot reach the venue before the change is in Redis."""
    spec = node_spec(venue, trader_id, [probe(take_profit_offset=None)])
    node = await nodes.start(spec)
    await node.wait_ready()
    await venue.admin.set_price("BTCUSDT", ENTRY)

    async def entry_at_venue() -> bool:
        return any(not key.startswith("SL-") for key in await venue.admin.attempts())

    await until("the entry reaches the venue", entry_at_venue, timeout_s=10)
    await node.kill()

    record = await state_record(redis_client, trader_id)
    assert record["fields"]["entries"] == 1
    assert Decimal(record["fields"]["last_price"]) == Decimal(ENTRY)
    again = await nodes.start(spec)
    await again.wait_ready()
    assert strategy_detail(again, "state_restored")["state_seq"] >= record["seq"]
    fields = (await state_record(redis_client, trader_id))["fields"]
    assert (fields["entries"], Decimal(fields["last_price"])) == (1, Decimal(ENTRY))
    # It never entered twice: one position of 0.010, protected by one stop.
    assert await venue_position(venue) == Decimal("0.010")
    await until("the stop is open", lambda: _has_algos(venue, {cid(trader_id, ProtectiveKind.STOP_LOSS)}))


async def _has_algos(venue: EmulatorProcess, expected: set[str]) -> bool:
    return set(await open_algos(venue)) == expected


async def _submitted_in_cache(redis_client: aioredis.Redis, trader_id: str, client_ids: list[str]) -> bool:
    # OrderInitialized + OrderSubmitted persisted: the request is on its way (and hangs at the venue).
    lengths = [await redis_client.llen(f"trader-{trader_id}:orders:{c}") for c in client_ids]
    return all(n >= 2 for n in lengths)


async def _in_cache(redis_client: aioredis.Redis, trader_id: str, client_id: str) -> bool:
    return bool(await redis_client.llen(f"trader-{trader_id}:orders:{client_id}"))


async def test_crash_before_the_protective_request_reached_the_venue_then_restart_twice(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The stop-loss/take-profit requests hang at the venue without being processed and the node is killed;
    the restart hits the same hang and is killed again; the third start places each exactly once, under the
    same client order ids (the generation did not move)."""
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    spec = node_spec(venue, trader_id, [probe()])
    node = await nodes.start(spec)
    await node.wait_ready()
    await venue.admin.hang("/fapi/v1/algoOrder", hang_ms=60_000, count=2, method="POST")
    await venue.admin.set_price("BTCUSDT", ENTRY)
    await until("both protective requests hang", lambda: _no_faults(venue))
    await until(
        "both are submitted in the cache", lambda: _submitted_in_cache(redis_client, trader_id, [sl, tp])
    )
    await node.kill()
    assert await open_algos(venue) == {}

    await venue.admin.hang("/fapi/v1/algoOrder", hang_ms=60_000, count=2, method="POST")
    second = await nodes.start(spec)
    await until("the retried requests hang too (the fault rule is used up)", lambda: _no_faults(venue))
    await second.kill()
    assert await open_algos(venue) == {}

    await venue.admin.clear_faults()
    third = await nodes.start(spec)
    await third.wait_ready()
    placed = {a["client_order_id"] for a in actions(third, "protective_placed")}
    assert placed == {sl, tp}
    algos = await open_algos(venue)
    assert set(algos) == {sl, tp}
    attempts = await venue.admin.attempts()
    for client_id in (sl, tp):
        assert attempts[client_id]["accepted"] == 1, attempts
    assert await venue_position(venue) == Decimal("0.010")


async def _no_faults(venue: EmulatorProcess) -> bool:
    return await venue.admin.faults() == []


async def test_crash_right_after_the_venue_acknowledged_the_protective_orders(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The venue creates both orders but its answers never leave; the node is killed as soon as the venue
    holds them. The restart re-links them: still exactly one of each."""
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    spec = node_spec(venue, trader_id, [probe()])
    node = await nodes.start(spec)
    await node.wait_ready()
    await venue.admin.hang("/fapi/v1/algoOrder", hang_ms=60_000, count=2, method="POST", execute=True)
    await venue.admin.set_price("BTCUSDT", ENTRY)
    await until("the venue holds both", lambda: _has_algos(venue, {sl, tp}))
    await node.kill()

    again = await nodes.start(spec)
    await again.wait_ready()
    assert {a["client_order_id"] for a in actions(again, "protective_relinked")} == {sl, tp}
    assert actions(again, "protective_placed") == []
    assert set(await open_algos(venue)) == {sl, tp}
    attempts = await venue.admin.attempts()
    for client_id in (sl, tp):
        assert (attempts[client_id]["attempts"], attempts[client_id]["accepted"]) == (1, 1)


async def test_a_moved_stop_gets_a_new_generation_and_survives_a_restart(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec, node = await open_position_with_protection(
        nodes, venue, trader_id, stop_move_price="60200.0", stop_move_to="59000"
    )
    sl1, sl2 = cid(trader_id, ProtectiveKind.STOP_LOSS, 1), cid(trader_id, ProtectiveKind.STOP_LOSS, 2)
    tp = cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    await venue.admin.set_price("BTCUSDT", "60200.0")
    await until("the stop moved to generation 2", lambda: _has_algos(venue, {sl2, tp}))
    assert Decimal((await open_algos(venue))[sl2]["triggerPrice"]) == Decimal("59000")
    await node.kill()

    again = await nodes.start(spec)
    await again.wait_ready()
    assert {a["client_order_id"] for a in actions(again, "protective_relinked")} == {sl2, tp}
    assert set(await open_algos(venue)) == {sl2, tp}
    attempts = await venue.admin.attempts()
    assert attempts[sl1]["accepted"] == 1 and attempts[sl2]["accepted"] == 1
    raw_ledger = await redis_client.get(f"trader-{trader_id}:general:recovery:{STRATEGY_ID}:protective")
    assert raw_ledger is not None
    ledger = json.loads(raw_ledger)
    assert ledger[BTC]["SL"][0] == 2


async def test_a_stop_triggered_while_down_is_delivered_once_as_a_missed_fill(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec, node = await open_position_with_protection(nodes, venue, trader_id)
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    await node.kill()
    wallet_before = Decimal((await venue_account(venue))["wallet"])
    await venue.admin.trigger(client_algo_id=sl, price="55000.0")
    await until("the venue is flat", lambda: _flat(venue))

    again = await nodes.start(spec)
    await again.wait_ready()
    detail = strategy_detail(again, "orders_restored")
    assert [(m["client_order_id"], m["protective"]) for m in detail["missed_fills"]] == [(sl, "SL")]
    fields = (await state_record(redis_client, trader_id))["fields"]
    assert len(fields["missed"]) == 1 and fields["missed"][0].endswith(":SL")
    # The take-profit had no position left: cancelled as an orphan.
    assert [a["client_order_id"] for a in actions(again, "protective_cancelled")] == [tp]
    assert await open_algos(venue) == {}
    # FR-003: the balance change over the downtime is explained by the missed fill.
    usdt = next(line for line in detail["balances"] if line["currency"] == "USDT")
    assert Decimal(usdt["after"]) == Decimal((await venue_account(venue))["wallet"])
    assert Decimal(usdt["after"]) - wallet_before == Decimal(usdt["explained"])
    assert Decimal(usdt["realized_pnl"]) == Decimal("-51.000")  # (55000 - 60100) * 0.010

    await again.kill()
    third = await nodes.start(spec)
    await third.wait_ready()
    assert strategy_detail(third, "orders_restored")["missed_fills"] == []
    assert len((await state_record(redis_client, trader_id))["fields"]["missed"]) == 1


async def _flat(venue: EmulatorProcess) -> bool:
    return await venue_position(venue) == 0


async def test_undecodable_state_is_fatal_names_the_key_and_deletes_nothing(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [probe(entry_price=None)])
    node = await nodes.start(spec)
    await node.wait_ready()
    await node.terminate()
    key = f"trader-{trader_id}:general:recovery:{STRATEGY_ID}:state"
    record = await state_record(redis_client, trader_id)
    record["fields"]["entries"] = "three"
    corrupt = json.dumps(record).encode()
    await redis_client.set(key, corrupt)

    again = await nodes.start(spec)
    code = await again.wait_exit()
    assert code == 78
    assert again.fatal is not None
    assert key in again.fatal["X_FATAL"] or key in json.dumps(again.messages)
    assert not again.ready
    assert await redis_client.get(key) == corrupt


async def _delete_trader_keys(redis_client: aioredis.Redis, trader_id: str) -> int:
    keys = [k async for k in redis_client.scan_iter(match=f"trader-{trader_id}:*")]
    return int(await redis_client.delete(*keys)) if keys else 0


async def test_lost_cache_adopts_the_venue_stops_by_their_ids_without_placing_new_ones(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Redis loses everything of this trader (state, ledger, orders, positions) while the venue still holds
    the position and both protective orders: the claimed instrument comes back, the stops are recognised by
    their derived ids and kept, nothing is placed twice, and the missing state is reported, not hidden."""
    spec, node = await open_position_with_protection(nodes, venue, trader_id)
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    await node.kill()
    assert await _delete_trader_keys(redis_client, trader_id) > 0

    again = await nodes.start(spec)
    await again.wait_ready()
    assert again.detail("reconciled")["lost_cache"] is True
    restored = strategy_detail(again, "state_restored")
    assert (restored["path"], restored["state"], restored["lost_cache"]) == ("restored", "absent", True)
    assert {a["client_order_id"] for a in actions(again, "protective_relinked")} == {sl, tp}
    assert actions(again, "protective_placed") == []
    assert set(await open_algos(venue)) == {sl, tp}
    attempts = await venue.admin.attempts()
    assert attempts[sl]["attempts"] == 1 and attempts[tp]["attempts"] == 1


async def test_outside_partial_close_while_down_resizes_both_protective_orders(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Someone sells 0.004 of the 0.010 while the node is down: after recovery the stop-loss and take-profit
    cover 0.006 under a new generation, the old ones are gone, and the outside fill reached the strategy."""
    spec, node = await open_position_with_protection(nodes, venue, trader_id)
    await node.kill()
    await venue.admin.place_order(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.004",
            "newClientOrderId": "outside-1",
        }
    )
    assert await venue_position(venue) == Decimal("0.006")

    again = await nodes.start(spec)
    await again.wait_ready()
    sl2, tp2 = cid(trader_id, ProtectiveKind.STOP_LOSS, 2), cid(trader_id, ProtectiveKind.TAKE_PROFIT, 2)
    algos = await open_algos(venue)
    assert set(algos) == {sl2, tp2}
    assert {Decimal(a["quantity"]) for a in algos.values()} == {Decimal("0.006")}
    assert {a["client_order_id"] for a in actions(again, "protective_placed")} == {sl2, tp2}
    cancelled = {a["client_order_id"] for a in actions(again, "protective_cancelled")}
    assert cancelled == {cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)}
    missed = strategy_detail(again, "orders_restored")["missed_fills"]
    assert [(m["side"], Decimal(m["quantity"]), m["protective"]) for m in missed] == [
        ("SELL", Decimal("0.004"), None)
    ]


async def test_a_stop_level_crossed_while_its_order_was_missing_closes_the_position(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """The node died before its stop reached the venue and the price fell through the stop level meanwhile:
    the venue refuses the stop (it would trigger at once), so recovery closes the position at market, as the
    stop would have, and the take-profit left without a position is cancelled."""
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    spec = node_spec(venue, trader_id, [probe()])
    node = await nodes.start(spec)
    await node.wait_ready()
    await venue.admin.hang("/fapi/v1/algoOrder", hang_ms=60_000, count=2, method="POST")
    await venue.admin.set_price("BTCUSDT", ENTRY)
    await watch(node, "both protective requests hang", lambda: _no_faults(venue))
    await watch(
        node,
        "both are submitted in the cache",
        lambda: _submitted_in_cache(redis_client, trader_id, [sl, tp]),
    )
    await node.kill()
    await venue.admin.set_price("BTCUSDT", "55000.0")  # below the 55,100 stop

    again = await nodes.start(spec)
    await again.wait_ready()
    detail = strategy_detail(again, "orders_restored")
    assert [c["instrument"] for c in detail["closed_positions"]] == [BTC]
    assert await venue_position(venue) == 0
    assert await open_algos(venue) == {}


async def test_state_and_orders_from_a_timer_callback_thread(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """nautilus runs clock alerts on another thread: a state change and an entry made there still go out in
    order (state durable first), and the position gets its protective orders."""
    spec = node_spec(venue, trader_id, [probe(entry_price=None, entry_by_timer=True)])
    node = await nodes.start(spec)
    await node.wait_ready()
    sl, tp = cid(trader_id, ProtectiveKind.STOP_LOSS), cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    await watch(node, "the timer's entry is protected", lambda: _has_algos(venue, {sl, tp}))
    fields = (await state_record(redis_client, trader_id))["fields"]
    assert (fields["entries"], fields["timer_thread"]) == (1, True)
    assert await venue_position(venue) == Decimal("0.010")


async def test_without_the_recovery_node_it_refuses_to_trade_and_says_why(
    venue: EmulatorProcess, trader_id: str, workdir: Path
) -> None:
    """In a plain nautilus TradingNode (nobody binds a hub) the strategy runs but denies every order."""
    spec_path = workdir / "plain.json"
    spec_path.write_text(json.dumps(node_spec(venue, trader_id, [probe(entry_price=None)])))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "tests" / "recovery" / "plain_node_program.py"),
        str(spec_path),
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "EMU_API_KEY": venue.api_key,
            "EMU_API_SECRET": venue.api_secret,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["running"] is True and result["ready"] is False
    assert result["refusal"].startswith("NO_RECOVERY_HUB")
    assert (result["status"], result["reason"].split(":")[0]) == ("DENIED", "NO_RECOVERY_HUB")
    assert "refuses to trade" in err.decode() + out.decode()
    assert await venue.admin.attempts() == {}


async def test_an_id_of_ours_taken_by_someone_else_is_skipped_never_sent_twice(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    """Another client of the account places a stop under the id of our next generation. The node learns of
    it (user stream; the instrument is claimed) so the moved stop goes out as generation 3, the intruder and
    the old stop are cancelled, and no id is ever sent twice."""
    _spec, node = await open_position_with_protection(
        nodes, venue, trader_id, stop_move_price="60200.0", stop_move_to="59000"
    )
    sl1, sl2, sl3 = (cid(trader_id, ProtectiveKind.STOP_LOSS, g) for g in (1, 2, 3))
    tp = cid(trader_id, ProtectiveKind.TAKE_PROFIT)
    await venue.admin.place_algo_order(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "algoType": "CONDITIONAL",
            "type": "STOP_MARKET",
            "quantity": "0.001",
            "triggerPrice": "50000",
            "reduceOnly": "true",
            "clientAlgoId": sl2,
        }
    )
    # The premise: the node has learnt of the intruder (user stream) before the price asks for a new stop.
    await watch(node, "the intruder is in the cache", lambda: _in_cache(redis_client, trader_id, sl2))
    await venue.admin.set_price("BTCUSDT", "60200.0")
    await watch(node, "the moved stop is generation 3 and alone", lambda: _has_algos(venue, {sl3, tp}))
    assert Decimal((await open_algos(venue))[sl3]["triggerPrice"]) == Decimal("59000")
    attempts = await venue.admin.attempts()
    assert sl2 not in attempts  # we never sent the id someone else holds
    assert attempts[sl1]["attempts"] == attempts[sl3]["attempts"] == 1
    assert (await state_record(redis_client, trader_id))["fields"]["protective_failures"] == []
