"""Which missed fills to hand to the strategy, and in what order (pure).

A fill that happened while the node was down reaches the cache through reconciliation: an `OrderFilled` with
`reconciliation=True`, which nautilus persists with the order. Reconciliation runs before the strategy starts,
so nautilus never calls `on_order_filled` for it. Deriving the missed fills from the cache (rather than
capturing events during startup) survives a crash between reconciliation and delivery: the next start finds
them again. A persisted delivered-set (`recovery.state`, same record as the strategy state) makes delivery
happen once.

Venue order is (event time, trade id); Binance trade ids grow per symbol, ids that are not numbers (inferred
fills) sort after numeric ones at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FillRecord[T]:
    instrument_id: str
    trade_id: str
    ts_event: int
    reconciliation: bool
    payload: T

    @property
    def key(self) -> str:
        return delivery_key(self.instrument_id, self.trade_id)


def delivery_key(instrument_id: str, trade_id: str) -> str:
    # Trade ids are unique per symbol at Binance, not across symbols.
    return f"{instrument_id}:{trade_id}"


def venue_sort_key(record: FillRecord[object]) -> tuple[int, int, int, str]:
    trade_id = record.trade_id
    if trade_id.isdigit():
        return (record.ts_event, 0, int(trade_id), record.instrument_id)
    return (record.ts_event, 1, 0, f"{trade_id}\x00{record.instrument_id}")


def pending_missed[T](fills: Iterable[FillRecord[T]], delivered: AbstractSet[str]) -> list[FillRecord[T]]:
    """Reconciliation fills not yet delivered, each once, in venue order."""
    pending: dict[str, FillRecord[T]] = {}
    for record in fills:
        if record.reconciliation and record.key not in delivered:
            pending.setdefault(record.key, record)
    return sorted(pending.values(), key=venue_sort_key)


def prune_delivered(delivered: AbstractSet[str], fills: Iterable[FillRecord[object]]) -> frozenset[str]:
    """Keep only keys whose fill is still in the cache, so the set does not grow without bound."""
    present = {record.key for record in fills if record.reconciliation}
    return frozenset(delivered & present)
