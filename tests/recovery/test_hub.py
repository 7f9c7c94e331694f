"""The recovery hub: node-level phases from per-strategy progress, the trading-state gate, the outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Mapping
from typing import Any

import pytest

from recovery.durable import DurableStore
from recovery.hub import HubOutcome, RecoveryHub, TradingStateName

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self) -> None:
        self.phases: list[tuple[str, dict[str, Any]]] = []
        self.states: list[TradingStateName] = []

    def phase(self, name: str, detail: Mapping[str, Any]) -> None:
        self.phases.append((name, dict(detail)))

    def set_trading_state(self, state: TradingStateName) -> None:
        self.states.append(state)


class NoRedis:
    def set(self, name: str, value: bytes) -> Awaitable[Any]:
        raise AssertionError("not used")

    def delete(self, *names: str) -> Awaitable[Any]:
        raise AssertionError("not used")


def make_hub(rec: Recorder, *strategies: str) -> RecoveryHub:
    store = DurableStore(redis=NoRedis(), trader_id="T-001", loaded=lambda key: None)
    hub = RecoveryHub(trader_id="T-001", durable=store, gate=rec, phases=rec)
    for sid in strategies:
        hub.expect(sid)
    hub.close_expectations()
    return hub


async def test_phases_go_out_once_every_strategy_reached_them_in_order() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001", "B-001")
    for sid in ("A-001", "B-001"):
        hub.attach(sid)
    # B is ahead: it reaches orders_restored before A has even restored its state.
    hub.strategy_phase("B-001", "state_restored", {"fields": 2})
    hub.strategy_phase(
        "B-001", "orders_restored", {"actions": [{"action": "protective_placed", "venue": "v"}]}
    )
    assert rec.phases == []
    hub.strategy_phase(
        "A-001", "orders_restored", {"actions": [{"action": "protective_relinked", "venue": "v"}]}
    )
    assert rec.phases == []  # orders_restored waits for state_restored to go out first
    hub.strategy_phase("A-001", "state_restored", {"fields": 1})
    assert [name for name, _ in rec.phases] == ["state_restored", "orders_restored"]
    state_detail, orders_detail = rec.phases[0][1], rec.phases[1][1]
    assert state_detail == {"strategies": {"A-001": {"fields": 1}, "B-001": {"fields": 2}}}
    assert [a["action"] for a in orders_detail["actions"]] == ["protective_relinked", "protective_placed"]
    assert "actions" not in orders_detail["strategies"]["A-001"]


async def test_ready_only_when_all_ready_then_activate() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001", "B-001")
    hub.strategy_ready("A-001")
    assert hub.outcome is None
    with pytest.raises(RuntimeError):
        hub.activate()
    hub.strategy_ready("B-001")
    outcome = await asyncio.wait_for(hub.wait(), 1)
    assert outcome == HubOutcome(ready=True)
    # Ready implies every phase: the ones nobody reported explicitly went out too, in order.
    assert [name for name, _ in rec.phases] == ["state_restored", "orders_restored", "warmed"]
    assert rec.states == []  # still HALTED: the node decides when to trade
    hub.activate()
    assert rec.states == [TradingStateName.ACTIVE]


async def test_reducing_while_any_strategy_asks_then_back_to_halted() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001", "B-001")
    hub.request_trading_state("A-001", "REDUCING")
    hub.request_trading_state("B-001", "REDUCING")
    hub.request_trading_state("A-001", "HALTED")
    assert hub.trading_state is TradingStateName.REDUCING  # B still places its stops
    hub.request_trading_state("B-001", "HALTED")
    assert rec.states == [TradingStateName.REDUCING, TradingStateName.HALTED]
    hub.request_trading_state("A-001", "ACTIVE")  # never granted by request
    assert rec.states[-1] is TradingStateName.HALTED and len(rec.states) == 2


async def test_a_failure_halts_and_wins_over_later_readiness() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001", "B-001")
    hub.request_trading_state("A-001", "REDUCING")
    hub.strategy_failed("B-001", "state key undecodable", {"key": "k"}, fatal=True)
    hub.strategy_ready("A-001")
    outcome = await asyncio.wait_for(hub.wait(), 1)
    assert not outcome.ready and outcome.fatal and outcome.strategy_id == "B-001"
    assert outcome.detail == {"key": "k"}
    assert rec.states[-1] is TradingStateName.HALTED and len(rec.states) == 2
    assert rec.phases == []  # A's readiness after the failure reports nothing
    assert (await asyncio.wait_for(hub.wait_failure(), 1)) is outcome


async def test_failure_after_ready_is_reported_separately() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001")
    hub.strategy_ready("A-001")
    assert (await hub.wait()).ready
    hub.activate()
    hub.strategy_failed("A-001", "venue rejected the stop", {}, fatal=False)
    failure = await asyncio.wait_for(hub.wait_failure(), 1)
    assert failure.reason == "venue rejected the stop"
    assert rec.states == [TradingStateName.ACTIVE, TradingStateName.HALTED]
    assert (await hub.wait()).ready  # the recovery outcome itself stays what it was


async def test_no_recoverable_strategies_means_nothing_to_wait_for() -> None:
    rec = Recorder()
    hub = make_hub(rec)
    assert (await asyncio.wait_for(hub.wait(), 1)).ready
    assert [name for name, _ in rec.phases] == ["state_restored", "orders_restored", "warmed"]


async def test_unknown_strategy_and_phase_are_ignored() -> None:
    rec = Recorder()
    hub = make_hub(rec, "A-001")
    hub.strategy_ready("Z-999")
    hub.strategy_phase("A-001", "cooked", {})
    assert hub.outcome is None and rec.phases == []
    assert hub.waiting_for() == {"A-001": "not started"}
    hub.attach("A-001")
    hub.strategy_phase("A-001", "state_restored", {})
    assert hub.waiting_for() == {"A-001": "state_restored"}


async def test_calls_from_another_thread_are_carried_out_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    class ThreadCheckingGate(Recorder):
        def set_trading_state(self, state: TradingStateName) -> None:
            seen.append(threading.get_ident())

    gate = ThreadCheckingGate()
    store = DurableStore(redis=NoRedis(), trader_id="T-001", loaded=lambda key: None)
    hub = RecoveryHub(trader_id="T-001", durable=store, gate=gate, phases=gate)
    hub.expect("A-001")
    hub.close_expectations()
    worker = threading.Thread(target=lambda: hub.request_trading_state("A-001", "REDUCING"))
    worker.start()
    worker.join()
    assert seen == []  # not yet: queued for the loop
    await asyncio.sleep(0)
    assert seen == [loop_thread]
