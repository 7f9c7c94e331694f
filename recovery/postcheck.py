"""Did reconciliation make the cache equal the venue? Pure decisions over signed quantities per instrument.

Nautilus says "Reconciliation succeeded" in cases where the cached net differs from the venue (a duplicated
fill report, measured on 1.231), so the node always checks the result itself: for every instrument it
trades or holds, the cached net quantity after reconciliation must equal the venue's. What differed at load
time and how it ended is reported as discrepancies (supervisor.status.shapes.Discrepancy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from supervisor.status.shapes import Discrepancy, DiscrepancyKind

ZERO = Decimal(0)

# How a discrepancy was resolved.
RESOLVED_BY_FILLS = "fills_applied"  # the venue's fills (missed while down) explain the difference
RESOLVED_BY_SYNTHETIC_FILL = "synthetic_fill"  # nautilus had to invent an order to align the position
RESOLVED_BY_ADOPTION = "adopted_venue"  # lost cache: the venue's position adopted by the claiming strategy
LEFT_EXTERNAL = "external_unclaimed"  # aligned, but owned by no strategy (no external_order_claims for it)
UNRESOLVED = "unresolved"
DIVERGED = "diverged_in_reconciliation"  # matched at load, differs after: reconciliation made it worse
REPAIRED_FROM_ORDERS = "order_fills_applied"  # the cache's own order fills, missing on the position
KEPT_CACHE = "kept_cache"  # an order's venue history is shorter than the cache's; the positions agree


@dataclass(frozen=True)
class Mismatch:
    """After reconciliation the cache still differs from the venue: recovery fails with this diff."""

    instrument: str
    cached_qty: Decimal
    venue_qty: Decimal

    def as_dict(self) -> dict[str, str]:
        return {
            "instrument": self.instrument,
            "cached_qty": str(self.cached_qty),
            "venue_qty": str(self.venue_qty),
        }

    def __str__(self) -> str:
        return f"{self.instrument}: cached {self.cached_qty}, venue {self.venue_qty}"


def net_by_instrument(positions: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Sum signed quantities per instrument (several strategies may hold one instrument)."""
    net: dict[str, Decimal] = {}
    for instrument, qty in positions:
        net[instrument] = net.get(instrument, ZERO) + qty
    return {k: v for k, v in net.items() if v != ZERO}


def classify(cached: Decimal, venue: Decimal) -> DiscrepancyKind | None:
    if cached == venue:
        return None
    if cached == ZERO:
        return DiscrepancyKind.MISSING_IN_CACHE
    if venue == ZERO:
        return DiscrepancyKind.MISSING_AT_VENUE
    if (cached > ZERO) != (venue > ZERO):
        return DiscrepancyKind.SIDE
    return DiscrepancyKind.QUANTITY


def mismatches(after: Mapping[str, Decimal], venue: Mapping[str, Decimal]) -> list[Mismatch]:
    """Every instrument whose cached net differs from the venue's after reconciliation."""
    return [
        Mismatch(instrument, after.get(instrument, ZERO), venue.get(instrument, ZERO))
        for instrument in sorted(set(after) | set(venue))
        if after.get(instrument, ZERO) != venue.get(instrument, ZERO)
    ]


def discrepancies(
    *,
    venue_name: str,
    before: Mapping[str, Decimal],
    venue: Mapping[str, Decimal],
    after: Mapping[str, Decimal],
    after_external: Mapping[str, Decimal],
    synthetic: Iterable[str] = (),
    lost_cache: bool = False,
    repaired: Iterable[str] = (),
) -> list[Discrepancy]:
    """What differed between the cache as loaded (`before`) and the venue, and how it ended (`after`: the
    cached net after reconciliation; `after_external`: the part of it no strategy owns; `synthetic`:
    instruments nautilus invented orders for; `repaired`: instruments whose position got fills its own
    orders held, recovery.cache_repair). An instrument that matched at load but not after (a
    reconciliation that made things worse) is reported too, with the cached quantity after it."""
    synthetic_set = set(synthetic)
    repaired_set = set(repaired)
    found: list[Discrepancy] = []
    for instrument in sorted(set(before) | set(venue) | set(after)):
        cached_qty = before.get(instrument, ZERO)
        venue_qty = venue.get(instrument, ZERO)
        after_qty = after.get(instrument, ZERO)
        kind = classify(cached_qty, venue_qty)
        diverged = kind is None
        if diverged:
            if after_qty == venue_qty:
                continue
            # Matched at load, differs after: report what the cache holds now.
            kind, cached_qty = classify(after_qty, venue_qty), after_qty
            assert kind is not None
        owned = after_qty - after_external.get(instrument, ZERO)
        if diverged:
            resolved, resolution = False, DIVERGED
        elif after_qty != venue_qty:
            resolved, resolution = False, UNRESOLVED
        elif owned != venue_qty:
            resolved, resolution = False, LEFT_EXTERNAL
        elif instrument in synthetic_set:
            resolved, resolution = True, RESOLVED_BY_SYNTHETIC_FILL
        elif instrument in repaired_set:
            resolved, resolution = True, REPAIRED_FROM_ORDERS
        elif lost_cache and cached_qty == ZERO:
            resolved, resolution = True, RESOLVED_BY_ADOPTION
        else:
            resolved, resolution = True, RESOLVED_BY_FILLS
        found.append(
            Discrepancy(
                venue=venue_name,
                instrument=instrument,
                kind=str(kind),
                cached_qty=str(cached_qty),
                venue_qty=str(venue_qty),
                resolved=resolved,
                resolution=resolution,
            )
        )
    return found


def order_history_discrepancies(
    *, venue_name: str, withheld: Iterable[Mapping[str, object]], mismatched: Iterable[Mismatch]
) -> list[Discrepancy]:
    """Orders the venue reports with less filled than the cache holds (withheld from nautilus, which would
    refuse the whole reconciliation for them). Resolved when the instrument's position agrees with the venue:
    exposure is what the node must get right; the order's own record keeps the cache's fills. `cached_qty` and
    `venue_qty` are the order's filled quantities here."""
    wrong = {m.instrument for m in mismatched}
    found: list[Discrepancy] = []
    for entry in withheld:
        instrument = str(entry["instrument"])
        resolved = instrument not in wrong
        found.append(
            Discrepancy(
                venue=venue_name,
                instrument=instrument,
                kind=str(DiscrepancyKind.ORDER_HISTORY),
                cached_qty=str(entry["cached_filled"]),
                venue_qty=str(entry["venue_filled"]),
                resolved=resolved,
                resolution=KEPT_CACHE if resolved else UNRESOLVED,
                client_order_id=str(entry["client_order_id"]),
                venue_order_id=str(entry["venue_order_id"]),
            )
        )
    return found
