"""The EMA-cross example (recovery/examples/ema_cross.py) in a real node against emulator minute bars."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.testing import EmulatorProcess
from recovery.client_ids import Owner, ProtectiveKind, protective_client_order_id
from tests.recovery.conftest import BTC, NodeLauncher, node_spec
from tests.recovery.scenarios import until

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

STRATEGY_ID = "EmaCross-001"


def ema_cross() -> dict[str, Any]:
    return {
        "path": "recovery.examples.ema_cross:EmaCross",
        "config": {"instrument_id": BTC, "order_id_tag": "001", "fast_period": 3, "slow_period": 5},
    }


async def test_ema_cross_enters_on_a_closed_bar_protects_and_recovers_after_kill9(
    nodes: NodeLauncher, venue: EmulatorProcess, redis_client: aioredis.Redis, trader_id: str
) -> None:
    spec = node_spec(venue, trader_id, [ema_cross()])  # config_path found from the class' annotation
    node = await nodes.start(spec)
    await node.wait_ready()
    warm = node.detail("warmed")["strategies"][STRATEGY_ID]["requests"]
    assert warm[0]["bars"] == 5  # sized from the slow EMA's period

    # The first closed bar after start gives the first signal: the strategy enters and protects. The node
    # subscribes to live bars as it becomes ready; a bar closed before that subscription reaches the venue
    # is not sent to it (as on the real venue), so wait for it.
    async def subscribed() -> bool:
        return "btcusdt@kline_1m" in (await venue.admin.state())["subscriptions"]

    await until("the node's live 1-minute bars are subscribed", subscribed)
    assert await venue.admin.close_bar("BTCUSDT")
    owner = Owner(trader_id, STRATEGY_ID)
    sl = protective_client_order_id(owner, BTC, ProtectiveKind.STOP_LOSS, 1)
    tp = protective_client_order_id(owner, BTC, ProtectiveKind.TAKE_PROFIT, 1)

    async def protected() -> bool:
        algos = (await venue.admin.orders("BTCUSDT"))["algo_orders"]
        return {a["clientAlgoId"] for a in algos if a["algoStatus"] == "NEW"} == {sl, tp}

    await until("the entry is protected by a stop-loss and a take-profit", protected)
    key = f"trader-{trader_id}:general:recovery:{STRATEGY_ID}:state"
    before = json.loads(await redis_client.get(key) or b"{}")
    assert before["fields"]["entries"] == 1
    assert before["fields"]["last_signal"] in ("LONG", "SHORT")
    await node.kill()

    again = await nodes.start(spec)
    await again.wait_ready()
    restored = again.detail("state_restored")["strategies"][STRATEGY_ID]
    assert restored["state_seq"] == before["seq"]
    assert json.loads(await redis_client.get(key) or b"{}")["fields"] == before["fields"]
    relinked = {
        a["client_order_id"]
        for a in again.detail("orders_restored").get("actions", [])
        if a["action"] == "protective_relinked"
    }
    assert relinked == {sl, tp}
    attempts = await venue.admin.attempts()
    assert (attempts[sl]["attempts"], attempts[tp]["attempts"]) == (1, 1)
    # Stop below / above the entry on the right side, take-profit on the other.
    algos = {a["clientAlgoId"]: a for a in (await venue.admin.orders("BTCUSDT"))["algo_orders"]}
    entry = Decimal(before["fields"]["trailing_ref"])
    stop, take = Decimal(algos[sl]["triggerPrice"]), Decimal(algos[tp]["triggerPrice"])
    if before["fields"]["last_signal"] == "LONG":
        assert stop < entry < take
    else:
        assert take < entry < stop
