"""nautilus' partial-window fill adjustment, only for instruments the cache knows nothing about.

nautilus 1.231 (`LiveExecutionEngine._adjust_mass_status_fills`, in Rust
`process_mass_status_for_reconciliation`) rebuilds each instrument's reported orders and fills from the
venue's trade list alone, as if nothing were cached: it replays the fills into a position, splits that history
into lifecycles where it crosses zero, and when its replay of the current lifecycle does not end at the
venue's position, it drops every report of the instrument and reports one synthetic fill of the venue's
quantity on that lifecycle's first order.

The replay orders fills by timestamp, and the venue gives every trade of one order the same transaction time.
A reversal that swept two price levels (a close and an open in one millisecond) ends a lifecycle at a time its
own open half does not come after; the next reversal then "starts" a lifecycle that cannot add up, so it is
reported as filled by the venue's position quantity (0.010) instead of its real fill (0.020). The cached order
holds the real fill, nautilus refuses the report ("report.filled_qty 0.010 < order.filled_qty 0.020") and the
node can never start again (issue 12).

The adjustment exists for a reconciliation window that begins in the middle of a position's life with nothing
cached. When the cache holds the instrument's orders it is the base: the venue's reports are applied to it by
trade id, and whatever still differs is settled by nautilus' position reconciliation and checked by the node's
own post-check. So the adjustment runs only for instruments of which the cache holds no order and no position
(a lost cache, an instrument traded for the first time by someone else).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def cache_knows(cache: Any, instrument_id: Any) -> bool:
    """Does the cache hold any order or position of this instrument (its history is the base)?"""
    return bool(cache.orders(instrument_id=instrument_id) or cache.positions(instrument_id=instrument_id))


def limit_fill_adjustment(engine: Any, knows: Callable[[Any], bool]) -> None:
    """Make `engine` (a nautilus LiveExecutionEngine) adjust fills only for instruments `knows` is false for.

    The engine picks the instruments to adjust from the mass status' position reports; those of known
    instruments are hidden from it for the duration of the call and put back unchanged afterwards."""
    adjust = engine._adjust_mass_status_fills

    def adjust_unknown_only(mass_status: Any) -> None:
        reports: dict[Any, Any] = mass_status._position_reports
        known = [instrument_id for instrument_id in reports if knows(instrument_id)]
        if known:
            log.info(
                "fill adjustment for a partial history skipped for %s: the cache holds their history",
                ", ".join(sorted(str(i) for i in known)),
            )
        mass_status._position_reports = {k: v for k, v in reports.items() if k not in known}
        try:
            adjust(mass_status)
        finally:
            mass_status._position_reports = reports

    engine._adjust_mass_status_fills = adjust_unknown_only
