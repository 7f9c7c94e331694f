"""nautilus' Binance HTTP client behind the node's request gate, against the emulator: every request takes a
slot with its endpoint's weight (one slot, also inside our fetch's), the venue's usage headers reach the
limiter, exchangeInfo's limits are learnt, a 429 carries its Retry-After, and after READY nothing waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from nautilus_trader.adapters.binance.common.enums import (
    BinanceAccountType,
    BinanceEnvironment,
    BinanceKeyType,
)
from nautilus_trader.adapters.binance.futures.http.account import BinanceFuturesAccountHttpAPI
from nautilus_trader.adapters.binance.futures.http.market import BinanceFuturesMarketHttpAPI
from nautilus_trader.adapters.binance.http.error import BinanceClientError
from nautilus_trader.common.component import LiveClock

from emulator.testing import EmulatorProcess
from recovery.binance.fetch import Fetcher, rate_limited
from recovery.binance.http import RequestGate, gated_http_client
from recovery.ratelimit import LocalRequestLimiter, Ticket, VenueLimits, VenueUsage, holding

pytestmark = pytest.mark.asyncio


@dataclass
class RecordingLimiter:
    """A real LocalRequestLimiter that also records what passed through it."""

    inner: LocalRequestLimiter = field(default_factory=lambda: LocalRequestLimiter(share=1.0))
    slots: list[tuple[int, int]] = field(default_factory=list)
    usages: list[VenueUsage] = field(default_factory=list)

    def slot(self, weight: int, *, orders: int = 0) -> AbstractAsyncContextManager[Ticket]:
        self.slots.append((weight, orders))
        return self._slot(weight, orders)

    @asynccontextmanager
    async def _slot(self, weight: int, orders: int) -> AsyncIterator[Ticket]:
        async with self.inner.slot(weight, orders=orders) as ticket:
            recorded = _Recorded(self, ticket)
            with holding(recorded):  # requests inside belong to the recorded ticket
                yield recorded

    def pause(self, seconds: float) -> None:
        self.inner.pause(seconds)

    def update_limits(self, limits: VenueLimits) -> None:
        self.inner.update_limits(limits)

    def budget_detail(self) -> dict[str, Any]:
        return self.inner.budget_detail()


@dataclass
class _Recorded:
    limiter: RecordingLimiter
    ticket: Ticket

    @property
    def weight(self) -> int:
        return self.ticket.weight

    async def observe(self, usage: VenueUsage) -> None:
        self.limiter.usages.append(usage)
        await self.ticket.observe(usage)


@pytest.fixture
def recorder() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture
def gate(recorder: RecordingLimiter) -> RequestGate:
    return RequestGate(recorder)


def _apis(venue: EmulatorProcess, gate: RequestGate) -> tuple[Any, Any]:
    clock = LiveClock()
    http = gated_http_client(
        gate,
        clock=clock,
        account_type=BinanceAccountType.USDT_FUTURES,
        api_key=venue.api_key,
        api_secret=venue.api_secret,
        key_type=BinanceKeyType.HMAC,
        base_url=venue.http_url,
        environment=BinanceEnvironment.LIVE,
        is_us=False,
        proxy_url=None,
    )
    account = BinanceFuturesAccountHttpAPI(http, clock, BinanceAccountType.USDT_FUTURES)
    market = BinanceFuturesMarketHttpAPI(http, BinanceAccountType.USDT_FUTURES)
    return account, market


async def test_each_request_takes_a_slot_of_its_weight_and_reports_the_venue_count(
    venue: EmulatorProcess, gate: RequestGate, recorder: RecordingLimiter
) -> None:
    account, market = _apis(venue, gate)
    await venue.admin.set_ratelimit(reset=True)
    await market.query_futures_exchange_info()
    await account.query_futures_account_info(recv_window="5000")
    await account.query_futures_position_risk()
    await account.query_open_orders()  # no symbol: weight 40
    assert recorder.slots == [(1, 0), (5, 0), (5, 0), (40, 0)]
    assert [u.weight for u in recorder.usages] == [1, 6, 11, 51]  # the address' count, from the header
    assert {u.window_s for u in recorder.usages} == {60.0}
    assert (gate.requests, gate.weight) == (4, 51)
    log = [e for e in await venue.admin.requests() if e["method"] != "WS"]
    assert [e["weight"] for e in log][-4:] == [1, 5, 5, 40]


async def test_the_limits_exchange_info_announces_are_learnt(
    venue: EmulatorProcess, gate: RequestGate, recorder: RecordingLimiter
) -> None:
    _, market = _apis(venue, gate)
    await venue.admin.set_ratelimit(weight_per_minute=300, weight_window_s=2, orders_per_10s=20)
    await market.query_futures_exchange_info()
    assert recorder.inner.limits == VenueLimits(weight=300, window_s=2.0, orders_10s=20, orders_1m=1200)
    assert recorder.usages[-1].window_s == 2.0  # X-MBX-USED-WEIGHT-2S


async def test_a_refusal_carries_retry_after_to_nautilus_and_to_the_limiter(
    venue: EmulatorProcess, gate: RequestGate, recorder: RecordingLimiter
) -> None:
    account, _ = _apis(venue, gate)
    await venue.admin.rate_limit("/fapi/v2/account", status=429, retry_after_s=7)
    with pytest.raises(BinanceClientError) as refused:
        await account.query_futures_account_info(recv_window="5000")
    limited = rate_limited(refused.value)
    assert limited is not None and (limited.status, limited.retry_after_s) == (429, 7.0)
    assert recorder.usages[-1].limited == 429 and recorder.usages[-1].retry_after_s == 7.0


async def test_inside_our_fetch_one_slot_is_taken_not_two(
    venue: EmulatorProcess, gate: RequestGate, recorder: RecordingLimiter
) -> None:
    account, _ = _apis(venue, gate)
    fetcher = Fetcher(account=account, limiter=recorder, request_timeout=5.0)
    await fetcher.trades("BTCUSDT")
    await fetcher.open_orders()
    assert recorder.slots == [(5, 0), (40, 0)]  # the fetch's own slots; the transport took none
    assert len(recorder.usages) == 2  # and reported the answers to them


async def test_orders_count_and_nothing_waits_after_ready(
    venue: EmulatorProcess, gate: RequestGate, recorder: RecordingLimiter
) -> None:
    account, _ = _apis(venue, gate)
    await account.query_futures_hedge_mode()
    gate.live()
    await account.query_futures_account_info(recv_window="5000")
    assert recorder.slots == [(30, 0)]  # positionSide/dual while recovering; nothing after READY
    assert gate.requests == 1


@dataclass
class SlowLimiter(RecordingLimiter):
    """Every slot waits this long for the budget first (as a node does while its group's window is spent)."""

    delay_s: float = 1.5

    @asynccontextmanager
    async def _slot(self, weight: int, orders: int) -> AsyncIterator[Ticket]:
        await asyncio.sleep(self.delay_s)
        async with super()._slot(weight, orders) as ticket:
            yield ticket


async def test_a_signed_request_waits_for_the_budget_before_it_is_signed(venue: EmulatorProcess) -> None:
    """Signed, then held for the budget, a request reached the venue older than its recvWindow (-1021): it is
    now signed after the wait, with the timestamp of that moment."""
    slow = SlowLimiter()
    account, _ = _apis(venue, RequestGate(slow))
    await venue.admin.set_ratelimit(reset=True)
    info = await account.query_futures_account_info(recv_window="1000")  # held 1.5 s, valid for 1 s
    assert info.assets
    assert slow.slots == [(5, 0)]  # one slot, taken before signing; the transport found it held
    [entry] = [e for e in await venue.admin.requests() if e["path"] == "/fapi/v2/account"]
    assert entry["status"] == 200


async def test_a_node_without_a_confirmed_lease_signs_no_order(venue: EmulatorProcess) -> None:
    """The fence is down: GETs pass, an order is refused before it is signed (the venue never sees it); once
    the lease is confirmed the same order goes through."""
    from nautilus_trader.adapters.binance.common.enums import BinanceOrderSide, BinanceOrderType

    from recovery.lease_guard import Fence, FencedRequestError

    fence = Fence()
    account, _ = _apis(venue, RequestGate(RecordingLimiter(), fence=fence))

    async def buy() -> Any:
        return await account.new_order(
            symbol="BTCUSDT",
            side=BinanceOrderSide.BUY,
            order_type=BinanceOrderType.MARKET,
            quantity="0.010",
            new_client_order_id="fenced-1",
        )

    await account.query_futures_account_info(recv_window="5000")
    with pytest.raises(FencedRequestError, match="POST /fapi/v1/order refused"):
        await buy()
    assert "fenced-1" not in await venue.admin.attempts()
    fence.confirmed = True
    await buy()
    assert (await venue.admin.attempts())["fenced-1"]["accepted"] == 1
