"""Contract test: replay the requests recorded from real ccxt 4.5.90 and nautilus_trader 1.231 clients
(a copy of /work/shared/venue-traces/restart-sequence.jsonl under fixtures/) and check that every answer
decodes with the client's own schema and parses into the reports the client builds from it. User-stream
events seen along the way are decoded with nautilus' event schemas too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import msgspec
import pytest
from nautilus_trader.adapters.binance.common.schemas.account import BinanceOrder, BinanceUserTrade
from nautilus_trader.adapters.binance.common.schemas.market import BinanceKline, BinanceTime
from nautilus_trader.adapters.binance.common.schemas.user import BinanceListenKey
from nautilus_trader.adapters.binance.futures.enums import BinanceFuturesEnumParser
from nautilus_trader.adapters.binance.futures.schemas.account import (
    BinanceFuturesAccountInfo,
    BinanceFuturesAlgoOrder,
    BinanceFuturesDualSidePosition,
    BinanceFuturesPositionRisk,
    BinanceFuturesSymbolConfig,
)
from nautilus_trader.adapters.binance.futures.schemas.market import BinanceFuturesExchangeInfo
from nautilus_trader.adapters.binance.futures.schemas.user import (
    BinanceFuturesAccountUpdateMsg,
    BinanceFuturesAlgoUpdateMsg,
    BinanceFuturesOrderUpdateMsg,
    BinanceFuturesTradeLiteMsg,
    BinanceFuturesUserMsgData,
)
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import AccountId, InstrumentId

from emulator.clients import configure_ccxt
from emulator.testing import EmulatorProcess, VenueClient
from tests.emulator.conftest import WS_CLOSE, receive_json

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

TRACE = Path(__file__).parent / "fixtures" / "restart-sequence.jsonl"
ACCOUNT = AccountId("BINANCE-USDT_FUTURES-master")
INSTRUMENT = InstrumentId.from_str("BTCUSDT-PERP.BINANCE")
PARSER = BinanceFuturesEnumParser()
TS = 1


def _order_report(order: BinanceOrder) -> None:
    order.parse_to_order_status_report(ACCOUNT, INSTRUMENT, UUID4(), PARSER, False, TS)


def _algo_report(algo: BinanceFuturesAlgoOrder) -> None:
    algo.parse_to_order_status_report(ACCOUNT, INSTRUMENT, UUID4(), PARSER, TS)


def _orders(raw: bytes) -> object:
    orders = msgspec.json.decode(raw, type=list[BinanceOrder])
    for order in orders:
        _order_report(order)
    return orders


def _algos(raw: bytes) -> object:
    algos = msgspec.json.decode(raw, type=list[BinanceFuturesAlgoOrder])
    for algo in algos:
        _algo_report(algo)
    return algos


def _trades(raw: bytes) -> object:
    trades = msgspec.json.decode(raw, type=list[BinanceUserTrade])
    for trade in trades:
        trade.parse_to_fill_report(ACCOUNT, INSTRUMENT, UUID4(), TS)
    return trades


def _positions(raw: bytes) -> object:
    positions = msgspec.json.decode(raw, type=list[BinanceFuturesPositionRisk])
    for position in positions:
        position.parse_to_position_status_report(ACCOUNT, INSTRUMENT, PARSER, UUID4(), TS)
    return positions


def _klines(raw: bytes) -> object:
    rows = msgspec.json.decode(raw, type=list[BinanceKline])
    bar_type = BarType.from_str("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    return [row.parse_to_binance_bar(bar_type) for row in rows]


def _new_order(raw: bytes) -> object:
    order = msgspec.json.decode(raw, type=BinanceOrder)
    _order_report(order)
    return order


def _new_algo(raw: bytes) -> object:
    algo = msgspec.json.decode(raw, type=BinanceFuturesAlgoOrder)
    _algo_report(algo)
    return algo


def _account(raw: bytes) -> object:
    info = msgspec.json.decode(raw, type=BinanceFuturesAccountInfo)
    info.parse_to_account_balances()
    info.parse_to_margin_balances()
    return info


NAUTILUS_DECODERS: dict[tuple[str, str], Callable[[bytes], object]] = {
    ("GET", "/fapi/v1/exchangeInfo"): lambda raw: msgspec.json.decode(raw, type=BinanceFuturesExchangeInfo),
    ("GET", "/fapi/v2/account"): _account,
    ("GET", "/fapi/v3/positionRisk"): _positions,
    ("GET", "/fapi/v1/symbolConfig"): lambda raw: msgspec.json.decode(
        raw, type=list[BinanceFuturesSymbolConfig]
    ),
    ("GET", "/fapi/v1/positionSide/dual"): lambda raw: msgspec.json.decode(
        raw, type=BinanceFuturesDualSidePosition
    ),
    ("GET", "/fapi/v1/time"): lambda raw: msgspec.json.decode(raw, type=BinanceTime),
    ("POST", "/fapi/v1/listenKey"): lambda raw: msgspec.json.decode(raw, type=BinanceListenKey),
    ("DELETE", "/fapi/v1/listenKey"): lambda raw: msgspec.json.decode(raw, type=dict[str, Any]),
    ("GET", "/fapi/v1/openOrders"): _orders,
    ("GET", "/fapi/v1/allOrders"): _orders,
    ("GET", "/fapi/v1/userTrades"): _trades,
    ("GET", "/fapi/v1/openAlgoOrders"): _algos,
    ("GET", "/fapi/v1/allAlgoOrders"): _algos,
    ("GET", "/fapi/v1/klines"): _klines,
    ("POST", "/fapi/v1/order"): _new_order,
    ("POST", "/fapi/v1/algoOrder"): _new_algo,
}

EVENT_DECODERS: dict[str, type[msgspec.Struct]] = {
    "ORDER_TRADE_UPDATE": BinanceFuturesOrderUpdateMsg,
    "ALGO_UPDATE": BinanceFuturesAlgoUpdateMsg,
    "ACCOUNT_UPDATE": BinanceFuturesAccountUpdateMsg,
    "TRADE_LITE": BinanceFuturesTradeLiteMsg,
}


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TRACE.read_text().splitlines() if line.strip()]


async def _send(client: VenueClient, record: dict[str, Any]) -> tuple[int, bytes]:
    method, path = record["method"], record["path"]
    params = {k: v for k, v in record["params"].items()}
    if record["signed"] is False and path == "/fapi/v1/listenKey":
        reply = await client.request(method, path, params, sign=False)
    else:
        reply = await client.request(
            method, path, params, sign=bool(record["signed"]), in_body=bool(record["params_in_body"])
        )
    return reply.status, msgspec.json.encode(reply.body)


def _check_ccxt(exchange: Any, record: dict[str, Any], raw: bytes) -> None:
    body = msgspec.json.decode(raw)
    market = exchange.market("BTC/USDT:USDT")
    if record["path"] == "/fapi/v1/exchangeInfo":
        parsed = [exchange.parse_market(symbol) for symbol in body["symbols"]]
        assert "BTC/USDT:USDT" in {m["symbol"] for m in parsed}
        return
    order = exchange.parse_order(body, market)
    assert order["id"] and order["symbol"] == "BTC/USDT:USDT"
    assert order["clientOrderId"] == (
        record["params"].get("newClientOrderId") or record["params"].get("clientAlgoId")
    )
    if record["params"]["type"] == "MARKET":
        assert order["status"] == "closed" and order["filled"] == float(record["params"]["quantity"])
    else:
        assert order["status"] == "open" and order["triggerPrice"] == float(record["params"]["triggerPrice"])


async def test_every_recorded_request_is_answered_in_a_shape_the_client_accepts(
    venue: EmulatorProcess, client: VenueClient, http: aiohttp.ClientSession
) -> None:
    exchange = ccxt.binanceusdm({"apiKey": venue.api_key, "secret": venue.api_secret})
    configure_ccxt(exchange, venue.http_url)
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    listen_key = ""
    checked: list[str] = []
    try:
        await exchange.load_markets()
        for record in _records():
            method, path = record["method"], record["path"]
            if method == "WS":
                url = (
                    f"{venue.ws_url}/ws?listenKey={listen_key}"
                    if path == "/ws"
                    else (f"{venue.ws_url}/stream?streams=btcusdt@kline_1m")
                )
                sockets.append(await http.ws_connect(url, timeout=WS_CLOSE))
                checked.append(f"{method} {path}")
                continue
            if method == "WS-SUBSCRIBE":
                market_ws = [ws for ws in sockets if not ws.closed][-1]
                await market_ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1})
                assert await receive_json(market_ws) == {"result": None, "id": 1}
                checked.append(method)
                continue
            if method == "GET" and record["status"] == 101:
                assert any(not ws.closed for ws in sockets)  # the upgrade the line above recorded
                continue
            status, raw = await _send(client, record)
            assert status == record["status"], (record, raw)
            if record["client"].startswith("nautilus"):
                decoded = NAUTILUS_DECODERS[(method, path)](raw)
                if isinstance(decoded, BinanceListenKey):
                    listen_key = decoded.listenKey
            else:
                _check_ccxt(exchange, record, raw)
            checked.append(f"{method} {path}")
        user_events = await _drain_user_events(sockets)
    finally:
        await exchange.close()
        for ws in sockets:
            await ws.close()
    assert len(checked) == len([r for r in _records() if r["status"] != 101])
    kinds = [event["e"] for event in user_events]
    assert {"ORDER_TRADE_UPDATE", "ALGO_UPDATE", "ACCOUNT_UPDATE", "TRADE_LITE"} <= set(kinds)


async def _drain_user_events(sockets: list[aiohttp.ClientWebSocketResponse]) -> list[dict[str, Any]]:
    """Everything the user streams carried, each decoded with nautilus' schema for its event type."""
    events: list[dict[str, Any]] = []
    for ws in sockets:
        while not ws.closed:
            try:
                frame = await asyncio.wait_for(ws.receive(), 0.3)
            except TimeoutError:
                break
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if "e" not in message or message.get("e") not in EVENT_DECODERS:
                continue
            raw = msgspec.json.encode(message)
            msgspec.json.decode(raw, type=BinanceFuturesUserMsgData)
            msgspec.json.decode(raw, type=EVENT_DECODERS[message["e"]])
            events.append(message)
    return events
