"""A minimal strategy for the node tests (not RecoverableStrategy, which the strategy half builds): it speaks
the recovery hub contract (attach, phases, ready) and, once the node is ACTIVE and it holds nothing, opens a
position with a market order and protects it with a reduce-only stop under a fixed client order id.

Loaded by the node process by import path: `tests.recovery.strategies:HubProbe`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.common.messages import TradingStateChanged
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.enums import OrderSide, TradingState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId
from nautilus_trader.trading.strategy import Strategy


class HubProbeConfig(StrategyConfig, frozen=True):
    instrument_id: str
    # Open once (when flat and no entry order exists yet): side and quantity, then a stop at stop_trigger.
    entry_side: str | None = None
    entry_qty: str = "0.010"
    entry_client_order_id: str = "ENTRY-1"
    stop_trigger: str | None = None
    stop_client_order_id: str = "SL-1"
    # Report ready to the hub (False: stay in recovery, to test the strategies timeout).
    report_ready: bool = True
    # Fail recovery from on_start with this reason (fatal when fail_fatal).
    fail_reason: str | None = None
    fail_fatal: bool = False
    # Report a failure to the hub once trading (after READY).
    fail_when_active: str | None = None
    # Submit a market order with this id from on_start, while the node is still HALTED (must be denied).
    submit_during_recovery: str | None = None


class HubProbe(Strategy):  # type: ignore[misc]  # nautilus' Cython classes are untyped
    def __init__(self, config: HubProbeConfig) -> None:
        super().__init__(config)
        self.instrument_id = InstrumentId.from_str(config.instrument_id)
        self.hub: Any = None
        self.entered = False

    def bind_recovery(self, hub: Any) -> None:
        self.hub = hub

    def on_start(self) -> None:
        sid = self.id.value
        if self.hub is None:
            self.log.error("no recovery hub: refusing to trade")
            return
        self.hub.attach(sid)
        if self.config.submit_during_recovery:
            instrument = self.cache.instrument(self.instrument_id)
            self.submit_order(
                self.order_factory.market(
                    self.instrument_id,
                    OrderSide.BUY,
                    instrument.make_qty(Decimal(self.config.entry_qty)),
                    client_order_id=ClientOrderId(self.config.submit_during_recovery),
                )
            )
        if self.config.fail_reason:
            self.hub.strategy_failed(
                sid, self.config.fail_reason, {"probe": True}, fatal=self.config.fail_fatal
            )
            return
        rec = self.hub.reconciliation
        positions = {v: [p.instrument_id for p in r.positions] for v, r in rec.items()}
        self.hub.strategy_phase(sid, "state_restored", {"venue_positions": positions})
        self.hub.strategy_phase(
            sid, "orders_restored", {"open_orders": sum(len(r.open_orders) for r in rec.values())}
        )
        self.hub.strategy_phase(sid, "warmed", {})
        self.msgbus.subscribe(topic="events.risk", handler=self._on_risk)
        if self.config.report_ready:
            self.hub.strategy_ready(sid)

    def on_save(self) -> dict[str, bytes]:
        return {"probe": b"saved-on-clean-stop"}

    def _on_risk(self, event: TradingStateChanged) -> None:
        if event.state != TradingState.ACTIVE:
            return
        if self.config.fail_when_active:
            self.hub.strategy_failed(
                self.id.value, self.config.fail_when_active, {}, fatal=self.config.fail_fatal
            )
            return
        self._maybe_enter()

    def _maybe_enter(self) -> None:
        if self.config.entry_side is None or self.entered:
            return
        entry_id = ClientOrderId(self.config.entry_client_order_id)
        if self.cache.order(entry_id) is not None or self.cache.positions_open(
            instrument_id=self.instrument_id
        ):
            return  # entered in an earlier run
        self.entered = True
        instrument = self.cache.instrument(self.instrument_id)
        order = self.order_factory.market(
            self.instrument_id,
            OrderSide[self.config.entry_side],
            instrument.make_qty(Decimal(self.config.entry_qty)),
            client_order_id=entry_id,
        )
        self.submit_order(order)

    def on_order_filled(self, event: OrderFilled) -> None:
        if (
            event.client_order_id.value != self.config.entry_client_order_id
            or self.config.stop_trigger is None
        ):
            return
        order = self.cache.order(event.client_order_id)
        if order is None or not order.is_closed:
            return
        instrument = self.cache.instrument(self.instrument_id)
        exit_side = OrderSide.SELL if order.side == OrderSide.BUY else OrderSide.BUY
        stop = self.order_factory.stop_market(
            self.instrument_id,
            exit_side,
            order.quantity,
            trigger_price=instrument.make_price(Decimal(self.config.stop_trigger)),
            reduce_only=True,
            client_order_id=ClientOrderId(self.config.stop_client_order_id),
        )
        self.submit_order(stop)
