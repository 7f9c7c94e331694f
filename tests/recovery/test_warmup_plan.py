"""Warm-up sizing (pure) and the bounded wait for the answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from nautilus_trader.indicators import (
    AverageTrueRange,
    ExponentialMovingAverage,
    MovingAverageConvergenceDivergence,
)

from recovery.strategy_errors import WarmupIncomplete, WarmupTimeout
from recovery.warmup import MARGIN_BARS, await_warmup, indicator_period, plan_warmup

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("indicator", "period"),
    [
        (ExponentialMovingAverage(20), 20),
        (MovingAverageConvergenceDivergence(12, 26), 26),  # the slow leg decides
        (AverageTrueRange(14), 14),
        (object(), 1),  # no period: one input
    ],
)
def test_indicator_period(indicator: object, period: int) -> None:
    assert indicator_period(indicator) == period


@pytest.mark.parametrize(
    ("indicators", "minimum", "interval", "bars"),
    [
        ([ExponentialMovingAverage(10), ExponentialMovingAverage(20)], 0, MINUTE, 20),
        ([ExponentialMovingAverage(10)], 50, MINUTE, 50),  # the config's minimum wins
        ([ExponentialMovingAverage(5)], 0, timedelta(hours=1), 5),
        ([], 0, MINUTE, 1),
    ],
)
def test_plan_warmup(indicators: list[object], minimum: int, interval: timedelta, bars: int) -> None:
    request = plan_warmup("X-1-MINUTE-LAST-EXTERNAL", interval, indicators, NOW, minimum_bars=minimum)
    assert request.bars == bars
    assert request.start == NOW - interval * (bars + MARGIN_BARS)


def test_plan_warmup_needs_time_bars() -> None:
    with pytest.raises(ValueError, match="time bars"):
        plan_warmup("X-100-TICK-LAST-INTERNAL", timedelta(0), [ExponentialMovingAverage(5)], NOW)


@pytest.mark.asyncio
async def test_no_answer_is_a_timeout_naming_what_is_missing() -> None:
    with pytest.raises(WarmupTimeout, match="EMA"):
        await await_warmup(
            asyncio.Event(), limit_s=0.05, is_initialized=lambda: False, pending=lambda: ["EMA(5)"]
        )


@pytest.mark.asyncio
async def test_answered_but_too_short_is_an_error() -> None:
    done = asyncio.Event()
    done.set()
    with pytest.raises(WarmupIncomplete, match="EMA"):
        await await_warmup(done, limit_s=1, is_initialized=lambda: False, pending=lambda: ["EMA(20)"])
    await await_warmup(done, limit_s=1, is_initialized=lambda: True, pending=list)
