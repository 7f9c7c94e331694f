"""A RecoverableStrategy the strategy-side node tests drive through the emulator's prices.

It trades on trade ticks (the emulator prints one on every admin price change), so a test can make it act
within milliseconds instead of waiting for minute bars:
- a tick at `entry_price` while flat: state `entries += 1`, then a market BUY of `trade_size`;
- a tick at `stop_move_price`: the stop-loss level moves to `stop_move_to` (state change -> new generation);
- every tick: state `ticks += 1`, `last_price`.
Protective orders: a stop-loss `stop_offset` below the entry (or at the moved level) and a take-profit
`take_profit_offset` above. Missed fills and denied orders are recorded in the state, so tests read what the
strategy saw from Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from recovery.protective import ProtectiveIntent
from recovery.strategy import MissedFill, RecoverableStrategy, RecoverableStrategyConfig

PATH = "tests.recovery.recoverable_probe:RecoverableProbe"
CONFIG_PATH = "tests.recovery.recoverable_probe:RecoverableProbeConfig"


class RecoverableProbeConfig(RecoverableStrategyConfig, kw_only=True, frozen=True):
    instrument_id: str = "BTCUSDT-PERP.BINANCE"
    trade_size: str = "0.010"
    entry_price: str | None = None
    stop_offset: str = "5000"
    take_profit_offset: str | None = "5000"
    stop_move_price: str | None = None
    stop_move_to: str | None = None
    ema_period: int = 5
    entry_by_timer: bool = False  # enter from a clock alert once ready (nautilus runs it on another thread)
    submit_during_recovery: bool = False  # in on_setup and on the first warm-up bar (both while recovering)


class ProbeState(msgspec.Struct, frozen=True, kw_only=True):
    ticks: int = 0
    last_price: str = ""
    entries: int = 0
    stop_level: str | None = None
    missed: list[str] = []  # "trade_id:protective kind" per missed fill, in delivery order
    denied: list[str] = []  # reasons of denied orders
    ema_count_at_entry: int = -1  # bars the EMA had seen when the entry was submitted
    ema_count_at_ready: int = -1  # ... when trading was allowed
    timer_thread: bool = False
    protective_failures: list[str] = []


class RecoverableProbe(RecoverableStrategy):
    state_type = ProbeState

    def __init__(self, config: RecoverableProbeConfig) -> None:
        super().__init__(config)
        self.probe = config
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(f"{config.instrument_id}-1-MINUTE-LAST-EXTERNAL")
        self.ema = ExponentialMovingAverage(config.ema_period)
        self._probe_submitted_warmup = False

    def on_setup(self) -> None:
        self.register_indicator_for_bars(self.bar_type, self.ema)
        self.subscribe_bars(self.bar_type)
        self.subscribe_trade_ticks(self.instrument_id)
        if self.probe.submit_during_recovery:
            self.submit_order(self._market(OrderSide.BUY, Decimal(self.probe.trade_size)))

    def on_historical_data(self, data: Any) -> None:
        # Warm-up bars arrive while the strategy runs but recovery is not complete: the submit is denied and,
        # unlike one from on_setup (the strategy is still STARTING), its OrderDenied reaches on_order_denied.
        if self.probe.submit_during_recovery and not self._probe_submitted_warmup:
            self._probe_submitted_warmup = True
            self.submit_order(self._market(OrderSide.BUY, Decimal(self.probe.trade_size)))

    def protective_orders(self, position: Any) -> Sequence[ProtectiveIntent]:
        entry = Decimal(str(position.avg_px_open))
        stop = (
            Decimal(self.state.stop_level)
            if self.state.stop_level
            else entry - Decimal(self.probe.stop_offset)
        )
        intents = [ProtectiveIntent.stop_loss(stop)]
        if self.probe.take_profit_offset is not None:
            intents.append(ProtectiveIntent.take_profit(entry + Decimal(self.probe.take_profit_offset)))
        return intents

    def on_ready(self) -> None:
        self.set_state(ema_count_at_ready=self.ema.count)
        if self.probe.entry_by_timer and not self.state.entries:
            alert_at = self.clock.utc_now() + timedelta(milliseconds=100)
            self.clock.set_time_alert("probe-entry", alert_at, callback=self._timer_entry)

    def _timer_entry(self, event: Any) -> None:
        self.set_state(entries=self.state.entries + 1, ema_count_at_entry=self.ema.count, timer_thread=True)
        self.submit_order(self._market(OrderSide.BUY, Decimal(self.probe.trade_size)))

    def on_missed_fill(self, missed: MissedFill) -> None:
        kind = missed.protective_kind.value if missed.protective_kind else "-"
        self.set_state(missed=[*self.state.missed, f"{missed.fill.trade_id}:{kind}"])

    def on_protective_failed(self, message: str) -> None:
        self.set_state(protective_failures=[*self.state.protective_failures, message])

    def on_order_denied(self, event: Any) -> None:
        if self.state is None:  # not restored: no recovery hub (a plain nautilus node)
            return
        self.set_state(denied=[*self.state.denied, str(event.reason)])

    def on_trade_tick(self, tick: Any) -> None:
        if not self.recovery_ready:
            return
        price = Decimal(str(tick.price))
        self.set_state(ticks=self.state.ticks + 1, last_price=str(price))
        if self.probe.stop_move_price is not None and price == Decimal(self.probe.stop_move_price):
            self.set_state(stop_level=self.probe.stop_move_to)
        flat = not self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.id)
        if (
            self.probe.entry_price is not None
            and price == Decimal(self.probe.entry_price)
            and flat
            and not self.state.entries
        ):
            self.set_state(entries=self.state.entries + 1, ema_count_at_entry=self.ema.count)
            self.submit_order(self._market(OrderSide.BUY, Decimal(self.probe.trade_size)))

    def _market(self, side: Any, quantity: Decimal) -> Any:
        instrument = self.cache.instrument(self.instrument_id)
        return self.order_factory.market(
            instrument_id=self.instrument_id, order_side=side, quantity=instrument.make_qty(quantity)
        )
