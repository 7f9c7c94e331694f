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
