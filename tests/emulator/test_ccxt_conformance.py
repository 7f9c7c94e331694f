"""Real ccxt 4.5.90 `binanceusdm` (async) against a running emulator; only `configure_ccxt` is applied."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest
from ccxt.base import errors as ccxt_errors

from emulator.clients import configure_ccxt
from emulator.testing import EmulatorProcess

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def exchange(venue: EmulatorProcess) -> AsyncIterator[Any]:
    client = ccxt.binanceusdm({"apiKey": venue.api_key, "secret": venue.api_secret, "timeout": 10_000})
    configure_ccxt(client, venue.http_url)
    try:
        yield client
    finally:
        await client.close()


async def test_markets_balance_positions(exchange: Any) -> None:
    markets = await exchange.load_markets()
    assert set(markets) == {BTC, "ETH/USDT:USDT"}
    btc = markets[BTC]
    assert btc["linear"] and btc["swap"] and btc["settle"] == "USDT"
    assert btc["precision"]["price"] == 0.1 and btc["precision"]["amount"] == 0.001
    assert btc["limits"]["cost"]["min"] == 100
    balance = await exchange.fetch_balance()
    assert balance["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    assert await exchange.fetch_positions() == []


async def test_orders_trades_and_positions(exchange: Any) -> None:
    await exchange.load_markets()
    market = await exchange.create_order(BTC, "market", "buy", 0.02)
    assert (market["status"], market["filled"], market["average"]) == ("closed", 0.02, 60000.0)
    limit = await exchange.create_order(BTC, "limit", "buy", 0.01, 59000)
    assert limit["status"] == "open" and limit["price"] == 59000.0
    stop = await exchange.create_order(
        BTC, "STOP_MARKET", "sell", 0.02, None, {"triggerPrice": 55000, "reduceOnly": True}
    )
    assert stop["status"] == "open" and stop["triggerPrice"] == 55000.0 and stop["reduceOnly"]
    take_profit = await exchange.create_order(
        BTC, "TAKE_PROFIT_MARKET", "sell", 0.02, None, {"triggerPrice": 65000, "reduceOnly": True}
    )
    assert take_profit["status"] == "open"
    regular = await exchange.fetch_open_orders(BTC)
    assert [o["id"] for o in regular] == [limit["id"]]
    conditional = await exchange.fetch_open_orders(BTC, params={"trigger": True})
    assert sorted(o["id"] for o in conditional) == sorted([stop["id"], take_profit["id"]])
    positions = await exchange.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"], p["entryPrice"]) for p in positions] == [
        (BTC, "long", 0.02, 60000.0)
    ]
    canceled = await exchange.cancel_order(limit["id"], BTC)
    assert canceled["status"] == "canceled"
    canceled_stop = await exchange.cancel_order(stop["id"], BTC, {"trigger": True})
    assert canceled_stop["id"] == stop["id"]
    assert [o["id"] for o in await exchange.fetch_open_orders(BTC, params={"trigger": True})] == [
        take_profit["id"]
    ]
    trades = await exchange.fetch_my_trades(BTC)
    assert [(t["side"], t["amount"], t["price"], t["takerOrMaker"]) for t in trades] == [
        ("buy", 0.02, 60000.0, "taker")
    ]
    assert trades[0]["fee"] == {"currency": "USDT", "cost": 0.6}


async def test_error_mapping(venue: EmulatorProcess, exchange: Any) -> None:
    await exchange.load_markets()
    exchange.secret = "not-the-secret"
    with pytest.raises(ccxt_errors.AuthenticationError):
        await exchange.fetch_balance()
    exchange.secret = venue.api_secret
    real_nonce = exchange.nonce
    exchange.nonce = lambda: int(time.time() * 1000) - 60_000
    with pytest.raises(ccxt_errors.InvalidNonce):
        await exchange.fetch_balance()
    exchange.nonce = real_nonce
    params = {"newClientOrderId": "ccxt-dup-1"}
    await exchange.create_order(BTC, "limit", "buy", 0.01, 59000, params)
    with pytest.raises(ccxt_errors.InvalidOrder, match="-4116"):
        await exchange.create_order(BTC, "limit", "buy", 0.01, 59000, params)
    assert (await venue.admin.attempts("ccxt-dup-1"))["ccxt-dup-1"]["attempts"] == 2
    with pytest.raises(ccxt_errors.InvalidOrder, match="-2022"):  # needs configure_ccxt's linear error map
        await exchange.create_order(BTC, "market", "sell", 0.01, None, {"reduceOnly": True})
    with pytest.raises(ccxt_errors.InsufficientFunds):
        await exchange.create_order(BTC, "market", "buy", 100, None)
    with pytest.raises(ccxt_errors.InvalidOrder, match="-2021"):
        await exchange.create_order(BTC, "STOP_MARKET", "sell", 0.01, None, {"triggerPrice": 61000})
    with pytest.raises(ccxt_errors.OrderNotFound):
        await exchange.fetch_order("12345", BTC)
    await venue.admin.set_ratelimit(weight_per_minute=10, ban_after=5, reset=True)
    with pytest.raises(ccxt_errors.DDoSProtection, match="429"):
        for _ in range(5):
            await exchange.fetch_balance()
