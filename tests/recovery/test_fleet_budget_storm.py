"""Redis restarted in the middle of a request storm: two nodes' recovery requests (the node's own path:
nautilus' HTTP client behind the gate, our fetch, the fleet limiter) against one address of the emulator,
with the budget on a private Redis that is stopped while they run and started again. The nodes go on under
their local share, say so, come back to the shared budget, and the venue never refuses a request."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
import redis.asyncio as aioredis
from nautilus_trader.adapters.binance.common.enums import (
    BinanceAccountType,
    BinanceEnvironment,
    BinanceKeyType,
)
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.futures.http.market import BinanceFuturesMarketHttpAPI
from nautilus_trader.common.component import LiveClock

from emulator.config import AccountSpec
from emulator.testing import EmulatorProcess, running_emulator
from recovery.binance.fetch import Fetcher
from recovery.binance.http import RequestGate, gated_http_client
from recovery.fleet_limiter import FleetRequestLimiter
from supervisor import rate_budget
from tests.recovery.strategy_support import private_redis

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.redis]

ACCOUNTS = [
    AccountSpec(name="alpha", api_key="key-alpha", api_secret="secret-alpha"),
    AccountSpec(name="beta", api_key="key-beta", api_secret="secret-beta"),
]
LIMIT = 200  # weight per 1-second window and address; the fleet's recovery budget is 0.9 of it
REQUESTS = 60  # per node, userTrades at weight 5: 600 weight together, six windows at least


class Node:
    """The request path of one recovering node, without the rest of the node."""

    def __init__(
        self,
        venue: EmulatorProcess,
        account: AccountSpec,
        redis: aioredis.Redis,
        group: str,
        progress: asyncio.Condition,
    ) -> None:
        self.progress = progress
        self.limiter = FleetRequestLimiter(
            redis=redis,
            group=group,
            account=f"{group}/{account.name}",
            call_timeout_s=0.3,
            retry_redis_after_s=0.5,
        )
        self.gate = RequestGate(self.limiter)
        clock = LiveClock()
        http = gated_http_client(
            self.gate,
            clock=clock,
            account_type=BinanceAccountType.USDT_FUTURES,
            api_key=account.api_key,
            api_secret=account.api_secret,
            key_type=BinanceKeyType.HMAC,
            base_url=venue.http_url,
            environment=BinanceEnvironment.LIVE,
            is_us=False,
            proxy_url=None,
        )
        self.market = BinanceFuturesMarketHttpAPI(http, BinanceAccountType.USDT_FUTURES)
        self.fetcher = Fetcher(
            account=BinanceFuturesAccountHttpAPI(http, clock, BinanceAccountType.USDT_FUTURES),
            limiter=self.limiter,
            request_timeout=5.0,
            max_rate_limit_wait=0.0,  # a refusal fails the test instead of being waited out
        )
        self.done = 0

    async def storm(self) -> None:
        await self.market.query_futures_exchange_info()  # the venue's limits: 200 per second

        async def one() -> None:
            await self.fetcher.trades("BTCUSDT")
            self.done += 1
            async with self.progress:
                self.progress.notify_all()

        async with asyncio.TaskGroup() as tasks:
            for i in range(REQUESTS):
                tasks.create_task(one(), name=f"storm-{i}")


async def test_redis_restarted_mid_storm() -> None:
    async with running_emulator(seed=8, symbols=["BTCUSDT"], accounts=ACCOUNTS) as venue:
        await venue.admin.set_ratelimit(weight_per_minute=LIMIT, weight_window_s=1, ban_after=0, reset=True)
        group = rate_budget.default_rate_group(venue.http_url, "storm-host")
        progress = asyncio.Condition()
        async with private_redis() as server:
            clients = [
                aioredis.Redis(port=server.port, socket_connect_timeout=0.2, socket_timeout=0.5)
                for _ in ACCOUNTS
            ]
            nodes = [
                Node(venue, account, client, group, progress)
                for account, client in zip(ACCOUNTS, clients, strict=True)
            ]
            try:
                storm = asyncio.gather(*(node.storm() for node in nodes))
                await _until(
                    progress,
                    lambda: sum(n.done for n in nodes) >= 30,
                    "a fifth of the storm on the shared budget",
                )
                assert all(n.limiter.scope == "fleet" for n in nodes)
                await server.stop()
                await _until(
                    progress,
                    lambda: all(n.limiter.scope == "local" for n in nodes),
                    "both nodes on their local share",
                )
                local_before = sum(n.done for n in nodes)
                await _until(
                    progress,
                    lambda: sum(n.done for n in nodes) >= local_before + 10,
                    "requests while Redis is down",
                )
                async with private_redis(server.port):
                    await asyncio.wait_for(storm, 60)
                    limits: Any = await clients[0].hgetall(rate_budget.limits_key(group))
                    assert limits[b"weight"] == str(LIMIT).encode()  # published again to the new Redis
                    after = [n.limiter.scope for n in nodes]
            finally:
                for client in clients:
                    await client.aclose()

        log = [e for e in await venue.admin.requests() if e["method"] != "WS"]

    assert [n.done for n in nodes] == [REQUESTS, REQUESTS]
    refused = [(e["path"], e["status"]) for e in log if e["status"] in (418, 429)]
    assert refused == [], f"the venue refused {refused}"
    per_window: dict[int, int] = defaultdict(int)
    for entry in log:
        per_window[entry["time"] // 1000] += entry["weight"]
    assert max(per_window.values()) <= LIMIT, dict(per_window)
    assert after == ["fleet", "fleet"], "back on the shared budget once Redis answers again"
    for node in nodes:
        detail = node.limiter.budget_detail()
        assert detail["scope"] == "local" and detail["fallbacks"] == 1
        assert detail["reason"].startswith("fleet budget in Redis unavailable: ")
        assert detail["local_requests"] > 0


async def _until(progress: asyncio.Condition, condition: Any, what: str, timeout_s: float = 30.0) -> None:
    """Wait until `condition()` holds; it is checked whenever a request of the storm completes."""
    try:
        async with asyncio.timeout(timeout_s), progress:
            await progress.wait_for(condition)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
