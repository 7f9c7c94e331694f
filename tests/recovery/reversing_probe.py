"""A RecoverableStrategy that reverses its position on command, for the reversal regression and kill drills.

Driven by the emulator's trade prints (one on every admin price change), so a test controls it within
milliseconds: a tick at a price listed in `targets` sets the target net position to the value listed for it,
and, unless an order of its own is still working, one market order of `target - net` goes out (a reversal
from -q to +q is one order of 2q, which the venue fills as a close and an open). `resting_offset` makes such
an order rest as a LIMIT, so that the test can fill it in several trades. Every position has a stop-loss and
a take-profit `offset` away. State counts the orders sent, so a drill can compare it with the venue.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId

from recovery.protective import ProtectiveIntent
from recovery.strategy import MissedFill, RecoverableStrategy, RecoverableStrategyConfig

PATH = "tests.recovery.reversing_probe:ReversingProbe"
CONFIG_PATH = "tests.recovery.reversing_probe:ReversingProbeConfig"


class ReversingProbeConfig(RecoverableStrategyConfig, kw_only=True, frozen=True):
    instrument_id: str = "ETHUSDT-PERP.BINANCE"
    # price (as the tick prints it) -> target signed net position, e.g. {"3010.00": "0.010"}
    targets: dict[str, str] = msgspec.field(default_factory=dict)
    offset: str = "300"  # stop-loss and take-profit distance from the entry price
    # Send the order as a LIMIT this far on the passive side of the tick's price, so that it rests and the
    # test can fill it in pieces (emulator admin `fill`); None: a market order.
    resting_offset: str | None = None


class ReversingState(msgspec.Struct, frozen=True, kw_only=True):
    orders: int = 0
    last_target: str = ""
    missed: list[str] = []


class ReversingProbe(RecoverableStrategy):
    state_type = ReversingState

    def __init__(self, config: ReversingProbeConfig) -> None:
        super().__init__(config)
        self.probe = config
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.targets = {Decimal(price): Decimal(qty) for price, qty in config.targets.items()}

    def on_setup(self) -> None:
        self.subscribe_trade_ticks(self.instrument_id)

    def protective_orders(self, position: Any) -> Sequence[ProtectiveIntent]:
        entry = Decimal(str(position.avg_px_open))
        offset = Decimal(self.probe.offset)
        if position.is_long:
            return (ProtectiveIntent.stop_loss(entry - offset), ProtectiveIntent.take_profit(entry + offset))
        return (ProtectiveIntent.stop_loss(entry + offset), ProtectiveIntent.take_profit(entry - offset))

    def on_missed_fill(self, missed: MissedFill) -> None:
        self.set_state(missed=[*self.state.missed, str(missed.fill.trade_id)])

    def on_trade_tick(self, tick: Any) -> None:
        if not self.recovery_ready:
            return
        price = Decimal(str(tick.price))
        target = self.targets.get(price)
        if target is None or self._working():
            return
        delta = target - self._net()
        if delta == 0:
            return
        self.set_state(last_target=str(target), orders=self.state.orders + 1)
        instrument = self.cache.instrument(self.instrument_id)
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        quantity = instrument.make_qty(abs(delta))
        if self.probe.resting_offset is not None:
            offset = Decimal(self.probe.resting_offset)
            order = self.order_factory.limit(
                instrument_id=self.instrument_id,
                order_side=side,
                quantity=quantity,
                price=instrument.make_price(price - offset if delta > 0 else price + offset),
                time_in_force=TimeInForce.GTC,
            )
        else:
            order = self.order_factory.market(
                instrument_id=self.instrument_id, order_side=side, quantity=quantity
            )
        self.submit_order(order)

    def _working(self) -> bool:
        """An order of ours (not a protective one) is waiting for its state write, on its way or resting:
        wait for it (the emulator prints a trade tick for every fill, so one price comes several times)."""
        orders = [  # not closed: initialized (the request not sent yet), in flight, resting
            *self.orders_awaiting_state,
            *(
                o
                for o in self.cache.orders(instrument_id=self.instrument_id, strategy_id=self.id)
                if not o.is_closed
            ),
        ]
        return any(not o.client_order_id.value.startswith(("SL-", "TP-")) for o in orders)

    def _net(self) -> Decimal:
        return sum(
            (
                p.signed_decimal_qty()
                for p in self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.id)
            ),
            Decimal(0),
        )
