"""The venue's truth from the emulator, for tests to compare with a trader's cache; the cache itself is read
by the product's reader (`recovery.drill.cache_reader`, re-exported here with its value types)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from emulator.testing import EmulatorProcess
from recovery.drill.cache_reader import read_cache
from recovery.drill.values import (
    SYNTHETIC_STRATEGIES,
    SYNTHETIC_TAGS,
    CachedFill,
    CachedOrder,
    CachedPosition,
    CachedState,
)

__all__ = [
    "SYNTHETIC_STRATEGIES",
    "SYNTHETIC_TAGS",
    "CachedFill",
    "CachedOrder",
    "CachedPosition",
    "CachedState",
    "VenuePositionTruth",
    "read_cache",
    "venue_positions",
    "venue_realized",
    "venue_wallet",
]


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
