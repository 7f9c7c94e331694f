"""Live prices: the last and mark price of every symbol, the minute bars recorded since start, and the public
market-data messages (aggTrade, trade, bookTicker, kline, markPrice) they produce.

Two price modes:
- `walk`: the price follows the seeded `PricePath` in real time (times an adjustment the admin API sets);
- `manual`: the price moves only when the admin API sets or steps it (fully repeatable runs).
A scripted path (a list of timed price points) can drive either mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import msgspec

from emulator import klines
from emulator.klines import MINUTE_MS, Bar, SyntheticHistory
from emulator.numbers import ZERO, fixed, quantize_to_step
from emulator.pricepath import PricePath, clamp_to_tick, stable_key, unit01
from emulator.symbols import SymbolSpec

FUNDING_INTERVAL_MS = 8 * 3_600_000
DEFAULT_FUNDING_RATE = Decimal("0.00010000")
MAX_LIVE_BARS = 7 * 24 * 60


class MarketPublisher(Protocol):
    def publish(self, stream: str, data: object) -> None: ...

    def wants(self, stream: str) -> bool: ...


@dataclass(slots=True)
class SymbolFeed:
    spec: SymbolSpec
    path: PricePath
    history: SyntheticHistory
    last: Decimal
    mark_offset: Decimal = ZERO
    scale: float = 1.0
    bars: dict[int, Bar] = field(default_factory=dict)
    frozen_bar: int = -1  # open time of a bar the admin closed early
    agg_id: int = 0
    trade_id: int = 0
    book_update_id: int = 0
    synthetic_count: int = 0
    funding_rate: Decimal = DEFAULT_FUNDING_RATE

    @property
    def mark(self) -> Decimal:
        return max(self.spec.tick_size, self.last + self.mark_offset)


class BarState(msgspec.Struct, array_like=True):
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_base: Decimal
    taker_quote: Decimal
    first_trade_id: int
    last_trade_id: int


class SymbolFeedState(msgspec.Struct, kw_only=True):
    last: Decimal
    mark_offset: Decimal
    scale: float
    agg_id: int
    trade_id: int
    book_update_id: int
    synthetic_count: int
    funding_rate: Decimal
    frozen_bar: int
    bars: list[BarState]


class FeedState(msgspec.Struct, kw_only=True):
    mode: str
    live_start_ms: int
    current_minute: int
    symbols: dict[str, SymbolFeedState]


class PriceFeed:
    """Owns every symbol's live price and bars; implements the engine's `PriceSource`."""

    def __init__(
        self,
        seed: int,
        specs: dict[str, SymbolSpec],
        mode: str,
        clock: Callable[[], int],
        publisher: MarketPublisher,
    ) -> None:
        if mode not in ("walk", "manual"):
            raise ValueError(f"price mode must be 'walk' or 'manual', not {mode!r}")
        self.seed = seed
        self.mode = mode
        self.now = clock
        self.publisher = publisher
        now = clock()
        self.live_start_ms = now
        self.current_minute = klines.align_down(now, MINUTE_MS)
        self.symbols: dict[str, SymbolFeed] = {}
        for symbol, spec in specs.items():
            path = PricePath(seed, spec)
            feed = SymbolFeed(spec, path, SyntheticHistory(path, spec.qty_decimals), path.price(now))
            feed.funding_rate = seed_funding_rate(seed, symbol)
            feed.bars[self.current_minute] = Bar(
                self.current_minute, feed.last, feed.last, feed.last, feed.last
            )
            self.symbols[symbol] = feed

    # ------------------------------------------------------------------ PriceSource

    def last(self, symbol: str) -> Decimal:
        return self.symbols[symbol].last

    def mark(self, symbol: str) -> Decimal:
        return self.symbols[symbol].mark

    # ------------------------------------------------------------------ price changes

    def set_price(self, symbol: str, price: Decimal, mark: Decimal | None = None) -> None:
        """Move the price (admin); in walk mode the path continues from here."""
        feed = self.symbols[symbol]
        now = self.now()
        price = clamp_to_tick(price, feed.spec)
        if self.mode == "walk":
            feed.scale = float(price) / feed.path.raw(now)
        if mark is not None:
            feed.mark_offset = mark - price
        self._move(feed, price, now, synthetic_trade=True)

    def step(self, symbol: str, ticks: int) -> Decimal:
        feed = self.symbols[symbol]
        self.set_price(symbol, feed.last + feed.spec.tick_size * ticks)
        return feed.last

    def tick(self) -> list[str]:
        """Advance time: roll minute bars; in walk mode move prices along the path. Returns moved symbols."""
        now = self.now()
        self._roll_minutes(now)
        moved: list[str] = []
        if self.mode != "walk":
            return moved
        for symbol, feed in self.symbols.items():
            price = feed.path.price(now, feed.scale)
            if price != feed.last:
                self._move(feed, price, now, synthetic_trade=True)
                moved.append(symbol)
        return moved

    def _move(self, feed: SymbolFeed, price: Decimal, now: int, *, synthetic_trade: bool) -> None:
        self._roll_minutes(now)
        taker_buy = price >= feed.last
        feed.last = price
        if synthetic_trade:
            feed.synthetic_count += 1
            u = unit01(feed.path.key, feed.synthetic_count)
            notional = 2_000.0 * (0.2 + 3.0 * u * u)
            qty = quantize_to_step(Decimal(repr(notional / float(price))), feed.spec.step_size)
            self.record_trade(feed.spec.symbol, price, max(qty, feed.spec.step_size), not taker_buy, now)
        self._publish_book(feed, now)

    def record_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool, time: int) -> None:
        """A public trade at `price` (a client fill or a synthetic print): bar, aggTrade and trade streams."""
        feed = self.symbols[symbol]
        self._roll_minutes(time)
        feed.agg_id += 1
        feed.trade_id += 1
        bar = feed.bars.get(self.current_minute)
        if bar is not None and bar.open_time != feed.frozen_bar:
            bar.add_trade(price, qty, not buyer_maker, feed.trade_id)
        lower = symbol.lower()
        p, q = fixed(price, feed.spec.price_decimals), fixed(qty, feed.spec.qty_decimals)
        if self.publisher.wants(f"{lower}@aggTrade"):
            self.publisher.publish(
                f"{lower}@aggTrade",
                {
                    "e": "aggTrade",
                    "E": time,
                    "a": feed.agg_id,
                    "s": symbol,
                    "p": p,
                    "q": q,
                    "f": feed.trade_id,
                    "l": feed.trade_id,
                    "T": time,
                    "m": buyer_maker,
                },
            )
        if self.publisher.wants(f"{lower}@trade"):
            self.publisher.publish(
                f"{lower}@trade",
                {
                    "e": "trade",
                    "E": time,
                    "T": time,
                    "s": symbol,
                    "t": feed.trade_id,
                    "p": p,
                    "q": q,
                    "X": "MARKET",
                    "m": buyer_maker,
                },
            )
        self._publish_kline(feed, self.current_minute, closed=False, now=time)

    def _publish_book(self, feed: SymbolFeed, now: int) -> None:
        stream = f"{feed.spec.symbol.lower()}@bookTicker"
        feed.book_update_id += 1
        if not self.publisher.wants(stream):
            return
        p = fixed(feed.last, feed.spec.price_decimals)
        size = fixed(max(feed.spec.min_qty * 1000, feed.spec.step_size), feed.spec.qty_decimals)
        self.publisher.publish(
            stream,
            {
                "e": "bookTicker",
                "u": feed.book_update_id,
                "s": feed.spec.symbol,
                "b": p,
                "B": size,
                "a": p,
                "A": size,
                "T": now,
                "E": now,
            },
        )

    # ------------------------------------------------------------------ bars

    def _roll_minutes(self, now: int) -> None:
        minute = klines.align_down(now, MINUTE_MS)
        if minute <= self.current_minute:
            return
        for feed in self.symbols.values():
            previous = feed.bars.get(self.current_minute)
            if previous is not None and previous.open_time != feed.frozen_bar:
                self._publish_kline(feed, self.current_minute, closed=True, now=now)
            for gap in range(self.current_minute + MINUTE_MS, minute + 1, MINUTE_MS):
                feed.bars[gap] = Bar(gap, feed.last, feed.last, feed.last, feed.last)
            while len(feed.bars) > MAX_LIVE_BARS:
                del feed.bars[min(feed.bars)]
        self.current_minute = minute

    def close_bar(self, symbol: str) -> bool:
        """Close the forming 1m bar now (admin), so a test need not wait for the minute to end."""
        feed = self.symbols[symbol]
        if feed.frozen_bar == self.current_minute:
            return False
        self._publish_kline(feed, self.current_minute, closed=True, now=self.now())
        feed.frozen_bar = self.current_minute
        return True

    def _publish_kline(self, feed: SymbolFeed, open_time: int, *, closed: bool, now: int) -> None:
        stream = f"{feed.spec.symbol.lower()}@kline_1m"
        bar = feed.bars.get(open_time)
        if bar is None or not self.publisher.wants(stream):
            return
        spec = feed.spec
        self.publisher.publish(
            stream,
            {
                "e": "kline",
                "E": now,
                "s": spec.symbol,
                "k": {
                    "t": bar.open_time,
                    "T": bar.open_time + MINUTE_MS - 1,
                    "s": spec.symbol,
                    "i": "1m",
                    "f": bar.first_trade_id,
                    "L": bar.last_trade_id,
                    "o": fixed(bar.open, spec.price_decimals),
                    "c": fixed(bar.close, spec.price_decimals),
                    "h": fixed(bar.high, spec.price_decimals),
                    "l": fixed(bar.low, spec.price_decimals),
                    "v": fixed(bar.volume, spec.qty_decimals),
                    "n": bar.trades,
                    "x": closed,
                    "q": fixed(bar.quote_volume, 5),
                    "V": fixed(bar.taker_base, spec.qty_decimals),
                    "Q": fixed(bar.taker_quote, 5),
                    "B": "0",
                },
            },
        )

    def kline_rows(
        self, symbol: str, step: int, start: int | None, end: int | None, limit: int
    ) -> list[list[object]]:
        feed = self.symbols[symbol]
        now = self.now()
        self._roll_minutes(now)
        opens = klines.open_times(step, start, end, limit, now)
        bars = klines.build_bars(
            opens, step, feed.history, live_minute=feed.bars.get, live_start_ms=self.live_start_ms, now_ms=now
        )
        return [klines.kline_row(bar, step, feed.spec.price_decimals, feed.spec.qty_decimals) for bar in bars]

    # ------------------------------------------------------------------ mark price and funding

    @staticmethod
    def next_funding_time(now: int) -> int:
        return (now // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

    def mark_payload(self, symbol: str, now: int) -> dict[str, object]:
        feed = self.symbols[symbol]
        mark = fixed(feed.mark, 8)
        return {
            "e": "markPriceUpdate",
            "E": now,
            "s": symbol,
            "p": mark,
            "i": mark,
            "P": mark,
            "r": fixed(feed.funding_rate, 8),
            "T": self.next_funding_time(now),
        }

    def publish_marks(self) -> None:
        now = self.now()
        payloads: list[dict[str, object]] = []
        for symbol in self.symbols:
            lower = symbol.lower()
            payload = self.mark_payload(symbol, now)
            payloads.append(payload)
            for stream in (f"{lower}@markPrice", f"{lower}@markPrice@1s"):
                if self.publisher.wants(stream):
                    self.publisher.publish(stream, payload)
        for stream in ("!markPrice@arr", "!markPrice@arr@1s"):
            if self.publisher.wants(stream):
                self.publisher.publish(stream, payloads)

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> FeedState:
        symbols = {}
        for symbol, feed in self.symbols.items():
            bars = [
                BarState(
                    b.open_time,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    b.quote_volume,
                    b.trades,
                    b.taker_base,
                    b.taker_quote,
                    b.first_trade_id,
                    b.last_trade_id,
                )
                for b in feed.bars.values()
            ]
            symbols[symbol] = SymbolFeedState(
                last=feed.last,
                mark_offset=feed.mark_offset,
                scale=feed.scale,
                agg_id=feed.agg_id,
                trade_id=feed.trade_id,
                book_update_id=feed.book_update_id,
                synthetic_count=feed.synthetic_count,
                funding_rate=feed.funding_rate,
                frozen_bar=feed.frozen_bar,
                bars=bars,
            )
        return FeedState(
            mode=self.mode,
            live_start_ms=self.live_start_ms,
            current_minute=self.current_minute,
            symbols=symbols,
        )

    def restore(self, saved: FeedState) -> None:
        """Continue from a snapshot; minutes the emulator was down become flat bars at the last price."""
        self.mode = saved.mode
        self.live_start_ms = saved.live_start_ms
        self.current_minute = saved.current_minute
        for symbol, state in saved.symbols.items():
            feed = self.symbols.get(symbol)
            if feed is None:
                continue
            feed.last, feed.mark_offset, feed.scale = state.last, state.mark_offset, state.scale
            feed.agg_id, feed.trade_id, feed.book_update_id = (
                state.agg_id,
                state.trade_id,
                state.book_update_id,
            )
            feed.synthetic_count, feed.funding_rate, feed.frozen_bar = (
                state.synthetic_count,
                state.funding_rate,
                state.frozen_bar,
            )
            feed.bars = {b.open_time: Bar(*msgspec.structs.astuple(b)) for b in state.bars}
        self._roll_minutes(self.now())


def funding_boundary_crossed(previous_ms: int, now_ms: int) -> bool:
    return now_ms // FUNDING_INTERVAL_MS > previous_ms // FUNDING_INTERVAL_MS


def seed_funding_rate(seed: int, symbol: str) -> Decimal:
    """A small positive funding rate per symbol, stable for a seed."""
    u = unit01(stable_key(seed, symbol, "funding"), 0)
    return Decimal(str(round(0.00005 + 0.0001 * u, 8)))
