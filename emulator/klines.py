"""Klines: interval alignment, the venue's startTime/endTime/limit semantics, and bar construction.

History before the emulator started comes from the seeded `PricePath`; minutes since then come from the bars
the live feed recorded (so REST klines agree with what the kline stream delivered).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from emulator import errors
from emulator.numbers import ZERO, fixed, quantize_to_step
from emulator.pricepath import PricePath, clamp_to_tick, unit01

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; weekly klines open on Mondays

INTERVALS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
DEFAULT_LIMIT = 500
MAX_LIMIT = 1500


def interval_ms(name: str | None) -> int:
    if name is None:
        raise errors.mandatory_missing("interval")
    try:
        return INTERVALS[name]
    except KeyError:
        raise errors.invalid_interval() from None


def _offset(step: int) -> int:
    return WEEK_OFFSET_MS if step == INTERVALS["1w"] else 0


def align_down(t_ms: int, step: int) -> int:
    offset = _offset(step)
    return t_ms - ((t_ms - offset) % step)


def align_up(t_ms: int, step: int) -> int:
    down = align_down(t_ms, step)
    return down if down == t_ms else down + step


def open_times(step: int, start: int | None, end: int | None, limit: int, now_ms: int) -> list[int]:
    """Open times of the klines the venue returns (ascending), never later than the kline now forming.

    - start and/or end: klines whose open time lies in [start, end], the first `limit` of them;
    - only end: the `limit` klines up to the one open at `end`;
    - neither: the latest `limit` klines, the forming one included.
    """
    newest = align_down(now_ms, step)
    if start is not None:
        first = align_up(start, step)
        last = newest if end is None else min(align_down(end, step), newest)
        if last < first:
            return []
        count = min(limit, (last - first) // step + 1)
        return [first + i * step for i in range(count)]
    last = newest if end is None else min(align_down(end, step), newest)
    first = last - (limit - 1) * step
    return [first + i * step for i in range(limit)]


@dataclass(slots=True)
class Bar:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_base: Decimal = ZERO
    taker_quote: Decimal = ZERO
    first_trade_id: int = -1
    last_trade_id: int = -1

    def add_trade(self, price: Decimal, qty: Decimal, taker_buy: bool, trade_id: int) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.quote_volume += qty * price
        self.trades += 1
        if taker_buy:
            self.taker_base += qty
            self.taker_quote += qty * price
        if self.first_trade_id < 0:
            self.first_trade_id = trade_id
        self.last_trade_id = trade_id

    def move(self, price: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price


@dataclass(slots=True)
class SyntheticHistory:
    """Bars for any past interval, generated from a `PricePath` (no state, no replay)."""

    path: PricePath
    qty_decimals: int
    _cache: dict[tuple[int, int], Bar] = field(default_factory=dict)

    def bar(self, open_time: int, step: int) -> Bar:
        key = (open_time, step)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        bar = self._make(open_time, step)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = bar
        return bar

    def _make(self, open_time: int, step: int) -> Bar:
        spec = self.path.spec
        samples = 1 if step == MINUTE_MS else 4
        points = [self.path.raw(open_time + step * i / samples) for i in range(samples + 1)]
        stretch = self.path.wiggle(open_time, step)
        o, c = points[0], points[-1]
        hi = max(points) * (1 + stretch)
        lo = min(points) * (1 - stretch)
        open_p, close_p = (clamp_to_tick(Decimal(repr(v)), spec) for v in (o, c))
        high_p = max(clamp_to_tick(Decimal(repr(hi)), spec), open_p, close_p)
        low_p = min(clamp_to_tick(Decimal(repr(lo)), spec), open_p, close_p)
        minutes = step // MINUTE_MS
        notional_per_minute = 150_000.0 * (0.3 + 1.4 * unit01(self.path.key, open_time // MINUTE_MS))
        volume = _qty(notional_per_minute * minutes / ((o + c) / 2), spec.step_size)
        taker_share = 0.35 + 0.3 * unit01(self.path.key, open_time // MINUTE_MS + 7)
        taker = _qty(float(volume) * taker_share, spec.step_size)
        mid = (open_p + close_p) / 2
        return Bar(
            open_time=open_time,
            open=open_p,
            high=high_p,
            low=low_p,
            close=close_p,
            volume=volume,
            quote_volume=(volume * mid).quantize(Decimal("0.00001")),
            trades=int(minutes * (40 + 200 * unit01(self.path.key, open_time // MINUTE_MS + 3))),
            taker_base=taker,
            taker_quote=(taker * mid).quantize(Decimal("0.00001")),
        )


def _qty(value: float, step: Decimal) -> Decimal:
    return quantize_to_step(Decimal(repr(max(value, 0.0))), step)


def aggregate(bars: list[Bar], open_time: int) -> Bar:
    """One bar from consecutive smaller bars (all must be non-empty and ordered)."""
    out = Bar(open_time, bars[0].open, bars[0].high, bars[0].low, bars[-1].close)
    for bar in bars:
        out.high = max(out.high, bar.high)
        out.low = min(out.low, bar.low)
        out.volume += bar.volume
        out.quote_volume += bar.quote_volume
        out.trades += bar.trades
        out.taker_base += bar.taker_base
        out.taker_quote += bar.taker_quote
    return out


def kline_row(bar: Bar, step: int, price_decimals: int, qty_decimals: int) -> list[object]:
    """The venue's array form of one kline."""
    return [
        bar.open_time,
        fixed(bar.open, price_decimals),
        fixed(bar.high, price_decimals),
        fixed(bar.low, price_decimals),
        fixed(bar.close, price_decimals),
        fixed(bar.volume, qty_decimals),
        bar.open_time + step - 1,
        fixed(bar.quote_volume, 5),
        bar.trades,
        fixed(bar.taker_base, qty_decimals),
        fixed(bar.taker_quote, 5),
        "0",
    ]


def build_bars(
    opens: list[int],
    step: int,
    history: SyntheticHistory,
    *,
    live_minute: Callable[[int], Bar | None],
    live_start_ms: int,
    now_ms: int,
) -> list[Bar]:
    """Bars for the given open times: synthetic before the live start, aggregated live minutes after."""
    out: list[Bar] = []
    for open_time in opens:
        if open_time + step <= live_start_ms:
            out.append(history.bar(open_time, step))
            continue
        minutes: list[Bar] = []
        for minute in range(open_time, min(open_time + step, now_ms + 1), MINUTE_MS):
            live = live_minute(minute) if minute >= align_down(live_start_ms, MINUTE_MS) else None
            minutes.append(live if live is not None else history.bar(minute, MINUTE_MS))
        if minutes:
            out.append(minutes[0] if step == MINUTE_MS else aggregate(minutes, open_time))
    return out
