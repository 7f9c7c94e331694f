"""A basket holder: on its first (fresh) start it buys the given quantity of every instrument, each position
with a stop-loss and a take-profit; after that it only keeps them protected. The smallest example of a
RecoverableStrategy over many instruments, and what bench/recovery.py restarts (50 positions).

With `warmup_period` > 0 it also keeps an EMA of that period on the first instrument's 1-minute bars, so that
every recovery includes a history request of that many bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from recovery.protective import ProtectiveIntent
from recovery.strategy import RecoverableStrategy, RecoverableStrategyConfig

PATH = "recovery.examples.hold_many:HoldMany"


class HoldManyConfig(RecoverableStrategyConfig, kw_only=True, frozen=True):
    instrument_ids: list[str]  # also what the node claims at reconciliation
    quantities: list[str]  # one per instrument
    warmup_period: int = 0
    protective_distance: str = "0.10"  # stop-loss and take-profit this fraction away from the entry


class HoldManyState(msgspec.Struct, frozen=True, kw_only=True):
    opened: bool = False


class HoldMany(RecoverableStrategy):
    state_type = HoldManyState

    def __init__(self, config: HoldManyConfig) -> None:
        super().__init__(config)
        self.instruments = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.quantities = [Decimal(q) for q in config.quantities]
        self.distance = Decimal(config.protective_distance)
        self.ema = ExponentialMovingAverage(config.warmup_period) if config.warmup_period else None

    def on_setup(self) -> None:
        if self.ema is not None:
            bar_type = BarType.from_str(f"{self.instruments[0]}-1-MINUTE-LAST-EXTERNAL")
            self.register_indicator_for_bars(bar_type, self.ema)
            self.subscribe_bars(bar_type)

    def protective_orders(self, position: Any) -> Sequence[ProtectiveIntent]:
        entry = Decimal(str(position.avg_px_open))
        sign = 1 if position.is_long else -1
        return (
            ProtectiveIntent.stop_loss(entry * (1 - sign * self.distance)),
            ProtectiveIntent.take_profit(entry * (1 + sign * self.distance)),
        )

    def on_ready(self) -> None:
        if self.state.opened:
            return
        self.set_state(opened=True)  # durable before any order (write-ahead)
        for instrument_id, quantity in zip(self.instruments, self.quantities, strict=True):
            instrument = self.cache.instrument(instrument_id)
            order = self.order_factory.market(instrument_id, OrderSide.BUY, instrument.make_qty(quantity))
            self.submit_order(order)
