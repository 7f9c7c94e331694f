"""The venue's limit scopes as real ccxt 4.5.90 and nautilus_trader 1.231 see them: two accounts behind one
address share its request weight (both clients read the count or the refusal), orders are per account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest
from ccxt.base import errors as ccxt_errors
from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
from nautilus_trader.adapters.binance.factories import get_cached_binance_http_client
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.http.error import BinanceClientError
from nautilus_trader.common.component import LiveClock

from emulator.clients import configure_ccxt
from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from tests.emulator.conftest import window_with_room

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

MAIN = AccountSpec(name="main", api_key="key-main", api_secret="secret-main")
SUB = AccountSpec(name="sub", api_key="key-sub", api_secret="secret-sub")
BTC = "BTC/USDT:USDT"


@pytest.fixture
async def venue() -> AsyncIterator[EmulatorProcess]:
    async with running_emulator(seed=4, symbols=["BTCUSDT"], accounts=[MAIN, SUB]) as emulator:
        await emulator.admin.set_price("BTCUSDT", "60000.0")
        yield emulator


def _ccxt(venue: EmulatorProcess, account: AccountSpec) -> Any:
    client = ccxt.binanceusdm({"apiKey": account.api_key, "secret": account.api_secret, "timeout": 10_000})
    configure_ccxt(client, venue.http_url)
    return client


def _used(exchange: Any) -> int:
    headers = {k.lower(): v for k, v in exchange.last_response_headers.items()}
    return int(headers["x-mbx-used-weight-1m"])


async def test_ccxt_accounts_behind_one_address_share_the_weight(venue: EmulatorProcess) -> None:
    main, sub = _ccxt(venue, MAIN), _ccxt(venue, SUB)
    try:
        await main.load_markets()
        await sub.load_markets()
        await venue.admin.set_ratelimit(weight_per_minute=22, ban_after=1, ban_seconds=30, reset=True)
        await window_with_room(60)
        await main.fetch_balance()  # /fapi/v3/account, weight 5
        assert _used(main) == 5
        await sub.fetch_balance()
        assert _used(sub) == 10  # the other account's request counted on the same address
        await main.fetch_balance()
        await sub.fetch_balance()
        assert _used(sub) == 20
        with pytest.raises(ccxt_errors.DDoSProtection, match="-1003"):
            await main.fetch_balance()
        with pytest.raises(ccxt_errors.DDoSProtection, match="banned"):  # the second 429: a 418 ban
            await sub.fetch_balance()
        usage = (await venue.admin.ratelimit())["usage"]["addresses"]["127.0.0.1"]
        assert usage["used"] == 20 and usage["banned_until"] > 0
    finally:
        await main.close()
        await sub.close()


async def test_ccxt_orders_are_counted_per_account(venue: EmulatorProcess) -> None:
    main, sub = _ccxt(venue, MAIN), _ccxt(venue, SUB)
    try:
        await main.load_markets()
        await sub.load_markets()
        await venue.admin.set_ratelimit(orders_per_10s=1, ban_after=10, reset=True)
        await window_with_room(10)
        await main.create_order(BTC, "limit", "buy", 0.01, 59000)
        headers = {k.lower(): v for k, v in main.last_response_headers.items()}
        assert (headers["x-mbx-order-count-10s"], headers["x-mbx-order-count-1m"]) == ("1", "1")
        with pytest.raises(ccxt_errors.DDoSProtection, match="-1015"):
            await main.create_order(BTC, "limit", "buy", 0.01, 59000)
        placed = await sub.create_order(BTC, "limit", "buy", 0.01, 59000)  # its own order count
        assert placed["status"] == "open"
    finally:
        await main.close()
        await sub.close()


async def test_nautilus_accounts_behind_one_address_share_the_weight(venue: EmulatorProcess) -> None:
    """nautilus' own HTTP client returns bodies only, and its Rust transport keeps no response header unless
    told to: a refusal reaches it as BinanceClientError(429) with empty headers (no Retry-After). Our
    gated client (recovery/binance/http.py) names the headers; see tests/recovery/test_http_gate.py."""
    clock = LiveClock()
    apis = []
    for account in (MAIN, SUB):
        http = get_cached_binance_http_client.__wrapped__(
            clock=clock,
            account_type=BinanceAccountType.USDT_FUTURES,
            api_key=account.api_key,
            api_secret=account.api_secret,
            base_url=venue.http_url,
        )
        apis.append(BinanceFuturesAccountHttpAPI(http, clock, BinanceAccountType.USDT_FUTURES))
    main, sub = apis
    await venue.admin.set_ratelimit(weight_per_minute=10, ban_after=5, reset=True)
    await window_with_room(60)
    await main.query_futures_account_info(recv_window="5000")  # /fapi/v2/account, 5
    await sub.query_futures_position_risk()  # /fapi/v3/positionRisk, 5: the address' 10
    with pytest.raises(BinanceClientError) as refused:
        await main.query_futures_account_info(recv_window="5000")
    assert refused.value.status == 429
    assert refused.value.message["code"] == -1003
    assert dict(refused.value.headers) == {}
    log = await venue.admin.requests()
    signed = [e for e in log if e["account"] in ("main", "sub")]
    assert {e["address"] for e in signed} == {"127.0.0.1"}
    assert [(e["account"], e["status"]) for e in signed][-3:] == [("main", 200), ("sub", 200), ("main", 429)]
