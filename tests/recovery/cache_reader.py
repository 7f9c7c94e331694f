"""Read a trader's nautilus cache straight from Redis (independently of the node) as plain values, and the
venue's truth from the emulator, so tests compare the two."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec
from nautilus_trader.cache.cache import Cache
from nautilus_trader.cache.database import CacheDatabaseAdapter
from nautilus_trader.config import CacheConfig, DatabaseConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.serialization.serializer import MsgSpecSerializer

from emulator.testing import EmulatorProcess

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


def read_cache(trader_id: str, *, host: str = "127.0.0.1", port: int = 6379) -> CachedState:
    config = CacheConfig(
        database=DatabaseConfig(host=host, port=port, connection_timeout=2, response_timeout=2)
    )
    serializer = MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True)
    db = CacheDatabaseAdapter(TraderId(trader_id), UUID4(), serializer, config)
    try:
        cache = Cache(database=db, config=config)
        cache.cache_general()
        cache.cache_currencies()
        cache.cache_instruments()
        cache.cache_accounts()
        cache.cache_orders()
        cache.cache_positions()
        cache.build_index()
        orders = {}
        for order in cache.orders():
            fills = tuple(
                CachedFill(
                    trade_id=e.trade_id.value,
                    qty=Decimal(str(e.last_qty)),
                    px=Decimal(str(e.last_px)),
                    reconciliation=bool(e.reconciliation),
                )
                for e in order.events
                if isinstance(e, OrderFilled)
            )
            orders[order.client_order_id.value] = CachedOrder(
                client_order_id=order.client_order_id.value,
                strategy_id=order.strategy_id.value,
                status=order.status_string(),
                order_type=order.type_string(),
                venue_order_id=order.venue_order_id.value if order.venue_order_id else None,
                tags=tuple(order.tags or ()),
                fills=fills,
                avg_px=Decimal(str(order.avg_px)) if order.avg_px else None,
            )
        positions = [
            CachedPosition(
                position_id=p.id.value,
                instrument_id=str(p.instrument_id),
                strategy_id=p.strategy_id.value,
                side=p.side_string() if hasattr(p, "side_string") else p.side.name,
                signed_qty=Decimal(str(p.signed_decimal_qty())),
                avg_px_open=Decimal(str(p.avg_px_open)),
                realized_pnl=Decimal(str(p.realized_pnl.as_decimal()))
                if p.realized_pnl is not None
                else Decimal(0),
                is_open=bool(p.is_open),
            )
            for p in cache.positions()
        ]
        balances: dict[str, Decimal] = {}
        for account in cache.accounts():
            for currency, money in account.balances_total().items():
                balances[str(currency)] = Decimal(str(money.as_decimal()))
        return CachedState(orders=orders, positions=positions, balances=balances)
    finally:
        db.close()


@dataclass(frozen=True)
class VenuePositionTruth:
    symbol: str
    signed_qty: Decimal
    entry_price: Decimal


async def venue_positions(venue: EmulatorProcess, account: str = "main") -> dict[str, VenuePositionTruth]:
    """Non-flat positions at the venue by nautilus instrument id."""
    state = await venue.admin.state()
    found = {}
    for symbol, row in state["accounts"][account]["positions"].items():
        qty = Decimal(str(row["amount"]))
        if qty != 0:
            found[f"{symbol}-PERP.BINANCE"] = VenuePositionTruth(
                symbol=symbol, signed_qty=qty, entry_price=Decimal(str(row["entry_price"]))
            )
    return found


async def venue_wallet(venue: EmulatorProcess, account: str = "main") -> Decimal:
    state = await venue.admin.state()
    return Decimal(str(state["accounts"][account]["wallet"]))


async def venue_realized(venue: EmulatorProcess, symbol: str, since_trade_id: int = 0) -> Decimal:
    """The venue's realized PnL net of commissions over the account's trades in `symbol` (what nautilus
    books as a position's realized PnL: Binance's realizedPnl excludes commissions)."""
    total = Decimal(0)
    for trade in await venue.admin.trades(symbol):
        if int(trade["id"]) <= since_trade_id:
            continue
        total += Decimal(str(trade["realizedPnl"])) - Decimal(str(trade["commission"]))
    return total
