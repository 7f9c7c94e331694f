"""What a strategy node holds, read from Redis without nautilus: its positions from the readable
`positions:{trader_id}:{venue}:{instrument_id}` hashes the node keeps current, its open conditional orders
(stop-loss, take-profit) from nautilus' own cache (`trader-{trader_id}:index:orders_open` and each order's
event list, msgpack or JSON, as nautilus 1.231 writes them)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from supervisor.cache_keys import TraderKeys

# nautilus' conditional order types, by the name the venue (Binance USD-M algo orders) gives them.
VENUE_TYPE_OF_NAUTILUS = {
    "STOP_MARKET": "STOP_MARKET",
    "STOP_LIMIT": "STOP",
    "MARKET_IF_TOUCHED": "TAKE_PROFIT_MARKET",
    "LIMIT_IF_TOUCHED": "TAKE_PROFIT",
    "TRAILING_STOP_MARKET": "TRAILING_STOP_MARKET",
}
_ZERO = Decimal(0)


@dataclass(frozen=True, kw_only=True)
class ConditionalOrder:
    """An open stop-loss / take-profit (any conditional order), as node or venue hold it."""

    client_order_id: str
    instrument: str
    order_type: str  # the venue's name: STOP_MARKET, TAKE_PROFIT_MARKET, ...
    side: str  # BUY / SELL
    quantity: Decimal | None  # None: closes the whole position (closePosition)
    trigger_price: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "instrument": self.instrument,
            "type": self.order_type,
            "side": self.side,
            "quantity": None if self.quantity is None else str(self.quantity),
            "trigger_price": None if self.trigger_price is None else str(self.trigger_price),
        }


@dataclass(frozen=True, kw_only=True)
class Holdings:
    """Net positions (instrument -> signed quantity, flat ones left out) and open conditional orders by
    client order id, on the instruments audited."""

    positions: Mapping[str, Decimal]
    orders: Mapping[str, ConditionalOrder]


class _Event(msgspec.Struct):
    type: str
    client_order_id: str | None = None
    instrument_id: str | None = None
    order_side: str | None = None
    order_type: str | None = None
    quantity: str | None = None
    trigger_price: str | None = None
    options: dict[str, Any] | None = None


_MSGPACK = msgspec.msgpack.Decoder(_Event)
_JSON = msgspec.json.Decoder(_Event)


def signed_quantity(side: str, quantity: str) -> Decimal:
    """A position hash's side and quantity as one signed number (LONG +, SHORT -, FLAT 0)."""
    amount = _decimal(quantity) or _ZERO
    if side.upper() == "SHORT":
        return -abs(amount)
    if side.upper() == "LONG":
        return abs(amount)
    return _ZERO


def order_from_events(raw_events: Iterable[bytes]) -> ConditionalOrder | None:
    """The open conditional order an order's cached events describe (the last OrderUpdated wins for quantity
    and trigger price), or None when it is not conditional or does not decode."""
    order: dict[str, Any] | None = None
    for raw in raw_events:
        try:
            event = (_JSON if raw[:1] == b"{" else _MSGPACK).decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if event.type == "OrderInitialized":
            options = event.options or {}
            order = {
                "client_order_id": event.client_order_id,
                "instrument": event.instrument_id,
                "order_type": VENUE_TYPE_OF_NAUTILUS.get(event.order_type or ""),
                "side": event.order_side,
                "quantity": _decimal(event.quantity),
                "trigger_price": _decimal(options.get("trigger_price")),
            }
        elif event.type == "OrderUpdated" and order is not None:
            order["quantity"] = _decimal(event.quantity) or order["quantity"]
            order["trigger_price"] = _decimal(event.trigger_price) or order["trigger_price"]
    if order is None or order["order_type"] is None or not order["client_order_id"]:
        return None
    if not isinstance(order["instrument"], str) or order["side"] not in ("BUY", "SELL"):
        return None
    return ConditionalOrder(**order)


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def read_holdings(
    redis: Any, *, trader_id: str, venue: str, instruments: Iterable[str], timeout_s: float
) -> Holdings:
    """The node's positions on `venue` and its open conditional orders on `instruments` (positions held on
    other instruments are included too: the audit's scope grows to them). Raises TimeoutError or the Redis
    client's error when Redis does not answer within `timeout_s`."""
    scope = set(instruments)
    keys = TraderKeys(trader_id)
    async with asyncio.timeout(timeout_s):
        positions: dict[str, Decimal] = {}
        async for key in redis.scan_iter(match=f"positions:{trader_id}:{venue}:*", count=500):
            fields = {_text(k): _text(v) for k, v in (await redis.hgetall(key)).items()}
            instrument = fields.get("instrument_id") or _text(key).rsplit(":", 1)[-1]
            amount = signed_quantity(fields.get("side", ""), fields.get("quantity", "0"))
            if amount != _ZERO:
                positions[instrument] = amount
        scope |= set(positions)
        orders: dict[str, ConditionalOrder] = {}
        for raw_id in await redis.smembers(keys.index("index:orders_open")):
            client_order_id = _text(raw_id)
            order = order_from_events(await redis.lrange(keys.order(client_order_id), 0, -1))
            if order is not None and order.instrument in scope:
                orders[client_order_id] = order
    return Holdings(positions=positions, orders=orders)
