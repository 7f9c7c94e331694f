"""The venue: wires state, engine, price feed, streams, faults and rate limits together, and runs the clock.

One `Venue` per process. HTTP handlers and the admin API call into it; its ticker task moves prices, closes
bars, expires orders and listen keys, publishes mark prices and settles funding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec

from emulator import events
from emulator import state as state_mod
from emulator.config import AccountSpec, EmulatorConfig
from emulator.engine import Exchange
from emulator.faults import FaultRegistry
from emulator.feed import FeedState, PriceFeed, funding_boundary_crossed
from emulator.ratelimit import RateLimiter
from emulator.requestlog import RequestLog
from emulator.state import Account, ListenKey, VenueState
from emulator.streams import StreamHub

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Snapshot(msgspec.Struct, kw_only=True):
    """Everything a restarted emulator needs to continue: the venue state and the live price feed."""

    version: int = 1
    seed: int
    symbols: list[str]
    venue: VenueState
    feed: FeedState


class ScriptPoint(msgspec.Struct, kw_only=True, frozen=True):
    t: float  # seconds after start
    symbol: str
    price: Decimal
    mark: Decimal | None = None


def load_script(path: Path) -> list[ScriptPoint]:
    points = [
        msgspec.json.decode(line, type=ScriptPoint) for line in path.read_text().splitlines() if line.strip()
    ]
    return sorted(points, key=lambda p: p.t)


class Venue:
    def __init__(self, config: EmulatorConfig, clock: Callable[[], int] = wall_ms) -> None:
        self.config = config
        self.now = clock
        self.specs = {spec.symbol: spec for spec in config.symbols}
        self.hub = StreamHub()
        self.faults = FaultRegistry(config.seed)
        self.ratelimiter = RateLimiter(config.rate_limit, clock)
        self.requests = RequestLog()
        self.started_ms = clock()
        self._script = load_script(config.price_script) if config.price_script else []
        self._ticker: asyncio.Task[None] | None = None
        self._build(config.seed)
        if config.state_file is not None and config.state_file.exists():
            self.restore(config.state_file)

    def _build(self, seed: int) -> None:
        self.seed = seed
        self.feed = PriceFeed(seed, self.specs, self.config.price_mode, self.now, self.hub)
        venue_state = VenueState(seed=seed, accounts={}, counters=state_mod.initial_counters(seed))
        self.engine = Exchange(
            venue_state,
            self.specs,
            self.feed,
            self,
            self.now,
            algo_finish_delay_ms=self.config.algo_finish_delay_ms,
        )
        for spec in self.config.accounts:
            self._open_account(spec)

    def _open_account(self, spec: AccountSpec) -> None:
        account = Account(
            name=spec.name,
            api_key=spec.api_key,
            api_secret=spec.api_secret,
            fee_tier=spec.fee_tier,
            default_leverage=spec.leverage,
            update_time=self.now(),
        )
        self.engine.add_account(account, spec.balance)
        for position in spec.positions:
            if position.symbol not in self.specs:
                raise ValueError(f"account {spec.name}: position in unlisted symbol {position.symbol}")
            self.engine.set_position(
                account, position.symbol, position.amount, position.entry_price, notify=False
            )

    # ------------------------------------------------------------------ EventSink

    def user_event(self, account: str, payload: dict[str, object], delay_ms: int = 0) -> None:
        self.hub.user_event(account, payload, delay_ms)

    def trade_print(self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool, time: int) -> None:
        self.feed.record_trade(symbol, price, qty, buyer_maker, time)

    # ------------------------------------------------------------------ prices

    def set_price(self, symbol: str, price: Decimal, mark: Decimal | None = None) -> None:
        self.feed.set_price(symbol, price, mark)
        self.engine.on_price(symbol)

    def step_price(self, symbol: str, ticks: int) -> Decimal:
        price = self.feed.step(symbol, ticks)
        self.engine.on_price(symbol)
        return price

    # ------------------------------------------------------------------ listen keys

    def create_listen_key(self, account: Account) -> str:
        now = self.now()
        for key in self.engine.state.listen_keys.values():
            if key.account == account.name and key.active:
                key.keepalive = now
                return key.key
        listen_key = ListenKey(
            key=self.engine.new_listen_key(), account=account.name, created=now, keepalive=now
        )
        self.engine.state.listen_keys[listen_key.key] = listen_key
        return listen_key.key

    def active_listen_key(self, account: Account) -> ListenKey | None:
        for key in self.engine.state.listen_keys.values():
            if key.account == account.name and key.active:
                return key
        return None

    def close_listen_key(self, key: ListenKey, expired: bool) -> int:
        key.active = False
        final = events.listen_key_expired(key.key, self.now()) if expired else None
        return self.hub.close_listen_key(key.key, final)

    def listen_key_account(self, key: str) -> str | None:
        record = self.engine.state.listen_keys.get(key)
        return record.account if record is not None and record.active else None

    # ------------------------------------------------------------------ clock

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="emulator.ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def _tick_loop(self) -> None:
        interval = self.config.tick_ms / 1000
        last_mark_publish = 0
        previous = self.now()
        while True:
            await asyncio.sleep(interval)
            try:
                now = self.now()
                self.tick_once(now, previous)
                if now - last_mark_publish >= 1000:
                    self.feed.publish_marks()
                    last_mark_publish = now
                previous = now
            except Exception:
                log.exception("ticker step failed")

    def tick_once(self, now: int, previous: int) -> None:
        self._apply_script(now)
        for symbol in self.feed.tick():
            self.engine.on_price(symbol)
        self.engine.expire_due()
        if self.config.auto_funding and funding_boundary_crossed(previous, now):
            for symbol, feed in self.feed.symbols.items():
                self.engine.apply_funding(symbol, feed.funding_rate)
        self._expire_listen_keys(now)

    def _apply_script(self, now: int) -> None:
        elapsed = (now - self.started_ms) / 1000
        while self._script and self._script[0].t <= elapsed:
            point = self._script.pop(0)
            if point.symbol in self.specs:
                self.set_price(point.symbol, point.price, point.mark)

    def _expire_listen_keys(self, now: int) -> None:
        for key in self.engine.state.listen_keys.values():
            if key.active and now - key.keepalive > self.config.listen_key_ttl_ms:
                log.info("listen key of account %s expired", key.account)
                self.close_listen_key(key, expired=True)

    # ------------------------------------------------------------------ snapshot / restore / reset

    def snapshot_bytes(self) -> bytes:
        snapshot = Snapshot(
            seed=self.seed,
            symbols=list(self.specs),
            venue=self.engine.state,
            feed=self.feed.snapshot(),
        )
        return msgspec.json.encode(snapshot)

    def snapshot(self, path: Path) -> int:
        payload = self.snapshot_bytes()
        state_mod.write_file(path, payload)
        return len(payload)

    def restore(self, path: Path) -> None:
        snapshot = msgspec.json.decode(path.read_bytes(), type=Snapshot)
        missing = set(snapshot.symbols) - set(self.specs)
        if missing:
            raise ValueError(f"snapshot lists symbols this emulator does not: {sorted(missing)}")
        self.seed = snapshot.seed
        self.feed = PriceFeed(snapshot.seed, self.specs, self.config.price_mode, self.now, self.hub)
        self.feed.restore(snapshot.feed)
        self.engine = Exchange(
            snapshot.venue,
            self.specs,
            self.feed,
            self,
            self.now,
            algo_finish_delay_ms=self.config.algo_finish_delay_ms,
        )
        log.info("restored state from %s", path)

    def reset(self, seed: int | None = None) -> None:
        for key in list(self.engine.state.listen_keys.values()):
            if key.active:
                self.close_listen_key(key, expired=False)
        self.faults.clear()
        self.ratelimiter.reset()
        self.requests.clear()
        self._build(self.seed if seed is None else seed)
