"""How the drill moves the market between kills, so that strategies trade: a `Market` makes one move per step
with the drill's seeded random generator. The default, `BarMarket`, suits strategies on time bars and on
trades; a test (or a user in Python) can pass a market of its own to `run_drill`."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from emulator.admin import AdminClient
from emulator.symbols import spec_for

TURN_PROBABILITY = 0.35  # per step and symbol: the trend turns
MOVE_BP = (20, 80)  # each step moves a price 0.20% .. 0.80% along its trend
# While the drill waits for an order: the trend turns, then holds for this many steps, moving 0.6% .. 1.0% a
# step. A trend follower (EMA 5/12 in simulation) then changes its signal within 12 steps in 99.5% of cases.
SEEK_HOLD = 6
SEEK_BP = (60, 100)


class Market(Protocol):
    async def prepare(self, admin: AdminClient) -> None:
        """Once, before the fleet starts (starting prices, depth)."""

    async def step(self, admin: AdminClient, rng: random.Random, *, seek_order: bool = False) -> str:
        """One move of the market; what it did, for the progress line. `seek_order`: the drill waits for an
        order (a kill right after one): move so that strategies are likely to trade."""


class BarMarket:
    """Every step moves each symbol's price along a trend that turns now and then (a trade print at the new
    price), then closes the current 1-minute bar if the minute has not had one closed: bar strategies see a
    closed bar (at most one a minute), tick strategies a trade on every step."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = tuple(symbols)
        self._trend = dict.fromkeys(self.symbols, 1)
        self._seeking = 0  # consecutive steps that seek an order

    async def prepare(self, admin: AdminClient) -> None:
        return None

    async def step(self, admin: AdminClient, rng: random.Random, *, seek_order: bool = False) -> str:
        prices = (await admin.state())["prices"]
        moves = []
        seeking, self._seeking = self._seeking, self._seeking + 1 if seek_order else 0
        for symbol in self.symbols:
            turn = seeking % SEEK_HOLD == 0 if seek_order else rng.random() < TURN_PROBABILITY
            if turn:
                self._trend[symbol] = -self._trend[symbol]
            size = rng.randint(*(SEEK_BP if seek_order else MOVE_BP))
            change = Decimal(size) / 10_000 * self._trend[symbol]
            tick = spec_for(symbol).tick_size
            price = (Decimal(prices[symbol]["last"]) * (1 + change) / tick).to_integral_value() * tick
            await admin.set_price(symbol, price)
            moves.append(f"{symbol} {price}")
        # The emulator closes one bar per wall-clock minute: a second close within the minute closes nothing.
        closed = await admin.close_bar()
        return f"{', '.join(moves)}, {'bar closed' if closed else 'no bar (this minute closed already)'}"
