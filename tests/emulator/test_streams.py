"""WebSockets: combined and raw market streams, SUBSCRIBE/UNSUBSCRIBE, the user stream, stream faults."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from emulator.testing import EmulatorProcess, VenueClient
from tests.emulator.conftest import WS_CLOSE, receive_json, receive_until

pytestmark = pytest.mark.asyncio


async def test_combined_stream_subscribe_and_data(
    venue: EmulatorProcess, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{venue.ws_url}/stream?streams=btcusdt@kline_1m", timeout=WS_CLOSE) as ws:
        await ws.send_json(
            {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 7}
        )
        assert await receive_json(ws) == {"result": None, "id": 7}
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
        listed = await receive_json(ws)
        assert listed == {"result": ["btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@kline_1m"], "id": 8}
        await venue.admin.set_price("BTCUSDT", "60100.0")
        seen = await receive_until(ws, lambda m: m.get("stream") == "btcusdt@aggTrade")
        trade = seen[-1]["data"]
        assert (trade["e"], trade["s"], trade["p"]) == ("aggTrade", "BTCUSDT", "60100.00")
        assert {"a", "q", "f", "l", "T", "m", "E"} <= set(trade)
        book = (await receive_until(ws, lambda m: m.get("stream") == "btcusdt@bookTicker"))[-1]["data"]
        assert book["b"] == book["a"] == "60100.00"
        await venue.admin.close_bar("BTCUSDT")
        closed = await receive_until(
            ws, lambda m: m.get("stream") == "btcusdt@kline_1m" and m["data"]["k"]["x"]
        )
        kline = closed[-1]["data"]["k"]
        assert kline["c"] == "60100.00" and kline["i"] == "1m" and kline["T"] - kline["t"] == 59_999
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 9})
        assert (await receive_until(ws, lambda m: m.get("id") == 9))[-1] == {"result": None, "id": 9}


async def test_raw_stream_and_mark_price(venue: EmulatorProcess, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{venue.ws_url}/ws/btcusdt@markPrice@1s", timeout=WS_CLOSE) as ws:
        update = await receive_json(ws, timeout_s=3)
        assert update["e"] == "markPriceUpdate" and update["s"] == "BTCUSDT"
        assert {"p", "i", "P", "r", "T", "E"} <= set(update)


async def test_user_stream_events_for_an_order(
    venue: EmulatorProcess, client: VenueClient, http: aiohttp.ClientSession
) -> None:
    key = (await client.post("/fapi/v1/listenKey", sign=False)).body["listenKey"]
    async with http.ws_connect(f"{venue.ws_url}/ws?listenKey={key}", timeout=WS_CLOSE) as ws:
        await client.post(
            "/fapi/v1/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "0.010",
                "newClientOrderId": "u-1",
            },
        )
        events = await receive_until(ws, lambda m: m["e"] == "ACCOUNT_UPDATE")
        assert [(e["e"], e.get("o", {}).get("X")) for e in events] == [
            ("ORDER_TRADE_UPDATE", "NEW"),
            ("TRADE_LITE", None),
            ("ORDER_TRADE_UPDATE", "FILLED"),
            ("ACCOUNT_UPDATE", None),
        ]
        assert events[2]["o"]["c"] == "u-1" and events[1]["c"] == "u-1"
        await venue.admin.place_order(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "quantity": "0.010",
                "price": "61000.0",
                "timeInForce": "GTC",
                "newClientOrderId": "web_other",
            }
        )
        other = await receive_json(ws)
        assert (other["o"]["c"], other["o"]["X"]) == (
            "web_other",
            "NEW",
        )  # another client's order, same account
        await venue.admin.expire_listen_key()
        expired = await receive_json(ws)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
        closing = await asyncio.wait_for(ws.receive(), 5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    stale = await http.get(f"{venue.http_url}/ws?listenKey={key}")
    assert stale.status == 400 and (await stale.json())["code"] == -1125


async def test_dropped_frozen_and_refused_streams(
    venue: EmulatorProcess, http: aiohttp.ClientSession
) -> None:
    url = f"{venue.ws_url}/stream?streams=btcusdt@aggTrade"
    async with http.ws_connect(url, timeout=WS_CLOSE) as ws:
        assert await venue.admin.freeze_streams("market") == 1
        await venue.admin.set_price("BTCUSDT", "60200.0")
        with pytest.raises(TimeoutError):
            await receive_json(ws, timeout_s=0.5)  # frozen: nothing arrives
        await venue.admin.freeze_streams("market", frozen=False)
        await venue.admin.set_price("BTCUSDT", "60300.0")
        assert (await receive_json(ws))["data"]["p"] == "60300.00"
        assert await venue.admin.drop_streams("market") == 1
        dropped = await asyncio.wait_for(ws.receive(), 5)
        assert dropped.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    await venue.admin.refuse_streams(1)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, timeout=WS_CLOSE)
    assert refused.value.status == 503
    async with http.ws_connect(url, timeout=WS_CLOSE) as ws:  # only one refusal was asked for
        await venue.admin.set_price("BTCUSDT", "60400.0")
        assert (await receive_json(ws))["data"]["p"] == "60400.00"


async def test_all_mark_prices_stream(venue: EmulatorProcess, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{venue.ws_url}/stream?streams=!markPrice@arr@1s", timeout=WS_CLOSE) as ws:
        frame = await receive_json(ws, timeout_s=3)
        assert frame["stream"] == "!markPrice@arr@1s"
        assert sorted(update["s"] for update in frame["data"]) == ["BTCUSDT", "ETHUSDT"]
