"""Request limiting for the venue requests a node makes while recovering, injectable: every such request
takes a slot first (`RequestLimiter`), and the venue's answer reports back what the venue counted.

Binance USD-M counts request weight per client address (2,400 per minute, whatever the account) and orders
per account (300 per 10 s, 1,200 per minute), in fixed windows; repeated 429s get the address banned (418).
Reconciliation is the burst that matters: three history calls per symbol at weight 5, ~900 weight for a
50-symbol restart. Two implementations:

- `recovery.fleet_limiter.FleetRequestLimiter`: one budget for every node of a rate group, kept in Redis (the
  node's default; falls back to a `LocalRequestLimiter` when Redis does not answer);
- `LocalRequestLimiter`: this process alone, within a share of the venue's limits, with sliding windows
  (stricter than the venue's fixed windows) and, once the venue has answered, also within the venue's own
  count (`X-MBX-USED-WEIGHT-1M`, which includes every other client behind the address).

Whoever holds a slot makes the requests inside it count against that slot (`current_ticket()`): our fetch
takes a slot with its own weight, and nautilus' HTTP transport, which the fetch calls, does not take another.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from supervisor.clock import Clock, SystemClock

log = logging.getLogger(__name__)

WINDOW_S = 60.0
BINANCE_USDM_WEIGHT_PER_MINUTE = 2400
BINANCE_USDM_ORDERS_PER_10S = 300
BINANCE_USDM_ORDERS_PER_MINUTE = 1200
ORDER_WINDOWS_S = (10.0, 60.0)
# A wait for the venue's next window ends this much after the window starts: clocks are never exact.
WINDOW_MARGIN_S = 0.25

# Request weights of the USD-M endpoints (Binance documentation; GET unless noted), 1 when not listed.
ENDPOINT_WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/balance"): 5,
    ("GET", "/fapi/v3/balance"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/allAlgoOrders"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("POST", "/fapi/v1/order"): 0,
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("PUT", "/fapi/v1/order"): 1,
    ("POST", "/fapi/v1/batchOrders"): 5,
    ("PUT", "/fapi/v1/batchOrders"): 5,
}
# Without a symbol parameter.
NO_SYMBOL_WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/fapi/v1/openOrders"): 40,
    ("GET", "/fapi/v1/openAlgoOrders"): 40,
    ("GET", "/fapi/v1/ticker/price"): 2,
    ("GET", "/fapi/v1/ticker/bookTicker"): 2,
    ("GET", "/fapi/v1/premiumIndex"): 10,
}
# Requests that count on the account's order limits (a batch counts each order in it).
ORDER_ENDPOINTS = frozenset(
    {
        ("POST", "/fapi/v1/order"),
        ("PUT", "/fapi/v1/order"),
        ("POST", "/fapi/v1/algoOrder"),
        ("POST", "/fapi/v1/batchOrders"),
        ("PUT", "/fapi/v1/batchOrders"),
    }
)


def request_weight(method: str, path: str, params: Mapping[str, str] | None = None) -> int:
    """The venue's weight of one request."""
    params = params or {}
    key = (method.upper(), path)
    if path == "/fapi/v1/klines":
        raw = params.get("limit", "")
        limit = int(raw) if raw.isdigit() else 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
    if key in NO_SYMBOL_WEIGHTS and not params.get("symbol"):
        return NO_SYMBOL_WEIGHTS[key]
    return ENDPOINT_WEIGHTS.get(key, 1)


def request_orders(method: str, path: str, params: Mapping[str, str] | None = None) -> int:
    """How many orders one request counts on the account's order limits."""
    if (method.upper(), path) not in ORDER_ENDPOINTS:
        return 0
    if path.endswith("batchOrders"):
        raw = (params or {}).get("batchOrders", "")
        return max(1, raw.count("{")) if raw else 1
    return 1


@dataclass(frozen=True, kw_only=True)
class VenueLimits:
    """The venue's limits: request weight per window (per client address), orders per account."""

    weight: int = BINANCE_USDM_WEIGHT_PER_MINUTE
    window_s: float = WINDOW_S
    orders_10s: int = BINANCE_USDM_ORDERS_PER_10S
    orders_1m: int = BINANCE_USDM_ORDERS_PER_MINUTE

    def __post_init__(self) -> None:
        if min(self.weight, self.orders_10s, self.orders_1m) < 1 or self.window_s <= 0:
            raise ValueError(f"venue limits must be positive: {self}")

    @classmethod
    def from_exchange_info(cls, rate_limits: Any) -> VenueLimits | None:
        """The limits exchangeInfo's `rateLimits` announces (None when it announces no request weight)."""
        if not isinstance(rate_limits, list):
            return None
        weight: tuple[int, float] | None = None
        orders: dict[float, int] = {}
        for entry in rate_limits:
            if not isinstance(entry, dict):
                continue
            seconds = _interval_s(entry.get("interval"), entry.get("intervalNum"))
            limit = entry.get("limit")
            if seconds is None or not isinstance(limit, int) or limit < 1:
                continue
            if entry.get("rateLimitType") == "REQUEST_WEIGHT":
                weight = (limit, seconds)
            elif entry.get("rateLimitType") == "ORDERS":
                orders[seconds] = limit
        if weight is None:
            return None
        return cls(
            weight=weight[0],
            window_s=weight[1],
            orders_10s=orders.get(10.0, BINANCE_USDM_ORDERS_PER_10S),
            orders_1m=orders.get(60.0, BINANCE_USDM_ORDERS_PER_MINUTE),
        )


_UNIT_S = {"S": 1.0, "M": 60.0, "H": 3600.0, "D": 86400.0}
_INTERVAL_S = {"SECOND": 1.0, "MINUTE": 60.0, "HOUR": 3600.0, "DAY": 86400.0}


def _interval_s(interval: Any, count: Any) -> float | None:
    unit = _INTERVAL_S.get(str(interval).upper())
    return unit * count if unit is not None and isinstance(count, int) and count > 0 else None


@dataclass(frozen=True, kw_only=True)
class VenueUsage:
    """What one venue answer says about the limits (None: the answer did not say)."""

    weight: int | None = None  # X-MBX-USED-WEIGHT-<interval>: the client address' weight in the window
    window_s: float | None = None  # the interval that header names
    orders_10s: int | None = None  # X-MBX-ORDER-COUNT-10S: the account's orders
    orders_1m: int | None = None
    limited: int | None = None  # 429 or 418
    retry_after_s: float | None = None


def usage_from_headers(status: int, headers: Mapping[str, str]) -> VenueUsage:
    """Parse the venue's usage headers (any case; `X-MBX-USED-WEIGHT-1M`, `-5S`, ...)."""
    weight: int | None = None
    window_s: float | None = None
    orders: dict[str, int] = {}
    retry_after: float | None = None
    for raw_name, raw_value in headers.items():
        name = str(raw_name).lower()
        value = str(raw_value).strip()
        if name.startswith("x-mbx-used-weight-"):
            seconds = _suffix_s(name.removeprefix("x-mbx-used-weight-"))
            if seconds is not None and value.isdigit() and (window_s is None or seconds < window_s):
                weight, window_s = int(value), seconds  # the shortest window is the one that binds
        elif name.startswith("x-mbx-order-count-") and value.isdigit():
            orders[name.removeprefix("x-mbx-order-count-")] = int(value)
        elif name == "retry-after":
            with contextlib.suppress(ValueError):
                retry_after = float(value)
    return VenueUsage(
        weight=weight,
        window_s=window_s,
        orders_10s=orders.get("10s"),
        orders_1m=orders.get("1m"),
        limited=status if status in (418, 429) else None,
        retry_after_s=retry_after,
    )


def _suffix_s(suffix: str) -> float | None:
    number, unit = suffix[:-1], suffix[-1:].upper()
    return float(number) * _UNIT_S[unit] if number.isdigit() and unit in _UNIT_S else None


class Ticket(Protocol):
    """One admitted request. `observe` reports what the venue answered (its usage headers)."""

    @property
    def weight(self) -> int: ...

    async def observe(self, usage: VenueUsage) -> None: ...


class RequestLimiter(Protocol):
    """`async with limiter.slot(weight, orders=n) as ticket: <one request>; await ticket.observe(usage)`.

    The slot is held while the request runs. `pause(seconds)`: the venue answered 429 with Retry-After; no
    new request before then. `update_limits`: the venue announced its limits (exchangeInfo).
    `budget_detail()`: which budget the node used, for the `reconciled` phase detail:
    `{"scope": "fleet" | "local", "group": ..., "reason": ...}` and figures."""

    def slot(self, weight: int, *, orders: int = 0) -> AbstractAsyncContextManager[Ticket]: ...

    def pause(self, seconds: float) -> None: ...

    def update_limits(self, limits: VenueLimits) -> None: ...

    def budget_detail(self) -> dict[str, Any]: ...


_CURRENT: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("fleet_rate_ticket", default=None)


def current_ticket() -> Ticket | None:
    """The slot the running task holds, if any: requests made inside it belong to it."""
    return _CURRENT.get()


@contextlib.contextmanager
def holding(ticket: Ticket) -> Any:
    token = _CURRENT.set(ticket)
    try:
        yield ticket
    finally:
        _CURRENT.reset(token)


class WaitTime:
    """Seconds spent waiting for the budget, a wait in progress included as far as it has gone. A recovery
    step whose bound ran out while a request waited gets back the time waited within the step (a total that
    counted a wait in full when it began made a step that began during it see none, and fail)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._done = 0.0
        self._current: tuple[float, float] | None = None  # (monotonic start, planned seconds)

    @property
    def seconds(self) -> float:
        if self._current is None:
            return self._done
        started, planned = self._current
        return self._done + min(planned, max(0.0, self._clock.monotonic() - started))

    async def sleep(self, seconds: float) -> None:
        started = self._clock.monotonic()
        self._current = (started, seconds)
        completed = False
        try:
            await self._clock.sleep(seconds)
            completed = True
        finally:
            self._done += seconds if completed else min(seconds, self._clock.monotonic() - started)
            self._current = None


class _Meter:
    """Spending within a sliding window against a budget."""

    def __init__(self, budget: int, window_s: float) -> None:
        self.budget = budget
        self.window_s = window_s
        self.used = 0
        self._spent: collections.deque[tuple[float, int]] = collections.deque()  # (when, amount)

    def expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + self.window_s <= now:
            self.used -= self._spent.popleft()[1]

    def wait_for(self, amount: int, now: float) -> float:
        """Seconds until `amount` fits (0: now)."""
        self.expire(now)
        needed = self.used + amount - self.budget
        if amount <= 0 or needed <= 0:
            return 0.0
        freed, until = 0, now
        for when, spent in self._spent:
            freed += spent
            until = when + self.window_s
            if freed >= needed:
                break
        return max(until - now, 0.001)

    def add(self, amount: int, now: float) -> None:
        if amount > 0:
            self._spent.append((now, amount))
            self.used += amount


@dataclass
class _LocalTicket:
    limiter: LocalRequestLimiter
    weight: int

    async def observe(self, usage: VenueUsage) -> None:
        self.limiter.observe(usage)


class LocalRequestLimiter:
    """This process alone: at most `max_concurrency` requests in flight, `share` of the venue's weight and
    order limits within any window (sliding), and, once an answer has said how much the client address used
    in the venue's current window, no request that would take that count beyond `venue_share` of the limit
    (other processes behind the address spend from it too)."""

    def __init__(
        self,
        *,
        weight_per_minute: int = BINANCE_USDM_WEIGHT_PER_MINUTE,
        share: float = 0.5,
        max_concurrency: int = 8,
        clock: Clock | None = None,
        limits: VenueLimits | None = None,
        venue_share: float | None = None,
        scope_reason: str = "no fleet budget configured",
    ) -> None:
        for name, value in (("share", share), ("venue_share", venue_share)):
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.share = share
        self.venue_share = share if venue_share is None else venue_share
        self.max_concurrency = max_concurrency
        self.scope_reason = scope_reason
        self._clock = clock or SystemClock()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._admission = asyncio.Lock()  # FIFO: a heavy request is not starved by light ones
        self._paused_until = 0.0
        self._venue_window: int | None = None  # the venue window of the last count an answer gave
        self._venue_used = 0
        self.limits = limits or VenueLimits(weight=weight_per_minute)
        self._weight = _Meter(1, self.limits.window_s)
        self._orders = (_Meter(1, ORDER_WINDOWS_S[0]), _Meter(1, ORDER_WINDOWS_S[1]))
        self.update_limits(self.limits)
        self.in_flight = 0
        self.peak_in_flight = 0
        self._waits = WaitTime(self._clock)
        self.requests = 0

    @property
    def waited_s(self) -> float:
        return self._waits.seconds

    @property
    def budget(self) -> int:
        return self._weight.budget

    @property
    def used(self) -> int:
        """Weight spent within the last window."""
        self._weight.expire(self._clock.monotonic())
        return self._weight.used

    def update_limits(self, limits: VenueLimits) -> None:
        self.limits = limits
        self._weight.budget = max(1, int(limits.weight * self.share))
        self._weight.window_s = limits.window_s
        self._orders[0].budget = max(1, int(limits.orders_10s * self.share))
        self._orders[1].budget = max(1, int(limits.orders_1m * self.share))

    @contextlib.asynccontextmanager
    async def _slot(self, weight: int, orders: int) -> AsyncIterator[Ticket]:
        async with self._semaphore:
            async with self._admission:
                weight = await self.wait_for_budget(weight, orders)
            ticket = _LocalTicket(self, weight)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                with holding(ticket):
                    yield ticket
            finally:
                self.in_flight -= 1

    def slot(self, weight: int, *, orders: int = 0) -> AbstractAsyncContextManager[Ticket]:
        return self._slot(weight, orders)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def observe(self, usage: VenueUsage) -> None:
        """An answer's usage headers: the venue's count for the address in its current window."""
        if usage.limited is not None and usage.retry_after_s is not None:
            self.pause(usage.retry_after_s)
        if usage.weight is None or usage.window_s != self.limits.window_s:
            return
        self._venue_roll()
        self._venue_used = max(self._venue_used, usage.weight)

    def budget_detail(self) -> dict[str, Any]:
        return {
            "scope": "local",
            "group": None,
            "reason": self.scope_reason,
            "budget": self.budget,
            "requests": self.requests,
            "waited_s": round(self.waited_s, 3),
        }

    async def wait_for_budget(self, weight: int, orders: int = 0) -> int:
        """Wait until `weight` (capped to the budget, so that it cannot wait forever) and `orders` fit, then
        spend them; the weight spent."""
        weight = min(max(weight, 0), self.budget)
        while True:
            now = self._clock.monotonic()
            delay = max(
                self._paused_until - now,
                self._weight.wait_for(weight, now),
                *(meter.wait_for(min(orders, meter.budget), now) for meter in self._orders),
                self._venue_wait(weight),
            )
            if delay <= 0:
                self._weight.add(weight, now)
                for meter in self._orders:
                    meter.add(orders, now)
                if self._venue_window is not None:
                    self._venue_roll()
                    self._venue_used += weight
                self.requests += 1
                return weight
            log.info(
                "request budget: %d/%d weight used in this process; waiting %.2fs",
                self._weight.used,
                self.budget,
                delay,
            )
            await self._waits.sleep(delay)

    def _venue_window_now(self) -> int:
        return math.floor(self._clock.time() / self.limits.window_s)

    def _venue_roll(self) -> None:
        """A new venue window starts from nothing."""
        window = self._venue_window_now()
        if window != self._venue_window:
            self._venue_window, self._venue_used = window, 0

    def _venue_wait(self, weight: int) -> float:
        """Seconds until the venue's next window when its own count leaves no room for `weight`."""
        if weight <= 0 or self._venue_window is None or self._venue_window != self._venue_window_now():
            return 0.0
        budget = max(1, int(self.limits.weight * self.venue_share))
        if self._venue_used + weight <= budget:
            return 0.0
        now = self._clock.time()
        return (self._venue_window + 1) * self.limits.window_s - now + WINDOW_MARGIN_S
