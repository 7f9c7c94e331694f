"""Venue state survives emulator restarts; the admin API acts while clients are away; reset starts over."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.admin import AdminApiError
from emulator.testing import EmulatorProcess, VenueClient, running_emulator

pytestmark = pytest.mark.asyncio

STOP = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "quantity": "0.010",
    "triggerPrice": "55000.00",
    "reduceOnly": "true",
    "clientAlgoId": "keep-me",
}


async def _open_position_and_stop(client: VenueClient) -> tuple[int, int]:
    market = await client.post(
        "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    )
    stop = await client.post("/fapi/v1/algoOrder", STOP)
    return int(market.body["orderId"]), int(stop.body["algoId"])


async def _snapshot_view(client: VenueClient) -> tuple[object, ...]:
    risk = (await client.get("/fapi/v3/positionRisk")).body
    algos = (await client.get("/fapi/v1/openAlgoOrders")).body
    trades = (await client.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"})).body
    wallet = (await client.get("/fapi/v2/account")).body["totalWalletBalance"]
    return (
        [(p["positionAmt"], p["entryPrice"]) for p in risk],
        [a["algoId"] for a in algos],
        [t["id"] for t in trades],
        wallet,
    )


@pytest.mark.parametrize("kill", [False, True])
async def test_restart_keeps_state_port_and_ids(
    venue: EmulatorProcess, client: VenueClient, kill: bool
) -> None:
    order_id, _ = await _open_position_and_stop(client)
    before = await _snapshot_view(client)
    port, pid = venue.port, venue.pid
    await venue.restart(kill=kill)
    assert venue.port == port and venue.pid != pid
    assert await _snapshot_view(client) == before
    follow_up = await client.post(
        "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.010"}
    )
    assert int(follow_up.body["orderId"]) > order_id  # ids continue, never reused
    assert (await client.post("/fapi/v1/algoOrder", STOP)).code == -4116  # still open after the restart
    assert (await venue.admin.attempts("keep-me"))["keep-me"]["attempts"] == 2


async def test_snapshot_restore_and_reset(
    venue: EmulatorProcess, client: VenueClient, tmp_path: Path
) -> None:
    await _open_position_and_stop(client)
    before = await _snapshot_view(client)
    path = await venue.admin.snapshot(str(tmp_path / "drill.json"))
    await venue.admin.reset()
    assert await _snapshot_view(client) == ([], [], [], "100000.00000000")
    await venue.admin.restore(path)
    assert await _snapshot_view(client) == before


async def test_admin_fills_and_triggers_while_the_client_is_away(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    limit = await client.post(
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.020",
            "price": "58000.0",
            "timeInForce": "GTC",
        },
    )
    await venue.admin.fill("BTCUSDT", order_id=limit.body["orderId"], qty="0.010")
    partial = (
        await client.get("/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": str(limit.body["orderId"])})
    ).body
    assert (partial["status"], partial["executedQty"]) == ("PARTIALLY_FILLED", "0.010")
    stop = (await client.post("/fapi/v1/algoOrder", STOP)).body
    triggered = await venue.admin.trigger(algo_id=stop["algoId"], price="54321.0")
    assert triggered["algoStatus"] == "FINISHED" and triggered["actualOrderId"]
    child = (
        await client.get("/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": triggered["actualOrderId"]})
    ).body
    assert (child["clientOrderId"], child["type"], child["origType"], child["avgPrice"]) == (
        "keep-me",
        "MARKET",
        "STOP_MARKET",
        "54321.00",
    )
    trades = (await client.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"})).body
    assert [(t["side"], t["price"], t["maker"]) for t in trades] == [
        ("BUY", "58000.00", True),
        ("SELL", "54321.00", False),
    ]
    assert (await client.get("/fapi/v3/positionRisk")).body[0]["positionAmt"] == "0.000"


async def test_silent_position_change(venue: EmulatorProcess, client: VenueClient) -> None:
    await venue.admin.set_position("ETHUSDT", "-0.500", "3100.00")
    risk = (await client.get("/fapi/v3/positionRisk", {"symbol": "ETHUSDT"})).body
    assert [(p["positionAmt"], p["entryPrice"]) for p in risk] == [("-0.500", "3100")]
    assert risk[0]["unRealizedProfit"] == "50.00000000"  # short from 3100, mark 3000
    assert (await client.get("/fapi/v1/userTrades", {"symbol": "ETHUSDT"})).body == []
    state = await venue.admin.state()
    assert state["accounts"]["main"]["positions"]["ETHUSDT"]["amount"] == "-0.500"


async def test_backdated_stop_leaves_the_history_window_but_stays_open(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    """A stop placed 10 days ago: openAlgoOrders lists it, allAlgoOrders (last 7 days by default) does not."""
    await _open_position_and_stop(client)
    await venue.admin.backdate(10 * 86_400_000, client_algo_id="keep-me")
    assert [a["clientAlgoId"] for a in (await client.get("/fapi/v1/openAlgoOrders")).body] == ["keep-me"]
    assert (await client.get("/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"})).body == []
    market = (await client.get("/fapi/v1/allOrders", {"symbol": "BTCUSDT"})).body[0]
    await venue.admin.backdate(8 * 86_400_000, symbol="BTCUSDT", order_id=market["orderId"])
    assert (await client.get("/fapi/v1/allOrders", {"symbol": "BTCUSDT"})).body == []
    assert (await client.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"})).body == []
    assert len((await client.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT", "fromId": "0"})).body) == 1


async def test_restart_from_a_snapshot_and_start_from_one(
    venue: EmulatorProcess, client: VenueClient, tmp_path: Path
) -> None:
    snapshot = Path(await venue.admin.snapshot(str(tmp_path / "empty.json")))
    await _open_position_and_stop(client)
    await venue.restart(from_snapshot=snapshot)  # back to the state before the trades
    assert await _snapshot_view(client) == ([], [], [], "100000.00000000")
    await _open_position_and_stop(client)
    traded = Path(await venue.admin.snapshot(str(tmp_path / "traded.json")))
    expected = await _snapshot_view(client)
    async with (
        running_emulator(symbols=["BTCUSDT", "ETHUSDT"], state_file=traded) as other,
        VenueClient(other.http_url, other.api_key, other.api_secret) as other_client,
    ):
        assert await _snapshot_view(other_client) == expected


async def test_depth_makes_a_market_order_sweep_levels_over_rest(
    venue: EmulatorProcess, client: VenueClient
) -> None:
    assert (await venue.admin.set_depth("ETHUSDT", "0.010"))["level_qty"] == "0.010"
    order = await client.post(
        "/fapi/v1/order",
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.025",
            "newOrderRespType": "RESULT",
        },
    )
    trades = (await client.get("/fapi/v1/userTrades", {"symbol": "ETHUSDT"})).body
    assert [(t["orderId"], t["price"], t["qty"]) for t in trades] == [
        (order.body["orderId"], "3000.00", "0.010"),
        (order.body["orderId"], "3000.01", "0.010"),
        (order.body["orderId"], "3000.02", "0.005"),
    ]
    assert len({t["time"] for t in trades}) == 1
    assert (await venue.admin.set_depth("ETHUSDT", None))["level_qty"] is None
    await client.post(
        "/fapi/v1/order", {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.025"}
    )
    assert len((await client.get("/fapi/v1/userTrades", {"symbol": "ETHUSDT"})).body) == 4
    with pytest.raises(AdminApiError) as bad:
        await venue.admin.set_depth("ETHUSDT", "0")
    assert bad.value.status == 400
