"""Read nautilus' cached orders, positions and account events as plain values, without importing nautilus.

Each cache item is a Redis list of serialized events (msgpack by default, JSON with `encoding="json"`); the
fields used here are the ones nautilus writes in 1.231 (`OrderInitialized`, `OrderFilled`, ...,
`AccountState`). Only what compaction decides on is decoded: whether the item is closed, when, and what it
links to. Anything that does not decode is a `HistoryDecodeError`, and compaction then leaves that item where
it is (the node reports corrupt entries itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

# Order events after which an order is closed (nautilus `Order.is_closed`: DENIED, REJECTED, CANCELED,
# EXPIRED, FILLED). A FILLED order is closed only once its fills add up to its quantity.
_TERMINAL_EVENTS = frozenset({"OrderDenied", "OrderRejected", "OrderCanceled", "OrderExpired"})


class HistoryDecodeError(ValueError):
    """A cached item whose events cannot be read as nautilus wrote them."""


class _OrderEvent(msgspec.Struct):
    type: str
    ts_event: int | str = 0
    ts_init: int | str = 0
    client_order_id: str | None = None
    instrument_id: str | None = None
    strategy_id: str | None = None
    quantity: str | None = None
    last_qty: str | None = None
    order_side: str | None = None
    position_id: str | None = None
    order_list_id: str | None = None
    linked_order_ids: list[str] | None = None
    parent_order_id: str | None = None
    exec_spawn_id: str | None = None


class _Balance(msgspec.Struct):
    currency: str


class _AccountEvent(msgspec.Struct):
    type: str
    balances: list[_Balance] = []
    margins: list[Any] = []


_ORDER_EVENT_MSGPACK = msgspec.msgpack.Decoder(_OrderEvent)
_ORDER_EVENT_JSON = msgspec.json.Decoder(_OrderEvent)
_ACCOUNT_EVENT_MSGPACK = msgspec.msgpack.Decoder(_AccountEvent)
_ACCOUNT_EVENT_JSON = msgspec.json.Decoder(_AccountEvent)


@dataclass(frozen=True, kw_only=True)
class OrderRecord:
    client_order_id: str
    closed: bool
    ts_first: int  # earliest timestamp on its first event
    ts_last: int  # latest timestamp on its last event
    instrument_id: str
    strategy_id: str
    position_ids: frozenset[str]  # from its fills
    # Orders nautilus links together (contingencies, order lists, exec-algorithm spawns): ids, group tokens.
    group_refs: frozenset[str]
    events: int


@dataclass(frozen=True, kw_only=True)
class PositionRecord:
    position_id: str
    closed: bool
    ts_opened: int  # earliest timestamp on its first fill
    ts_last: int  # latest timestamp on its last fill
    instrument_id: str
    strategy_id: str
    client_order_ids: frozenset[str]  # the orders whose fills make it up
    events: int


@dataclass(frozen=True, kw_only=True)
class AccountRecord:
    """Per event (oldest first): the currencies whose balance it sets, and whether it sets any state."""

    account_id: str
    currencies: tuple[frozenset[str], ...]
    sets_state: tuple[bool, ...]


def parse_ts(value: int | str) -> int:
    """A nautilus timestamp as UNIX ns: an int, a decimal string (`timestamps_as_str`) or ISO 8601."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    try:
        head, _, frac = value.rstrip("Z").partition(".")
        seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
        return seconds * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except ValueError as exc:
        raise HistoryDecodeError(f"timestamp {value!r} is neither nanoseconds nor ISO 8601") from exc


def _decode(raw: bytes, msgpack: msgspec.msgpack.Decoder[Any], json: msgspec.json.Decoder[Any]) -> Any:
    try:
        return json.decode(raw) if raw[:1] == b"{" else msgpack.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HistoryDecodeError(str(exc)) from exc


def _quantity(text: str | None, what: str) -> Decimal:
    try:
        return Decimal(text) if text is not None else Decimal(0)
    except InvalidOperation as exc:
        raise HistoryDecodeError(f"{what} {text!r} is not a number") from exc


def _span(event: _OrderEvent) -> tuple[int, int]:
    a, b = parse_ts(event.ts_event), parse_ts(event.ts_init)
    return min(a, b), max(a, b)


def read_order(client_order_id: str, raw_events: list[bytes]) -> OrderRecord:
    if not raw_events:
        raise HistoryDecodeError("no events")
    events = [_decode(raw, _ORDER_EVENT_MSGPACK, _ORDER_EVENT_JSON) for raw in raw_events]
    init = events[0]
    if init.type != "OrderInitialized":
        raise HistoryDecodeError(f"first event is {init.type}, not OrderInitialized")
    if init.client_order_id != client_order_id:
        raise HistoryDecodeError(f"first event is for {init.client_order_id!r}")
    quantity = _quantity(init.quantity, "quantity")
    filled = Decimal(0)
    position_ids: set[str] = set()
    for event in events[1:]:
        if event.type == "OrderUpdated" and event.quantity is not None:
            quantity = _quantity(event.quantity, "quantity")
        elif event.type == "OrderFilled":
            filled += _quantity(event.last_qty, "last_qty")
            if event.position_id:
                position_ids.add(event.position_id)
    last = events[-1]
    closed = last.type in _TERMINAL_EVENTS or (last.type == "OrderFilled" and filled >= quantity > 0)
    refs = set(init.linked_order_ids or ())
    if init.parent_order_id:
        refs.add(init.parent_order_id)
    if init.order_list_id:
        refs.add(f"list:{init.order_list_id}")
    if init.exec_spawn_id:
        refs.add(f"spawn:{init.exec_spawn_id}")
    return OrderRecord(
        client_order_id=client_order_id,
        closed=closed,
        ts_first=_span(init)[0],
        ts_last=max(_span(e)[1] for e in events),
        instrument_id=init.instrument_id or "",
        strategy_id=init.strategy_id or "",
        position_ids=frozenset(position_ids),
        group_refs=frozenset(refs),
        events=len(events),
    )


def read_position(position_id: str, raw_fills: list[bytes]) -> PositionRecord:
    if not raw_fills:
        raise HistoryDecodeError("no fills")
    fills = [_decode(raw, _ORDER_EVENT_MSGPACK, _ORDER_EVENT_JSON) for raw in raw_fills]
    net = Decimal(0)
    for fill in fills:
        if fill.type != "OrderFilled":
            raise HistoryDecodeError(f"position event is {fill.type}, not OrderFilled")
        qty = _quantity(fill.last_qty, "last_qty")
        if fill.order_side == "BUY":
            net += qty
        elif fill.order_side == "SELL":
            net -= qty
        else:
            raise HistoryDecodeError(f"fill side {fill.order_side!r}")
    first = fills[0]
    return PositionRecord(
        position_id=position_id,
        closed=net == 0,
        ts_opened=_span(first)[0],
        ts_last=max(_span(f)[1] for f in fills),
        instrument_id=first.instrument_id or "",
        strategy_id=first.strategy_id or "",
        client_order_ids=frozenset(f.client_order_id for f in fills if f.client_order_id),
        events=len(fills),
    )


def read_account(account_id: str, raw_events: list[bytes]) -> AccountRecord:
    events = [_decode(raw, _ACCOUNT_EVENT_MSGPACK, _ACCOUNT_EVENT_JSON) for raw in raw_events]
    for event in events:
        if event.type != "AccountState":
            raise HistoryDecodeError(f"account event is {event.type}, not AccountState")
    return AccountRecord(
        account_id=account_id,
        currencies=tuple(frozenset(b.currency for b in e.balances) for e in events),
        sets_state=tuple(bool(e.balances or e.margins) for e in events),
    )
