"""Request limiting per venue account, injectable: the exec client asks for a slot before each request.

Binance counts request weight per account (and IP) in one-minute windows (2,400 on USD-M futures) and bans
after repeated 429s. Reconciliation is the burst that matters: three history calls per symbol at weight 5.
`LocalRequestLimiter` keeps this process within a share of that budget with a sliding window (stricter than
the venue's fixed windows, so it can never exceed one) and bounds concurrency. A fleet-wide limiter shared
through Redis (all nodes of one account after a host reboot) implements the same protocol and replaces it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from supervisor.clock import Clock, SystemClock

log = logging.getLogger(__name__)

WINDOW_S = 60.0
BINANCE_USDM_WEIGHT_PER_MINUTE = 2400

# Request weights of the endpoints reconciliation calls (Binance USD-M documentation).
WEIGHTS: dict[str, int] = {
    "positionRisk": 5,
    "openOrders": 40,  # without a symbol; 1 with one
    "openOrders:symbol": 1,
    "openAlgoOrders": 40,  # without a symbol; 1 with one
    "openAlgoOrders:symbol": 1,
    "userTrades": 5,
    "allOrders": 5,
    "allAlgoOrders": 5,
    "order": 1,
    "algoOrder": 1,
}


class RequestLimiter(Protocol):
    """`async with limiter.slot(weight): <one request>`; the slot is held while the request runs.
    `pause(seconds)`: the venue answered 429 with Retry-After; no new request before then."""

    def slot(self, weight: int) -> AbstractAsyncContextManager[None]: ...

    def pause(self, seconds: float) -> None: ...


class LocalRequestLimiter:
    """At most `max_concurrency` requests in flight and `budget` weight within any `WINDOW_S` seconds."""

    def __init__(
        self,
        *,
        weight_per_minute: int = BINANCE_USDM_WEIGHT_PER_MINUTE,
        share: float = 0.5,
        max_concurrency: int = 8,
        clock: Clock | None = None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        # Live trading on the same account needs the rest of the budget.
        self.budget = max(1, int(weight_per_minute * share))
        self.max_concurrency = max_concurrency
        self._clock = clock or SystemClock()
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._spent: collections.deque[tuple[float, int]] = collections.deque()  # (when, weight)
        self._used = 0
        self._admission = asyncio.Lock()  # FIFO: a heavy request is not starved by light ones
        self._paused_until = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.waited_s = 0.0

    @property
    def used(self) -> int:
        """Weight spent within the last window."""
        self._expire(self._clock.monotonic())
        return self._used

    @contextlib.asynccontextmanager
    async def _slot(self, weight: int) -> AsyncIterator[None]:
        weight = min(max(weight, 0), self.budget)
        async with self._semaphore:
            async with self._admission:
                await self._wait_for_budget(weight)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1

    def slot(self, weight: int) -> AbstractAsyncContextManager[None]:
        return self._slot(weight)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    async def _wait_for_budget(self, weight: int) -> None:
        while True:
            now = self._clock.monotonic()
            if now < self._paused_until:
                delay = self._paused_until - now
                self.waited_s += delay
                await self._clock.sleep(delay)
                continue
            self._expire(now)
            if self._used + weight <= self.budget:
                self._spent.append((now, weight))
                self._used += weight
                return
            # Wait until enough of the oldest spending leaves the window.
            needed = self._used + weight - self.budget
            freed = 0
            until = now
            for when, spent in self._spent:
                freed += spent
                until = when + WINDOW_S
                if freed >= needed:
                    break
            delay = max(until - now, 0.001)
            log.info("request budget: %d/%d weight used; waiting %.2fs", self._used, self.budget, delay)
            self.waited_s += delay
            await self._clock.sleep(delay)

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + WINDOW_S <= now:
            _, weight = self._spent.popleft()
            self._used -= weight
