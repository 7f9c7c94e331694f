"""Indicator warm-up: how much history to request, and waiting for it with a deadline.

Indicators registered for bars are fed by a historical bar request before the strategy may trade. The request
covers the longest period among the indicators of each bar type plus a margin: the venue's forming bar is
dropped by the adapter, and a bar may close between the request and the answer.

nautilus has no timeout for a data request, and the Binance adapter answers nothing at all when the venue
returns no bars, so the wait is bounded here and a timeout fails recovery loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recovery.strategy_errors import WarmupIncomplete, WarmupTimeout

MARGIN_BARS = 3


@dataclass(frozen=True, slots=True)
class WarmupRequest:
    bar_type: str
    bars: int  # how many closed bars the indicators need
    start: datetime  # request from here to now


def indicator_period(indicator: object) -> int:
    """The number of inputs an indicator needs before it is initialized, from its `*period` attributes."""
    periods = [
        value
        for name in dir(indicator)
        if name == "period" or name.endswith("_period")
        if isinstance(value := getattr(indicator, name, None), int) and not isinstance(value, bool)
    ]
    return max(periods, default=1)


def plan_warmup(
    bar_type: str, interval: timedelta, indicators: Iterable[object], now: datetime, *, minimum_bars: int = 0
) -> WarmupRequest:
    """The request that initializes `indicators` on bars of `interval`, ending at `now`."""
    if interval <= timedelta(0):
        raise ValueError(f"{bar_type}: warm-up needs time bars (got interval {interval})")
    bars = max([indicator_period(i) for i in indicators] + [minimum_bars, 1])
    return WarmupRequest(bar_type, bars, now - interval * (bars + MARGIN_BARS))


async def await_warmup(
    responses_done: asyncio.Event,
    *,
    limit_s: float,
    is_initialized: Callable[[], bool],
    pending: Callable[[], list[str]],
) -> None:
    """Wait for every warm-up response (bounded), then require the indicators to be initialized."""
    try:
        async with asyncio.timeout(limit_s):
            await responses_done.wait()
    except TimeoutError:
        raise WarmupTimeout(limit_s, pending()) from None
    if not is_initialized():
        raise WarmupIncomplete(pending())


class WarmupTracker:
    """The strategy's warm-up bookkeeping: indicators by bar type, the outstanding history requests and the
    bar subscriptions held back until their bar type's history is in (a live bar before the history would
    feed the indicators out of order). Bar types are keyed by their standard string form."""

    def __init__(self) -> None:
        self._indicators: dict[str, tuple[Any, list[Any]]] = {}
        self._held: list[tuple[str, Callable[[], None]]] = []
        self._pending: dict[Any, str] = {}
        self.done = asyncio.Event()
        self.requests: list[dict[str, Any]] = []

    def register(self, key: str, bar_type: Any, indicator: Any) -> None:
        _, indicators = self._indicators.setdefault(key, (bar_type, []))
        if indicator not in indicators:
            indicators.append(indicator)

    def hold(self, key: str, subscribe: Callable[[], None]) -> None:
        self._held.append((key, subscribe))

    def start(
        self,
        now: datetime,
        minimum_bars: int,
        interval_of: Callable[[Any], timedelta],
        request: Callable[[Any, datetime], Any],
    ) -> None:
        """Send one history request per bar type (`request(bar_type, start) -> request id`)."""
        for key, (bar_type, indicators) in self._indicators.items():
            plan = plan_warmup(key, interval_of(bar_type), indicators, now, minimum_bars=minimum_bars)
            self._pending[request(bar_type, plan.start)] = key
            self.requests.append({"bar_type": key, "bars": plan.bars, "start": plan.start.isoformat()})
        self._release(warmed=set())
        if not self._pending:
            self.done.set()

    def answered(self, request_id: Any) -> None:
        key = self._pending.pop(request_id, None)
        if key is not None:
            self._release(warmed={key})
        if not self._pending:
            self.done.set()

    def initialized(self) -> bool:
        return all(i.initialized for _, indicators in self._indicators.values() for i in indicators)

    def pending(self) -> list[str]:
        return [
            f"{key}: {indicator}"
            for key, (_, indicators) in self._indicators.items()
            for indicator in indicators
            if not indicator.initialized
        ]

    def _release(self, warmed: set[str]) -> None:
        held, self._held = self._held, []
        for key, subscribe in held:
            if key in warmed or key not in self._indicators:
                subscribe()
            else:
                self._held.append((key, subscribe))
