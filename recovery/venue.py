"""What the venue holds for this node after reconciliation: plain values (no nautilus types), so that the
strategy side can diff against them in pure functions and tests can build them by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# Side names as nautilus prints them.
LONG = "LONG"
SHORT = "SHORT"
FLAT = "FLAT"


def side_of(signed_qty: Decimal) -> str:
    if signed_qty > 0:
        return LONG
    if signed_qty < 0:
        return SHORT
    return FLAT


@dataclass(frozen=True, kw_only=True)
class VenuePosition:
    """A position the venue reports (one-way mode: one net position per instrument)."""

    instrument_id: str  # nautilus id, e.g. "BTCUSDT-PERP.BINANCE"
    signed_qty: Decimal  # > 0 long, < 0 short
    avg_px: Decimal  # the venue's entry price
    unrealized_pnl: Decimal = Decimal(0)

    @property
    def side(self) -> str:
        return side_of(self.signed_qty)

    @property
    def quantity(self) -> Decimal:
        return abs(self.signed_qty)


@dataclass(frozen=True, kw_only=True)
class VenueOpenOrder:
    """An order open at the venue: regular orders and conditional (algo) orders alike.

    `order_type` uses nautilus' names: a Binance TAKE_PROFIT_MARKET is "MARKET_IF_TOUCHED", a STOP_MARKET is
    "STOP_MARKET", a regular order "LIMIT"/"MARKET". For an algo order `venue_order_id` is the algoId (the id
    nautilus keeps for it until it triggers).
    """

    client_order_id: str
    venue_order_id: str
    instrument_id: str
    side: str  # "BUY" / "SELL"
    order_type: str
    quantity: Decimal  # 0 for a closePosition algo order (the venue gives it no quantity)
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    is_algo: bool = False


@dataclass(frozen=True, kw_only=True)
class VenueReconciliation:
    """One venue's result of startup reconciliation, as the node saw it."""

    venue: str  # the fleet.yaml venue name
    positions: list[VenuePosition]  # the venue's positions on this node's instruments
    open_orders: list[VenueOpenOrder]
    discrepancies: list[dict[str, Any]]  # supervisor.status.shapes.Discrepancy entries
    balances_before: dict[str, str]  # currency -> total, from the cache as loaded
    balances_after: dict[str, str]  # currency -> total, after connecting to the venue
    actions: list[dict[str, Any]] = field(default_factory=list)  # e.g. synthetic fills nautilus made

    def position(self, instrument_id: str) -> VenuePosition | None:
        for position in self.positions:
            if position.instrument_id == instrument_id:
                return position
        return None

    def orders_for(self, instrument_id: str) -> list[VenueOpenOrder]:
        return [order for order in self.open_orders if order.instrument_id == instrument_id]


@dataclass(frozen=True, kw_only=True)
class VenueFill:
    """One trade of one of the venue's orders, as reconciliation reports it to nautilus."""

    instrument_id: str
    venue_order_id: str
    client_order_id: str | None  # Binance's trades name only the venue's order id
    trade_id: str
    signed_qty: Decimal  # + a buy, - a sell


@dataclass(frozen=True, kw_only=True)
class VenueSnapshot:
    """What one reconciliation fetch found at the venue, and what the client did with it."""

    positions: list[VenuePosition]
    open_orders: list[VenueOpenOrder]
    symbols: list[str]  # venue symbols whose history was fetched
    requests: int
    seconds: float
    rekeyed: list[str] = field(default_factory=list)  # triggered stops re-keyed to the cached order
    rejected_inflight: list[str] = field(default_factory=list)  # cached in-flight orders the venue never saw
    not_reported: list[str] = field(default_factory=list)  # venue orders nautilus cannot represent
    # Cached orders the venue reports with less filled than the cache holds (withheld from nautilus).
    history_mismatches: list[dict[str, Any]] = field(default_factory=list)
    fills: list[VenueFill] = field(default_factory=list)  # every trade reported to nautilus
