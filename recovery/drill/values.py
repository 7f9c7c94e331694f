"""The values the drill compares: a trader's cache as plain data (read by `cache_reader`, which needs
nautilus; these types do not, so the checks and their tests stay light)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# How reconciliation marks what it invented (nautilus 1.231; 1.221 used INTERNAL-DIFF / INTERNAL / EXTERNAL).
SYNTHETIC_STRATEGIES = {"EXTERNAL", "INTERNAL-DIFF"}
SYNTHETIC_TAGS = {"RECONCILIATION", "VENUE", "INTERNAL", "EXTERNAL"}


@dataclass(frozen=True)
class CachedFill:
    trade_id: str
    qty: Decimal
    px: Decimal
    reconciliation: bool


@dataclass(frozen=True)
class CachedOrder:
    client_order_id: str
    strategy_id: str
    status: str
    order_type: str
    venue_order_id: str | None
    tags: tuple[str, ...]
    fills: tuple[CachedFill, ...]
    avg_px: Decimal | None
    instrument_id: str = ""

    @property
    def synthetic_reasons(self) -> list[str]:
        reasons = []
        if self.strategy_id in SYNTHETIC_STRATEGIES:
            reasons.append(f"strategy {self.strategy_id}")
        if set(self.tags) & SYNTHETIC_TAGS:
            reasons.append(f"tags {self.tags}")
        if self.venue_order_id and self.venue_order_id.startswith("S-"):
            reasons.append(f"venue id {self.venue_order_id}")
        reasons.extend(
            f"inferred fill {f.trade_id}" for f in self.fills if f.reconciliation and not f.trade_id.isdigit()
        )
        return reasons


@dataclass(frozen=True)
class CachedPosition:
    position_id: str
    instrument_id: str
    strategy_id: str
    side: str
    signed_qty: Decimal
    avg_px_open: Decimal
    realized_pnl: Decimal
    is_open: bool


@dataclass(frozen=True)
class CachedState:
    orders: dict[str, CachedOrder]
    positions: list[CachedPosition]
    balances: dict[str, Decimal]

    def synthetic_orders(self) -> dict[str, list[str]]:
        return {cid: o.synthetic_reasons for cid, o in self.orders.items() if o.synthetic_reasons}

    def open_positions(self) -> list[CachedPosition]:
        return [p for p in self.positions if p.is_open]

    def net(self) -> dict[str, Decimal]:
        net: dict[str, Decimal] = {}
        for p in self.open_positions():
            net[p.instrument_id] = net.get(p.instrument_id, Decimal(0)) + p.signed_qty
        return {k: v for k, v in net.items() if v != 0}
