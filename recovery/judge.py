"""Judging a reconciliation: what the venue holds, what the cache holds now and held at load, and whether they
agree. Reads nautilus' cache and reports; decides through the pure functions of postcheck.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from recovery import cache_view, postcheck
from recovery.venue import VenueOpenOrder, VenuePosition, VenueReconciliation, VenueSnapshot

log = logging.getLogger(__name__)

_OPEN_STATUSES = frozenset({"ACCEPTED", "TRIGGERED", "PARTIALLY_FILLED", "PENDING_UPDATE", "PENDING_CANCEL"})


@dataclass(frozen=True)
class Judgement:
    reconciliation: VenueReconciliation  # what the strategies get (hub.reconciliation[venue])
    detail: dict[str, Any]  # the `reconciled` phase detail
    mismatches: list[postcheck.Mismatch]  # non-empty: the cache still differs from the venue
    lost_cache: bool


def judge(
    *,
    venue_name: str,
    cache: Any,
    account_id: Any,
    summary: cache_view.CacheSummary,
    positions: list[VenuePosition],
    open_orders: list[VenueOpenOrder],
    in_scope: Callable[[str], bool],
    fills: Iterable[Any],
    snapshot: VenueSnapshot | None,
    repaired: list[dict[str, str]] | None = None,
) -> Judgement:
    """`positions`/`open_orders`: the venue's (on this node's instruments); `fills`: the OrderFilled events
    reconciliation generated; `summary`: the cache as loaded."""
    fills = list(fills)
    venue_net = {p.instrument_id: p.signed_qty for p in positions}
    before = {k: v for k, v in summary.net.items() if in_scope(k)}
    after = {k: v for k, v in cache_view.net_positions(cache, account_id).items() if in_scope(k)}
    after_external = cache_view.net_positions(cache, account_id, external_only=True)
    synthetic = synthetic_fill_actions(fills, cache, venue_name)
    lost_cache = summary.empty and bool(venue_net or open_orders)
    discrepancies = [
        dict(d)
        for d in postcheck.discrepancies(
            venue_name=venue_name,
            before=before,
            venue=venue_net,
            after=after,
            after_external=after_external,
            synthetic=[a["instrument"] for a in synthetic],
            lost_cache=lost_cache,
            repaired=[r["instrument"] for r in repaired or ()],
        )
    ]
    mismatches = postcheck.mismatches(after, venue_net)
    if snapshot is not None and snapshot.history_mismatches:
        discrepancies.extend(
            dict(d)
            for d in postcheck.order_history_discrepancies(
                venue_name=venue_name, withheld=snapshot.history_mismatches, mismatched=mismatches
            )
        )
    balances_after = cache_view.balances(cache, account_id)
    reconciliation = VenueReconciliation(
        venue=venue_name,
        positions=positions,
        open_orders=open_orders,
        discrepancies=discrepancies,
        balances_before=summary.balances,
        balances_after=balances_after,
        actions=synthetic,
    )
    unresolved = bool(mismatches) or any(not d["resolved"] for d in discrepancies)
    detail: dict[str, Any] = {
        "venue": venue_name,
        "result": "unresolved" if unresolved else ("resolved" if discrepancies else "matched"),
        "positions": [
            {"instrument": p.instrument_id, "side": p.side, "quantity": str(p.quantity)} for p in positions
        ],
        "discrepancies": discrepancies,
        "open_orders": len(open_orders),
        "balances_before": summary.balances,
        "balances_after": balances_after,
        "lost_cache": lost_cache,
        "missed_fills": sum(1 for f in fills if not is_synthetic_trade(f)),
    }
    if synthetic:
        detail["actions"] = synthetic
    if repaired:
        detail["repaired_fills"] = repaired
    if snapshot is not None:
        detail.update(
            requests=snapshot.requests,
            fetch_ms=round(snapshot.seconds * 1000, 1),
            symbols=len(snapshot.symbols),
            rekeyed=snapshot.rekeyed,
            rejected_inflight=snapshot.rejected_inflight,
            not_reported=snapshot.not_reported,
            history_mismatches=snapshot.history_mismatches,
        )
    _log(lost_cache, positions, open_orders, discrepancies)
    return Judgement(
        reconciliation=reconciliation, detail=detail, mismatches=mismatches, lost_cache=lost_cache
    )


def venue_view_from_reports(
    mass_status: Any, in_scope: Callable[[str], bool]
) -> tuple[list[VenuePosition], list[VenueOpenOrder]]:
    """The venue's positions and open orders from a mass status (the stock client keeps no snapshot)."""
    from nautilus_trader.model.enums import order_side_to_str, order_status_to_str, order_type_to_str

    positions = []
    for instrument_id, reports in mass_status.position_reports.items():
        qty = sum((Decimal(str(r.signed_decimal_qty)) for r in reports), Decimal(0))
        if qty != 0 and in_scope(str(instrument_id)):
            avg = reports[-1].avg_px_open
            positions.append(
                VenuePosition(instrument_id=str(instrument_id), signed_qty=qty, avg_px=Decimal(str(avg or 0)))
            )
    orders = [
        VenueOpenOrder(
            client_order_id=r.client_order_id.value if r.client_order_id else "",
            venue_order_id=r.venue_order_id.value,
            instrument_id=str(r.instrument_id),
            side=order_side_to_str(r.order_side),
            order_type=order_type_to_str(r.order_type),
            quantity=Decimal(str(r.quantity)) - Decimal(str(r.filled_qty)),
            trigger_price=Decimal(str(r.trigger_price)) if r.trigger_price is not None else None,
            reduce_only=bool(r.reduce_only),
        )
        for r in mass_status.order_reports.values()
        if order_status_to_str(r.order_status) in _OPEN_STATUSES and in_scope(str(r.instrument_id))
    ]
    return positions, orders


def is_synthetic_trade(fill: Any) -> bool:
    """Venue trade ids are numbers; the trades nautilus infers during reconciliation are not."""
    return not fill.trade_id.value.isdigit()


def synthetic_fill_actions(fills: Iterable[Any], cache: Any, venue_name: str) -> list[dict[str, Any]]:
    """A `synthetic_fill` action for each fill nautilus invented (no venue trade behind it)."""
    actions = []
    for fill in fills:
        if not is_synthetic_trade(fill):
            continue
        order = cache.order(fill.client_order_id)
        actions.append(
            {
                "action": "synthetic_fill",
                "venue": venue_name,
                "instrument": str(fill.instrument_id),
                "client_order_id": fill.client_order_id.value,
                "order_type": str(order.order_type.name) if order is not None else "",
                "detail": f"{fill.order_side.name} {fill.last_qty} @ {fill.last_px} (trade {fill.trade_id})",
            }
        )
    return actions


def _log(
    lost_cache: bool,
    positions: list[VenuePosition],
    open_orders: list[VenueOpenOrder],
    found: list[dict[str, Any]],
) -> None:
    if lost_cache:
        log.warning(
            "the cache is empty but the venue is not: %d positions, %d open orders on this node's "
            "instruments; instruments a strategy claims are adopted, others stay EXTERNAL",
            len(positions),
            len(open_orders),
        )
    for d in found:
        log.warning(
            "discrepancy %s %s: cached %s, venue %s -> %s",
            d["kind"],
            d["instrument"],
            d.get("cached_qty"),
            d.get("venue_qty"),
            d.get("resolution"),
        )
