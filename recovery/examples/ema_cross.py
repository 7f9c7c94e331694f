"""An EMA-cross strategy on 1-minute bars, built on RecoverableStrategy.

- Signal: fast EMA above slow EMA is LONG, below is SHORT. On a change of signal the strategy goes to that
  side with one market order (flat -> `trade_size`; opposite -> flips through zero).
- Every position has a stop-loss and a take-profit (`protective_orders`). The stop trails: it follows the best
  price since entry (`trailing_ref`, custom state) once that improves by `trail_step_pct`; the take-profit is
  fixed from the entry price.
- Custom state: the last signal, the number of entries, the trailing reference, how many positions protective
  orders closed (counted also while the node was down, through `on_missed_fill`) and the last bar handled.

Run it in a fleet node:

    strategies:
      - path: recovery.examples.ema_cross:EmaCross
        config: {instrument_id: BTCUSDT-PERP.BINANCE, order_id_tag: "001", trade_size: "0.010",
                 external_order_claims: [BTCUSDT-PERP.BINANCE]}
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId

from recovery.protective import ProtectiveIntent
from recovery.strategy import MissedFill, RecoverableStrategy, RecoverableStrategyConfig

Bar = Any
Position = Any

LONG = "LONG"
SHORT = "SHORT"
NONE = "NONE"


class EmaCrossConfig(RecoverableStrategyConfig, kw_only=True, frozen=True):
    instrument_id: str = "BTCUSDT-PERP.BINANCE"
    bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    fast_period: PositiveInt = 10
    slow_period: PositiveInt = 20
    trade_size: str = "0.010"
    stop_loss_pct: str = "0.01"  # the stop sits this far from the trailing reference
    take_profit_pct: str = "0.02"  # the take-profit sits this far from the entry price
    trail_step_pct: str = "0.0025"  # the trailing reference moves only by at least this much


class EmaCrossState(msgspec.Struct, frozen=True, kw_only=True):
    last_signal: str = NONE
    entries: int = 0
    trailing_ref: Decimal | None = None
    protective_exits: int = 0
    last_bar_ts: int = 0


class EmaCross(RecoverableStrategy):
    state_type = EmaCrossState
    state_version = 1

    def __init__(self, config: EmaCrossConfig) -> None:
        super().__init__(config)
        if config.fast_period >= config.slow_period:
            raise ValueError(
                f"fast_period ({config.fast_period}) must be below slow_period ({config.slow_period})"
            )
        self.cfg = config
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.bar_type = BarType.from_str(f"{config.instrument_id}-{config.bar_spec}")
        self.fast = ExponentialMovingAverage(config.fast_period)
        self.slow = ExponentialMovingAverage(config.slow_period)
        self.trade_size = Decimal(config.trade_size)
        self.stop_loss_pct = Decimal(config.stop_loss_pct)
        self.take_profit_pct = Decimal(config.take_profit_pct)
        self.trail_step_pct = Decimal(config.trail_step_pct)

    # -- recovery hooks ---------------------------------------------------------------------------------

    def on_setup(self) -> None:
        self.register_indicator_for_bars(self.bar_type, self.fast)
        self.register_indicator_for_bars(self.bar_type, self.slow)
        self.subscribe_bars(self.bar_type)

    def protective_orders(self, position: Position) -> Sequence[ProtectiveIntent]:
        entry = Decimal(str(position.avg_px_open))
        ref = self.state.trailing_ref or entry
        if position.is_long:
            return (
                ProtectiveIntent.stop_loss(ref * (1 - self.stop_loss_pct)),
                ProtectiveIntent.take_profit(entry * (1 + self.take_profit_pct)),
            )
        return (
            ProtectiveIntent.stop_loss(ref * (1 + self.stop_loss_pct)),
            ProtectiveIntent.take_profit(entry * (1 - self.take_profit_pct)),
        )

    def on_missed_fill(self, missed: MissedFill) -> None:
        self.log.info(f"missed while down: {missed.fill} (protective={missed.protective_kind})")
        if missed.protective_kind is not None:
            self.set_state(protective_exits=self.state.protective_exits + 1, trailing_ref=None)

    def on_ready(self) -> None:
        self.log.info(f"ready: state={self.state} fast={self.fast.value} slow={self.slow.value}")

    # -- trading ----------------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        if not self.recovery_ready or not self.indicators_initialized():
            return
        signal = LONG if self.fast.value > self.slow.value else SHORT
        net = self._net_quantity()
        self._trail(bar, net)
        if signal == self.state.last_signal:
            self.set_state(last_bar_ts=bar.ts_event)
            return
        target = self.trade_size if signal == LONG else -self.trade_size
        delta = target - net
        # State first: the order below is sent only once this change is durable (write-ahead).
        self.set_state(
            last_signal=signal,
            entries=self.state.entries + 1,
            trailing_ref=Decimal(str(bar.close)),
            last_bar_ts=bar.ts_event,
        )
        if delta == 0:
            return
        instrument = self.cache.instrument(self.instrument_id)
        order = self.order_factory.market(
            instrument_id=self.instrument_id,
            order_side=OrderSide.BUY if delta > 0 else OrderSide.SELL,
            quantity=instrument.make_qty(abs(delta)),
        )
        self.submit_order(order)

    def on_position_closed(self, event: Any) -> None:
        self.set_state(trailing_ref=None)

    def _trail(self, bar: Bar, net: Decimal) -> None:
        ref = self.state.trailing_ref
        if net == 0 or ref is None:
            return
        if net > 0 and Decimal(str(bar.high)) >= ref * (1 + self.trail_step_pct):
            self.set_state(trailing_ref=Decimal(str(bar.high)))
        elif net < 0 and Decimal(str(bar.low)) <= ref * (1 - self.trail_step_pct):
            self.set_state(trailing_ref=Decimal(str(bar.low)))

    def _net_quantity(self) -> Decimal:
        return sum(
            (
                p.signed_decimal_qty()
                for p in self.cache.positions_open(instrument_id=self.instrument_id, strategy_id=self.id)
            ),
            Decimal(0),
        )
