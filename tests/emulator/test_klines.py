"""Kline alignment, the venue's startTime/endTime/limit semantics, and deterministic history."""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import klines
from emulator.errors import VenueError
from emulator.klines import DAY_MS, MINUTE_MS, SyntheticHistory
from emulator.pricepath import PricePath
from emulator.symbols import KNOWN_SYMBOLS

NOW = 1_700_000_123_456  # 2023-11-14T22:15:23.456Z
NOW_MINUTE = NOW - NOW % MINUTE_MS


def test_align() -> None:
    assert klines.align_down(NOW, MINUTE_MS) == NOW_MINUTE
    assert klines.align_up(NOW, MINUTE_MS) == NOW_MINUTE + MINUTE_MS
    assert klines.align_up(NOW_MINUTE, MINUTE_MS) == NOW_MINUTE
    week = klines.INTERVALS["1w"]
    monday = klines.align_down(NOW, week)
    assert (monday // DAY_MS + 3) % 7 == 0  # 1970-01-05 (a Monday) is day 4: weekly klines open on Mondays


@pytest.mark.parametrize(
    ("start", "end", "limit", "expected_first", "expected_count"),
    [
        # neither: the latest `limit`, the forming kline included
        (None, None, 3, NOW_MINUTE - 2 * MINUTE_MS, 3),
        # start only: from the first open >= start, up to now
        (NOW_MINUTE - 10 * MINUTE_MS + 1, None, 500, NOW_MINUTE - 9 * MINUTE_MS, 10),
        (NOW_MINUTE - 10 * MINUTE_MS, None, 4, NOW_MINUTE - 10 * MINUTE_MS, 4),
        # start and end: opens within [start, end]
        (NOW_MINUTE - 120 * MINUTE_MS + 5, NOW_MINUTE - 5, 500, NOW_MINUTE - 119 * MINUTE_MS, 119),
        (NOW_MINUTE - 10 * MINUTE_MS, NOW_MINUTE - 10 * MINUTE_MS, 500, NOW_MINUTE - 10 * MINUTE_MS, 1),
        # a page that starts after the last open in range is empty (how nautilus knows it is done)
        (NOW_MINUTE - MINUTE_MS + 1, NOW_MINUTE - MINUTE_MS + 50_000, 500, None, 0),
        # end only: the `limit` klines up to the one open at `end`
        (None, NOW_MINUTE - 5 * MINUTE_MS + 1, 3, NOW_MINUTE - 7 * MINUTE_MS, 3),
        # nothing from the future
        (NOW_MINUTE + 10 * MINUTE_MS, None, 500, None, 0),
    ],
)
def test_open_times(
    start: int | None, end: int | None, limit: int, expected_first: int | None, expected_count: int
) -> None:
    opens = klines.open_times(MINUTE_MS, start, end, limit, NOW)
    assert len(opens) == expected_count
    if expected_count:
        assert opens[0] == expected_first
        assert opens == [expected_first + i * MINUTE_MS for i in range(expected_count)]
        assert opens[-1] <= NOW_MINUTE


def test_nautilus_paging_covers_a_window_exactly_once() -> None:
    """Replay the adapter's loop: request, continue from last open + 1, stop on a short or empty page."""
    start, end, limit = NOW - 2 * 3_600_000, NOW, 50
    seen: list[int] = []
    while True:
        page = klines.open_times(MINUTE_MS, start, end, limit, NOW)
        seen += page
        if not page or len(page) < limit or page[-1] + 1 >= end:
            break
        start = page[-1] + 1
    assert seen == sorted(set(seen))
    assert seen[0] == klines.align_up(NOW - 2 * 3_600_000, MINUTE_MS)
    assert seen[-1] == NOW_MINUTE


def test_interval_names() -> None:
    assert klines.interval_ms("1m") == MINUTE_MS
    assert klines.interval_ms("4h") == 4 * 3_600_000
    for bad, code in (("7m", -1120), ("1M", -1120), (None, -1102)):
        with pytest.raises(VenueError) as info:
            klines.interval_ms(bad)
        assert info.value.code == code


def _history(seed: int) -> SyntheticHistory:
    spec = KNOWN_SYMBOLS["BTCUSDT"]
    return SyntheticHistory(PricePath(seed, spec), spec.qty_decimals)


def test_history_is_a_function_of_seed_and_time() -> None:
    a, b, other = _history(7), _history(7), _history(8)
    opens = [NOW_MINUTE - i * MINUTE_MS for i in range(200)]
    bars_a = [a.bar(t, MINUTE_MS) for t in opens]
    assert bars_a == [b.bar(t, MINUTE_MS) for t in reversed(opens)][::-1]
    assert bars_a != [other.bar(t, MINUTE_MS) for t in opens]


def test_history_bars_are_consistent() -> None:
    history = _history(3)
    tick = KNOWN_SYMBOLS["BTCUSDT"].tick_size
    previous = None
    for i in range(300):
        bar = history.bar(NOW_MINUTE - (300 - i) * MINUTE_MS, MINUTE_MS)
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.open % tick == 0 and bar.close % tick == 0
        assert bar.volume > 0 and bar.trades > 0
        if previous is not None:
            assert bar.open == previous.close  # the path is continuous across bars
        previous = bar
    hour = history.bar(klines.align_down(NOW - 5 * 3_600_000, 3_600_000), 3_600_000)
    first_minute = history.bar(hour.open_time, MINUTE_MS)
    assert hour.open == first_minute.open  # intervals share the same path at their boundaries


def test_kline_row_shape() -> None:
    bar = _history(1).bar(NOW_MINUTE, MINUTE_MS)
    row = klines.kline_row(bar, MINUTE_MS, 1, 3)
    assert len(row) == 12
    assert row[0] == NOW_MINUTE and row[6] == NOW_MINUTE + MINUTE_MS - 1
    assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
    assert isinstance(row[8], int)
    assert Decimal(str(row[1])) == bar.open
