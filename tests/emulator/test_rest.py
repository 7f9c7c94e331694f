"""REST behaviour of a running emulator: authentication, the venue's errors and statuses, history windows,
orders and their queries, batch orders, income, klines."""

from __future__ import annotations

import time
from decimal import Decimal

import aiohttp
import pytest

from emulator.testing import EmulatorProcess, VenueClient

pytestmark = pytest.mark.asyncio

DAY_MS = 86_400_000
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.010",
    "price": "59000.0",
    "timeInForce": "GTC",
}


def _now() -> int:
    return time.time_ns() // 1_000_000


async def test_public_endpoints(client: VenueClient) -> None:
    server = (await client.get("/fapi/v1/time", sign=False)).body["serverTime"]
    assert abs(server - _now()) < 2000
    info = (await client.get("/fapi/v1/exchangeInfo", sign=False)).body
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = info["symbols"][0]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10" and filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    price = (await client.get("/fapi/v1/ticker/price", {"symbol": "BTCUSDT"}, sign=False)).body
    assert price["price"] == "60000.00"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"api_key": ""}, 401, -2014),
        ({"api_key": "nobody"}, 401, -2015),
        ({"secret": "wrong"}, 400, -1022),
        ({"timestamp": 1}, 400, -1021),  # stale
        ({"timestamp": 10**13}, 400, -1021),  # ahead of the server
    ],
)
async def test_authentication_errors(
    client: VenueClient, kwargs: dict[str, object], status: int, code: int
) -> None:
    reply = await client.get("/fapi/v2/account", **kwargs)  # type: ignore[arg-type]
    assert (reply.status, reply.code) == (status, code)


async def test_signature_covers_query_and_body(client: VenueClient) -> None:
    reply = await client.post("/fapi/v1/order", {**LIMIT_BUY, "newOrderRespType": "RESULT"}, in_body=True)
    assert reply.status == 200 and reply.body["status"] == "NEW"
    assert (await client.get("/fapi/v1/openOrders", {"symbol": "BTCUSDT"})).body[0]["orderId"] == reply.body[
        "orderId"
    ]


async def test_unknown_paths_and_garbage_get_venue_json_not_tracebacks(
    venue: EmulatorProcess, client: VenueClient, http: aiohttp.ClientSession
) -> None:
    reply = await client.get("/fapi/v9/nothing", sign=False)
    assert (reply.status, reply.code) == (404, -5000)
    garbage = [
        ("GET", "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=abc"),
        ("GET", "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=-5x"),
        ("GET", "/fapi/v1/klines?symbol=BTCUSDT&interval=2m"),
        ("POST", "/fapi/v1/order?%ZZ=%%%"),
        ("GET", "/fapi/v1/depth?symbol=NOPE"),
    ]
    for method, url in garbage:
        async with http.request(method, venue.http_url + url) as response:
            body = await response.json(content_type=None)
            assert response.status in (400, 401), (url, response.status, body)
            assert set(body) == {"code", "msg"} and "Traceback" not in body["msg"]


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/fapi/v1/order", {**LIMIT_BUY, "type": "STOP_MARKET", "stopPrice": "50000.0"}, -4120),
        ("/fapi/v1/order", {**LIMIT_BUY, "symbol": "NOPEUSDT"}, -1121),
        ("/fapi/v1/order", {**LIMIT_BUY, "quantity": "0.0101"}, -1111),
        ("/fapi/v1/order", {**LIMIT_BUY, "quantity": "1,5"}, -1100),
        ("/fapi/v1/order", {k: v for k, v in LIMIT_BUY.items() if k != "side"}, -1102),
        ("/fapi/v1/order", {**LIMIT_BUY, "type": "MARKET", "price": "", "quantity": "100"}, -2019),
        ("/fapi/v1/order", {**LIMIT_BUY, "side": "SELL", "price": "61000.0", "reduceOnly": "true"}, -2022),
        (
            "/fapi/v1/algoOrder",
            {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.010",
                "triggerPrice": "61000.0",
            },
            -2021,
        ),
    ],
)
async def test_order_errors_over_http(
    client: VenueClient, path: str, params: dict[str, str], code: int
) -> None:
    reply = await client.post(path, params)
    assert (reply.status, reply.code) == (400, code)


async def test_unknown_orders(client: VenueClient) -> None:
    query = await client.get("/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": "1"})
    assert (query.status, query.code, query.body["msg"]) == (400, -2013, "Order does not exist.")
    cancel = await client.delete("/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "nope"})
    assert (cancel.status, cancel.code) == (400, -2011)
    algo = await client.get("/fapi/v1/algoOrder", {"clientAlgoId": "nope"})
    assert algo.code == -2013
    algo_cancel = await client.delete("/fapi/v1/algoOrder", {"algoId": "1"})
    assert algo_cancel.code == -2011


@pytest.mark.parametrize("path", ["/fapi/v1/userTrades", "/fapi/v1/allOrders", "/fapi/v1/allAlgoOrders"])
async def test_history_windows_are_at_most_seven_days(client: VenueClient, path: str) -> None:
    now = _now()
    ok = await client.get(
        path, {"symbol": "BTCUSDT", "startTime": str(now - 7 * DAY_MS), "endTime": str(now)}
    )
    assert ok.status == 200 and ok.body == []
    too_long = await client.get(
        path, {"symbol": "BTCUSDT", "startTime": str(now - 8 * DAY_MS), "endTime": str(now)}
    )
    assert (too_long.status, too_long.code) == (400, -1127)


async def test_order_lifecycle_and_queries(client: VenueClient) -> None:
    placed = (await client.post("/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "life-1"})).body
    assert placed["status"] == "NEW" and placed["clientOrderId"] == "life-1" and placed["price"] == "59000.00"
    by_client = (
        await client.get("/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "life-1"})
    ).body
    assert by_client["orderId"] == placed["orderId"]
    market = (
        await client.post(
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.020",
                "newOrderRespType": "RESULT",
            },
        )
    ).body
    assert (market["status"], market["avgPrice"], market["executedQty"]) == ("FILLED", "60000.00", "0.020")
    ack = (
        await client.post(
            "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.010"}
        )
    ).body
    assert (ack["status"], ack["executedQty"]) == ("NEW", "0.000")  # ACK is the order as accepted
    assert (await client.get("/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": str(ack["orderId"])})).body[
        "status"
    ] == "FILLED"
    canceled = (
        await client.delete("/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])})
    ).body
    assert canceled["status"] == "CANCELED"
    all_orders = (await client.get("/fapi/v1/allOrders", {"symbol": "BTCUSDT", "limit": "1000"})).body
    assert [o["status"] for o in all_orders] == ["CANCELED", "FILLED", "FILLED"]
    trades = (await client.get("/fapi/v1/userTrades", {"symbol": "BTCUSDT"})).body
    assert [(t["side"], t["qty"], t["maker"]) for t in trades] == [
        ("BUY", "0.020", False),
        ("SELL", "0.010", False),
    ]
    risk = (await client.get("/fapi/v3/positionRisk")).body
    assert [(p["symbol"], p["positionAmt"], p["entryPrice"]) for p in risk] == [("BTCUSDT", "0.010", "60000")]
    assert (await client.get("/fapi/v3/positionRisk", {"symbol": "ETHUSDT"})).body == []
    all_v2 = (await client.get("/fapi/v2/positionRisk")).body
    assert {p["symbol"] for p in all_v2} == {"BTCUSDT", "ETHUSDT"}


async def test_algo_order_endpoints(client: VenueClient) -> None:
    await client.post(
        "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    )
    stop = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "0.010",
        "triggerPrice": "55000.00",
        "workingType": "CONTRACT_PRICE",
        "reduceOnly": "True",
        "clientAlgoId": "sl-9",
        "timeInForce": "GTC",
        "positionSide": "BOTH",
    }
    placed = (await client.post("/fapi/v1/algoOrder", stop)).body
    assert (placed["algoStatus"], placed["orderType"], placed["actualOrderId"], placed["quantity"]) == (
        "NEW",
        "STOP_MARKET",
        "",
        "0.010",
    )
    duplicate = await client.post("/fapi/v1/algoOrder", stop)
    assert (duplicate.status, duplicate.code) == (400, -4116)
    open_algos = (await client.get("/fapi/v1/openAlgoOrders")).body
    assert [a["clientAlgoId"] for a in open_algos] == ["sl-9"]
    queried = (await client.get("/fapi/v1/algoOrder", {"clientAlgoId": "sl-9"})).body
    assert queried["algoId"] == placed["algoId"]
    canceled = (await client.delete("/fapi/v1/algoOrder", {"algoId": str(placed["algoId"])})).body
    assert canceled == {"algoId": placed["algoId"], "clientAlgoId": "sl-9", "code": "200", "msg": "success"}
    history = (await client.get("/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT", "limit": "1000"})).body
    assert [a["algoStatus"] for a in history] == ["CANCELED"]
    again = (await client.post("/fapi/v1/algoOrder", stop)).body  # no longer open: the id may be reused
    done = (await client.delete("/fapi/v1/algoOpenOrders", {"symbol": "BTCUSDT"})).body
    assert done["code"] == 200
    assert (await client.get("/fapi/v1/algoOrder", {"algoId": str(again["algoId"])})).body[
        "algoStatus"
    ] == "CANCELED"


async def test_batch_orders_answer_each_item(client: VenueClient) -> None:
    batch = (
        '[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.010","price":"59000.0","timeInForce":"GTC",'
        '"newClientOrderId":"b-1"},{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.010",'
        '"price":"59000.0","timeInForce":"GTC","newClientOrderId":"b-1"}]'
    )
    reply = await client.post("/fapi/v1/batchOrders", {"batchOrders": batch}, in_body=True)
    assert reply.status == 200
    assert reply.body[0]["clientOrderId"] == "b-1" and reply.body[1] == {
        "code": -4116,
        "msg": "ClientOrderId is duplicated.",
    }
    canceled = await client.delete(
        "/fapi/v1/batchOrders", {"symbol": "BTCUSDT", "origClientOrderIdList": '["b-1"]'}
    )
    assert canceled.body[0]["status"] == "CANCELED"


async def test_income_explains_the_wallet(venue: EmulatorProcess, client: VenueClient) -> None:
    market = {"symbol": "BTCUSDT", "type": "MARKET", "quantity": "0.020"}
    await client.post("/fapi/v1/order", {**market, "side": "BUY"})
    await venue.admin.set_price("BTCUSDT", "61000.0")
    await client.post("/fapi/v1/order", {**market, "side": "SELL"})
    await venue.admin.funding("BTCUSDT", "0.0001")  # flat now: nobody pays
    await client.post("/fapi/v1/order", {**market, "side": "BUY"})
    assert await venue.admin.funding("BTCUSDT", "0.0001") == 1
    income = (await client.get("/fapi/v1/income", {"limit": "1000"})).body
    kinds = [i["incomeType"] for i in income]
    assert (
        kinds.count("COMMISSION") == 3
        and kinds.count("REALIZED_PNL") == 1
        and kinds.count("FUNDING_FEE") == 1
    )
    wallet = (await client.get("/fapi/v2/account")).body["assets"][0]["walletBalance"]
    assert sum(Decimal(i["income"]) for i in income) == Decimal(wallet)
    only_funding = (await client.get("/fapi/v1/income", {"incomeType": "FUNDING_FEE"})).body
    assert [i["income"] for i in only_funding] == ["-0.12200000"]


async def test_klines_follow_the_venue_semantics(venue: EmulatorProcess, client: VenueClient) -> None:
    before = _now()
    rows = (
        await client.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"}, sign=False)
    ).body
    after = _now()
    newest = rows[-1][0]
    assert before - before % 60_000 <= newest <= after - after % 60_000  # the forming kline is the last
    assert [r[0] for r in rows] == [newest - i * 60_000 for i in (4, 3, 2, 1, 0)]
    now = _now()
    minute = now - now % 60_000
    window = {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(now - 3_600_000), "endTime": str(now)}
    hour = (await client.get("/fapi/v1/klines", window, sign=False)).body
    assert len(hour) == 60 and hour[-1][0] == minute
    again = (await client.get("/fapi/v1/klines", window, sign=False)).body
    assert again[:-1] == hour[:-1]  # history does not change between calls
    later = {**window, "startTime": str(minute + 1)}
    assert (await client.get("/fapi/v1/klines", later, sign=False)).body == []
    assert (
        await client.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "9m"}, sign=False)
    ).code == -1120
    assert (
        await client.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": "3"}, sign=False)
    ).status == 200


async def test_account_settings(client: VenueClient) -> None:
    assert (await client.get("/fapi/v1/positionSide/dual")).body == {"dualSidePosition": False}
    leverage = (await client.post("/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "5"})).body
    assert leverage["leverage"] == 5
    config = (await client.get("/fapi/v1/symbolConfig", {"symbol": "BTCUSDT"})).body
    assert config[0]["leverage"] == 5 and config[0]["marginType"] == "CROSSED"
    same = await client.post("/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "CROSSED"})
    assert same.code == -4046
    brackets = (await client.get("/fapi/v1/leverageBracket", {"symbol": "BTCUSDT"})).body
    assert brackets["symbol"] == "BTCUSDT" and brackets["brackets"][0]["initialLeverage"] == 125
    key = (await client.post("/fapi/v1/listenKey", sign=False)).body["listenKey"]
    assert (await client.request("PUT", "/fapi/v1/listenKey", sign=False)).body == {"listenKey": key}
    assert (await client.post("/fapi/v1/listenKey", sign=False)).body[
        "listenKey"
    ] == key  # the active key again
    assert (await client.delete("/fapi/v1/listenKey", sign=False)).body == {}
    assert (await client.request("PUT", "/fapi/v1/listenKey", sign=False)).code == -1125
