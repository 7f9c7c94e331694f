"""The fleet-wide request budget: every node of a rate group takes its recovery requests' weight from one
count in Redis, and every account's orders from another (key layout and scripts: `supervisor/rate_budget.py`).

- Admission is one Lua script on Redis' clock: the request fits in the current window's *recovery budget*
  (`recovery_share` of the venue's limit; live trading keeps the rest) or the node waits for the window in
  which it fits.
- The venue's answers correct the count: `X-MBX-USED-WEIGHT-1M` is the address' real figure (live trading,
  other programs behind the address included), so the shared count is raised to it (plus what this node still
  has in flight). A 429 or 418 marks the window spent for the whole group.
- Every Redis call is bounded (`call_timeout_s`). When Redis does not answer, the node falls back to a
  conservative local share (`fallback_share` of the venue's limit, and never beyond what the venue's own count
  leaves of the recovery budget), logs it once, and reports it: `budget_detail()` is what the node puts into
  its `reconciled` phase (`scope: "local"` with the reason), from which the supervisor counts
  `fleet_rate_budget_fallbacks_total`. Redis is tried again after `retry_redis_after_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from recovery.ratelimit import (
    LocalRequestLimiter,
    Ticket,
    VenueLimits,
    VenueUsage,
    WaitTime,
    holding,
)
from supervisor import rate_budget
from supervisor.clock import Clock, SystemClock

log = logging.getLogger(__name__)

DEFAULT_RECOVERY_SHARE = 0.9  # fleet.yaml coordination.recovery_share
DEFAULT_FALLBACK_SHARE = 0.1
# Many nodes waiting for the same window would all ask again at its first millisecond.
WAKE_JITTER_S = 0.05


class RedisBudgetError(RuntimeError):
    """Redis did not answer a budget call in time, or answered with an error."""


@dataclass
class _FleetTicket:
    limiter: FleetRequestLimiter
    weight: int
    window_start_ms: int | None  # the Redis window the request was admitted in (None: admitted locally)

    async def observe(self, usage: VenueUsage) -> None:
        await self.limiter.observe(usage, self)


class FleetRequestLimiter:
    """A `RequestLimiter` whose budget is shared through Redis by every node of `group` (request weight) and
    of `account` (orders). Use it on one event loop; nothing runs in the background."""

    def __init__(
        self,
        *,
        redis: Any,
        group: str,
        account: str | None,
        limits: VenueLimits | None = None,
        recovery_share: float = DEFAULT_RECOVERY_SHARE,
        fallback_share: float = DEFAULT_FALLBACK_SHARE,
        max_concurrency: int = 8,
        call_timeout_s: float = 0.5,
        retry_redis_after_s: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        for name, value in (("recovery_share", recovery_share), ("fallback_share", fallback_share)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if fallback_share > recovery_share:
            raise ValueError("fallback_share must not exceed recovery_share")
        if max_concurrency < 1 or call_timeout_s <= 0:
            raise ValueError("max_concurrency must be >= 1 and call_timeout_s > 0")
        self._redis = redis
        self.group = group
        self.account = account
        self.recovery_share = recovery_share
        self.call_timeout_s = call_timeout_s
        self.retry_redis_after_s = retry_redis_after_s
        self._clock = clock or SystemClock()
        # EVALSHA, and the script again after a Redis restart forgot it (NOSCRIPT).
        self._acquire_script = redis.register_script(rate_budget.ACQUIRE_SCRIPT)
        self._observe_script = redis.register_script(rate_budget.OBSERVE_SCRIPT)
        self._weight_base = rate_budget.weight_key_base(group)
        self._pause_key = rate_budget.pause_key(group)
        self._orders_base = rate_budget.orders_key_base(account) if account else ""
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._admission = asyncio.Lock()
        self._paused_until = 0.0
        self._fallback = LocalRequestLimiter(
            share=fallback_share,
            venue_share=recovery_share,
            max_concurrency=max_concurrency,
            clock=self._clock,
            limits=limits or VenueLimits(),
            scope_reason="",
        )
        self.limits = limits or VenueLimits()
        # Published for the supervisor once known: given here, or announced by the venue (exchangeInfo).
        self._limits_known = limits is not None
        self._limits_published = False
        self._limits_looked_up = False
        self._local_since: float | None = None  # monotonic time of the current fallback, None: on Redis
        self.fallback_reason: str | None = None  # the first fallback's reason
        self.fallbacks = 0
        self.used = 0  # the group's weight in the current window, as last seen in Redis
        self.in_flight = 0
        self.peak_in_flight = 0
        self._in_flight_weight = 0
        self._waits = WaitTime(self._clock)
        self.requests = 0
        self.local_requests = 0  # admitted by the local fallback

    # ---- RequestLimiter ----------------------------------------------------------------------------------

    @property
    def budget(self) -> int:
        """The group's recovery budget per window."""
        return max(1, int(self.limits.weight * self.recovery_share))

    @property
    def scope(self) -> str:
        """Where admissions are decided right now: "fleet" (Redis) or "local" (fallback)."""
        return "local" if self._local_since is not None else "fleet"

    def slot(self, weight: int, *, orders: int = 0) -> AbstractAsyncContextManager[Ticket]:
        return self._slot(weight, orders)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)
        self._fallback.pause(seconds)

    def update_limits(self, limits: VenueLimits) -> None:
        if limits != self.limits:
            log.info("venue limits: %s", limits)
            self.limits = limits
            self._limits_published = False
        self._limits_known = True
        self._fallback.update_limits(limits)

    def budget_detail(self) -> dict[str, Any]:
        """For the `reconciled` phase: "local" when any admission of this run fell back (with the reason)."""
        return {
            "scope": "local" if self.fallbacks else "fleet",
            "group": self.group,
            "reason": self.fallback_reason,
            "account": self.account,
            "budget": self.budget,
            "window_s": self.limits.window_s,
            "requests": self.requests,
            "local_requests": self.local_requests,
            "waited_s": round(self.waited_s + self._fallback.waited_s, 3),
            "fallbacks": self.fallbacks,
        }

    # ---- admission -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self, weight: int, orders: int) -> AsyncIterator[Ticket]:
        async with self._semaphore:
            async with self._admission:
                ticket = await self._admit(weight, orders)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._in_flight_weight += ticket.weight
            try:
                with holding(ticket):
                    yield ticket
            finally:
                self.in_flight -= 1
                self._in_flight_weight -= ticket.weight

    async def _admit(self, weight: int, orders: int) -> _FleetTicket:
        weight = min(max(weight, 0), self.budget)
        orders = max(orders, 0)
        while True:
            paused = self._paused_until - self._clock.monotonic()
            if paused > 0:
                await self._wait(paused)
                continue
            if not self._redis_due():
                spent = await self._fallback.wait_for_budget(weight, orders)
                self.requests += 1
                self.local_requests += 1
                return _FleetTicket(self, spent, None)
            try:
                admitted, used, wait_ms, start = await self._acquire(weight, orders)
            except RedisBudgetError as exc:
                self._fall_back(exc)
                continue
            self._back_on_redis()
            self.used = used
            if admitted:
                self.requests += 1
                return _FleetTicket(self, weight, start)
            delay = wait_ms / 1000 + random.uniform(0, WAKE_JITTER_S)
            log.info(
                "fleet request budget of %s: %d/%d weight used in this window; waiting %.2fs",
                self.group,
                used,
                self.budget,
                delay,
            )
            await self._wait(delay)

    async def _wait(self, seconds: float) -> None:
        await self._waits.sleep(seconds)

    @property
    def waited_s(self) -> float:
        return self._waits.seconds

    async def _acquire(self, weight: int, orders: int) -> tuple[bool, int, int, int]:
        if not self._limits_known and not self._limits_looked_up:
            # The venue's limits as an earlier node of the group learned them: without them this node's first
            # request (exchangeInfo, which announces them) would wait on a default budget others have spent.
            await self._bounded(self._learn_published_limits)
        limits = self.limits
        share = self.recovery_share
        args = (
            self._weight_base,
            self._orders_base,
            weight,
            orders,
            self.budget,
            max(1, int(limits.orders_10s * share)),
            max(1, int(limits.orders_1m * share)),
            round(limits.window_s * 1000),
            self._pause_key,
        )

        async def call() -> Any:
            if self._limits_known and not self._limits_published:
                await self._publish_limits()
            return await self._acquire_script(keys=[], args=args)

        admitted, used, wait_ms, start = await self._bounded(call)
        return bool(admitted), int(used), int(wait_ms), int(start)

    async def _learn_published_limits(self) -> None:
        raw = await self._redis.hgetall(rate_budget.limits_key(self.group))
        published = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        if "weight" in published and "window_ms" in published:
            learned = VenueLimits(
                weight=published["weight"],
                window_s=published["window_ms"] / 1000,
                orders_10s=self.limits.orders_10s,
                orders_1m=self.limits.orders_1m,
            )
            self.update_limits(learned)
            self._limits_published = True
        self._limits_looked_up = True

    async def _publish_limits(self) -> None:
        """What the supervisor's reader needs to interpret the group's count (`read_group_usage`)."""
        key = rate_budget.limits_key(self.group)
        mapping = {
            "weight": self.limits.weight,
            "window_ms": round(self.limits.window_s * 1000),
            "recovery_budget": self.budget,
        }
        await self._redis.hset(key, mapping=mapping)
        await self._redis.expire(key, rate_budget.LIMITS_TTL_S)
        self._limits_published = True

    # ---- the venue's answers ------------------------------------------------------------------------------

    async def observe(self, usage: VenueUsage, ticket: _FleetTicket | None = None) -> None:
        """The venue's usage headers after one of this node's requests."""
        self._fallback.observe(usage)  # the venue's own count guards the fallback too
        seen: int | None = None
        pause_ms = -1
        if usage.limited is not None:
            # The venue refused: every node of the group waits as long as it says (a ban outlasts the
            # window), or, when it does not say, until the next window.
            if usage.retry_after_s is not None:
                self.pause(usage.retry_after_s)
                pause_ms = max(1, round(usage.retry_after_s * 1000))
            else:
                seen = self.limits.weight
        elif usage.weight is not None and usage.window_s == self.limits.window_s:
            seen = usage.weight
        if seen is None and pause_ms < 0 and usage.orders_10s is None and usage.orders_1m is None:
            return
        if not self._redis_due():
            return
        besides = self._in_flight_weight - (ticket.weight if ticket is not None else 0)
        start = ticket.window_start_ms if ticket is not None and ticket.window_start_ms is not None else -1
        if usage.limited is not None:
            start = -1  # a refusal is about now, whichever window the request was admitted in
        args = (
            self._weight_base,
            self._orders_base,
            -1 if seen is None else seen,
            max(besides, 0),
            -1 if usage.orders_10s is None else usage.orders_10s,
            -1 if usage.orders_1m is None else usage.orders_1m,
            round(self.limits.window_s * 1000),
            start,
            self._pause_key,
            pause_ms,
        )
        try:
            self.used = int(await self._bounded(lambda: self._observe_script(keys=[], args=args)))
        except RedisBudgetError as exc:
            self._fall_back(exc)
            return
        self._back_on_redis()

    # ---- Redis, bounded; the fallback --------------------------------------------------------------------

    async def _bounded(self, call: Any) -> Any:
        try:
            async with asyncio.timeout(self.call_timeout_s):
                return await call()
        except asyncio.CancelledError:
            raise
        except TimeoutError as exc:
            raise RedisBudgetError(f"Redis did not answer within {self.call_timeout_s:g}s") from exc
        except Exception as exc:  # redis-py's ConnectionError/ResponseError, OSError: the budget is unknown
            raise RedisBudgetError(f"{type(exc).__name__}: {exc}") from exc

    def _redis_due(self) -> bool:
        """On Redis, or in a fallback long enough to try Redis again."""
        since = self._local_since
        return since is None or self._clock.monotonic() - since >= self.retry_redis_after_s

    def _fall_back(self, error: RedisBudgetError) -> None:
        reason = f"fleet budget in Redis unavailable: {error}"
        if self._local_since is None:
            self.fallbacks += 1
            if self.fallback_reason is None:
                self.fallback_reason = reason
            log.warning(
                "%s; rate group %s falls back to a local share (%d weight per %gs, within %d of the "
                "venue's count)",
                reason,
                self.group,
                self._fallback.budget,
                self.limits.window_s,
                self.budget,
            )
        self._local_since = self._clock.monotonic()
        self._limits_published = False  # a restarted Redis has lost them

    def _back_on_redis(self) -> None:
        if self._local_since is not None:
            log.warning("fleet budget in Redis answers again: rate group %s is shared again", self.group)
            self._local_since = None
