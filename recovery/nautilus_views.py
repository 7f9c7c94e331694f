"""Plain-value views of nautilus objects for the pure modules (protective, missed, balances)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from recovery.balances import FillEffect, replay_realized
from recovery.missed import FillRecord, venue_sort_key
from recovery.protective import OpenOrder

# nautilus types are untyped for mypy (no stubs); they are `Any` here on purpose.
Order = Any
OrderFilled = Any
Position = Any
Instrument = Any


def order_view(order: Order) -> OpenOrder:
    trigger = getattr(order, "trigger_price", None)
    return OpenOrder(
        client_order_id=order.client_order_id.value,
        instrument_id=order.instrument_id.value,
        side=order.side_string(),
        order_type=order.type_string(),
        quantity=order.quantity.as_decimal(),
        trigger_price=None if trigger is None else trigger.as_decimal(),
        reduce_only=bool(order.is_reduce_only),
        venue_order_id=None if order.venue_order_id is None else order.venue_order_id.value,
    )


def fill_records(orders: Iterable[Order]) -> list[FillRecord[tuple[OrderFilled, Order]]]:
    """Every fill on these orders, from the orders' persisted event lists."""
    from nautilus_trader.model.events import OrderFilled as OrderFilledType

    records = []
    for order in orders:
        for event in order.events:
            if isinstance(event, OrderFilledType):
                records.append(
                    FillRecord(
                        instrument_id=event.instrument_id.value,
                        trade_id=event.trade_id.value,
                        ts_event=event.ts_event,
                        reconciliation=bool(event.reconciliation),
                        payload=(event, order),
                    )
                )
    return records


def fill_effect(record: FillRecord[tuple[OrderFilled, Order]], instrument: Instrument | None) -> FillEffect:
    event, _order = record.payload
    commission = event.commission
    settlement = _settlement_currency(instrument, commission)
    multiplier = Decimal(1) if instrument is None else instrument.multiplier.as_decimal()
    return FillEffect(
        key=record.key,
        instrument_id=record.instrument_id,
        side="BUY" if event.is_buy else "SELL",
        quantity=event.last_qty.as_decimal(),
        price=event.last_px.as_decimal(),
        commission=commission.as_decimal(),
        commission_currency=commission.currency.code,
        settlement_currency=settlement,
        multiplier=multiplier,
    )


def _settlement_currency(instrument: Instrument | None, commission: Any) -> str:
    if instrument is not None:
        currency = getattr(instrument, "settlement_currency", None)
        if currency is not None:
            return str(currency.code)
    return str(commission.currency.code)


def position_side(position: Position) -> str:
    return "LONG" if position.is_long else "SHORT" if position.is_short else "FLAT"


def replay_from_cache(
    cache: Any, strategy_id: Any, records: Iterable[FillRecord[tuple[OrderFilled, Order]]]
) -> tuple[dict[str, Decimal], list[str]]:
    """Realized PnL per fill, replaying each instrument's fills in venue order. An instrument whose replay
    does not end at the cached net position (older fills purged from the cache) is returned as incomplete
    instead of being given a wrong figure."""
    from nautilus_trader.model.identifiers import InstrumentId

    by_instrument: dict[str, dict[str, FillRecord[tuple[OrderFilled, Order]]]] = {}
    for record in records:
        by_instrument.setdefault(record.instrument_id, {})[record.key] = record
    realized: dict[str, Decimal] = {}
    incomplete: list[str] = []
    for instrument_id, unique in by_instrument.items():
        iid = InstrumentId.from_str(instrument_id)
        instrument = cache.instrument(iid)
        ordered = sorted(unique.values(), key=venue_sort_key)
        replay = replay_realized([fill_effect(r, instrument) for r in ordered])
        positions = cache.positions_open(instrument_id=iid, strategy_id=strategy_id)
        net = sum((p.signed_decimal_qty() for p in positions), Decimal(0))
        if replay.signed_quantity != net:
            incomplete.append(instrument_id)
            continue
        realized.update(replay.realized)
    return realized, incomplete
