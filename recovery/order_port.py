"""The protective executor's hands in nautilus: orders built, submitted, resolved and cancelled through the
strategy (`recovery.protective_exec.ProtectivePort`), with the cache as the record of what exists."""

from __future__ import annotations

from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.events import OrderDenied, OrderRejected
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId

from recovery.client_ids import ProtectiveKind, validate_client_order_id
from recovery.protective import Place
from recovery.strategy_errors import ProtectiveOrderError


class StrategyOrderPort:
    """Implements ProtectivePort on a RecoverableStrategy (untyped for mypy: nautilus has no stubs)."""

    def __init__(self, strategy: Any) -> None:
        self._strategy = strategy

    def order_status(self, client_order_id: str) -> str | None:
        order = self._strategy.cache.order(ClientOrderId(client_order_id))
        return None if order is None else str(order.status_string())

    def order_reason(self, client_order_id: str) -> str:
        order = self._strategy.cache.order(ClientOrderId(client_order_id))
        if order is None:
            return "unknown order"
        last = order.last_event
        return str(getattr(last, "reason", order.status_string()))

    def submit_protective(self, place: Place) -> None:
        intent = place.intended
        cid = ClientOrderId(validate_client_order_id(place.client_order_id))
        if self._strategy.cache.order(cid) is not None:
            # Submitting an id the cache knows makes nautilus append OrderDenied to the existing record, and
            # every later start fails to load it (research 0.4). The executor resolves such records first.
            raise ProtectiveOrderError(f"refusing to submit {cid.value}: the cache already has it")
        instrument_id = InstrumentId.from_str(intent.instrument_id)
        instrument = self._strategy.cache.instrument(instrument_id)
        positions = self._strategy.cache.positions_open(
            instrument_id=instrument_id, strategy_id=self._strategy.id
        )
        make = (
            self._strategy.order_factory.stop_market
            if intent.kind is ProtectiveKind.STOP_LOSS
            else self._strategy.order_factory.market_if_touched
        )
        order = make(
            instrument_id=instrument_id,
            order_side=OrderSide.SELL if intent.side == "SELL" else OrderSide.BUY,
            quantity=instrument.make_qty(intent.quantity),
            trigger_price=instrument.make_price(intent.trigger_price),
            trigger_type=TriggerType[intent.trigger_type],
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            client_order_id=cid,
        )
        self._strategy.submit_internal(order, position_id=positions[0].id if positions else None)

    def resolve_unsent(self, client_order_id: str) -> None:
        """An order the venue never received: close its record locally so that the id can be reused."""
        order = self._strategy.cache.order(ClientOrderId(client_order_id))
        if order is None:
            return
        now = self._strategy.clock.timestamp_ns()
        if order.status_string() == "INITIALIZED" or order.account_id is None:
            denied = OrderDenied(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                reason="NOT_SENT_BEFORE_RESTART",
                event_id=UUID4(),
                ts_init=now,
            )
            order.apply(denied)
            self._strategy.cache.update_order(order)
            self._strategy.msgbus.publish(topic=f"events.order.{order.strategy_id.value}", msg=denied)
            return
        rejected = OrderRejected(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            account_id=order.account_id,
            reason="NOT_AT_VENUE_AFTER_RESTART",
            event_id=UUID4(),
            ts_event=now,
            ts_init=now,
        )
        self._strategy.msgbus.send(endpoint="ExecEngine.process", msg=rejected)

    def purge_order(self, client_order_id: str) -> None:
        self._strategy.cache.purge_order(ClientOrderId(client_order_id), purge_from_database=True)

    def close_position_at_market(self, instrument_id: str) -> str | None:
        positions = self._strategy.cache.positions_open(
            instrument_id=InstrumentId.from_str(instrument_id), strategy_id=self._strategy.id
        )
        if not positions:
            return None
        position = positions[0]
        order = self._strategy.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=OrderSide.SELL if position.is_long else OrderSide.BUY,
            quantity=position.quantity,
            reduce_only=True,
        )
        self._strategy.submit_internal(order, position_id=position.id)
        return str(order.client_order_id.value)

    def cancel_protective(self, client_order_id: str) -> bool:
        order = self._strategy.cache.order(ClientOrderId(client_order_id))
        if order is None:
            return False
        if order.is_open:
            self._strategy.cancel_order(order)
        return True

    def deny(self, order: Any, reason: str) -> None:
        """What nautilus does for a denied order (record it DENIED, publish the events), except that an
        existing record of the same id is never touched (research 0.4)."""
        strategy = self._strategy
        topic = f"events.order.{strategy.id.value}"
        if strategy.cache.order_exists(order.client_order_id):
            strategy.log.error(f"{strategy.id.value}: {order.client_order_id} refused ({reason})")
            return
        strategy.log.warning(f"{strategy.id.value}: order {order.client_order_id} denied: {reason}")
        strategy.msgbus.publish(topic=topic, msg=order.init_event)
        strategy.cache.add_order(order)
        denied = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=reason,
            event_id=UUID4(),
            ts_init=strategy.clock.timestamp_ns(),
        )
        order.apply(denied)
        strategy.cache.update_order(order)
        strategy.msgbus.publish(topic=topic, msg=denied)
