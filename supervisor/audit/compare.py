"""The exact difference between what a node holds and what the venue holds, and what changed at the venue
while a node was down. Pure functions of plain values: table-tested, no I/O.

A position entry: `{"venue", "what": "position", "instrument", "kind", "node": {"side", "quantity"},
"venue_holds": {"side", "quantity"}}`, `kind` one of `quantity`, `side`, `missing_in_node`,
`missing_at_venue` (the recovery report's discrepancy kinds, seen from the node).
An order entry: `{"venue", "what": "protective_order", "instrument", "client_order_id", "kind", "node",
"venue_holds", "fields"?}`, `kind` one of `missing_at_venue` (the node counts on a stop the venue does not
have), `unknown_to_node` (the venue holds a stop the node does not know of), `differs` (both have it; `fields`
lists what differs: type, side, quantity, trigger_price).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from supervisor.audit.holdings import ConditionalOrder, Holdings
from supervisor.audit.venue_view import VenueView, venue_symbol

_ZERO = Decimal(0)
_ORDER_FIELDS = ("order_type", "side", "quantity", "trigger_price")
_FIELD_NAMES = {"order_type": "type"}


def side_and_quantity(amount: Decimal) -> dict[str, str]:
    side = "LONG" if amount > 0 else "SHORT" if amount < 0 else "FLAT"
    return {"side": side, "quantity": str(abs(amount))}


def position_kind(node: Decimal, venue: Decimal) -> str | None:
    """How two signed net quantities differ (None: they are equal)."""
    if node == venue:
        return None
    if node == _ZERO:
        return "missing_in_node"
    if venue == _ZERO:
        return "missing_at_venue"
    if (node > 0) != (venue > 0):
        return "side"
    return "quantity"


def compare(
    venue_name: str, node: Holdings, venue: VenueView, instruments: Sequence[str]
) -> list[dict[str, Any]]:
    """Every difference on `instruments` (nautilus ids) between the node's holdings and the venue's view
    (keyed by venue symbol), positions first, each group sorted; empty when they match exactly."""
    by_symbol = {venue_symbol(i): i for i in instruments}
    diff: list[dict[str, Any]] = []
    for instrument in sorted(instruments):
        held = node.positions.get(instrument, _ZERO)
        there = venue.positions.get(venue_symbol(instrument), _ZERO)
        kind = position_kind(held, there)
        if kind is not None:
            diff.append(
                {
                    "venue": venue_name,
                    "what": "position",
                    "instrument": instrument,
                    "kind": kind,
                    "node": side_and_quantity(held),
                    "venue_holds": side_and_quantity(there),
                }
            )
    venue_orders = {
        cid: _renamed(order, by_symbol[order.instrument])
        for cid, order in venue.orders.items()
        if order.instrument in by_symbol
    }
    node_orders = {cid: o for cid, o in node.orders.items() if o.instrument in set(instruments)}
    for cid in sorted(set(node_orders) | set(venue_orders)):
        mine, theirs = node_orders.get(cid), venue_orders.get(cid)
        entry: dict[str, Any] = {
            "venue": venue_name,
            "what": "protective_order",
            "instrument": (mine or theirs).instrument,  # type: ignore[union-attr]
            "client_order_id": cid,
            "node": mine.to_json() if mine else None,
            "venue_holds": theirs.to_json() if theirs else None,
        }
        if mine is None:
            diff.append({**entry, "kind": "unknown_to_node"})
        elif theirs is None:
            diff.append({**entry, "kind": "missing_at_venue"})
        elif fields := order_differences(mine, theirs):
            diff.append({**entry, "kind": "differs", "fields": fields})
    return diff


def order_differences(node: ConditionalOrder, venue: ConditionalOrder) -> list[str]:
    """The fields in which two views of one order differ. A venue order that closes the whole position
    (`closePosition`, no quantity) matches any quantity."""
    fields = []
    for name in _ORDER_FIELDS:
        mine, theirs = getattr(node, name), getattr(venue, name)
        if name == "quantity" and theirs is None:
            continue
        if mine != theirs:
            fields.append(_FIELD_NAMES.get(name, name))
    return fields


def _renamed(order: ConditionalOrder, instrument: str) -> ConditionalOrder:
    return ConditionalOrder(
        client_order_id=order.client_order_id,
        instrument=instrument,
        order_type=order.order_type,
        side=order.side,
        quantity=order.quantity,
        trigger_price=order.trigger_price,
    )


def downtime_changes(
    venue_name: str,
    before: VenueView,
    after: VenueView,
    instruments: Sequence[str],
    node_balances: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What changed at the venue between the audit at crash detection (`before`) and the audit after READY
    (`after`): positions on `instruments` that moved, and every currency's wallet balance, next to the
    node's own explanation of that currency's change (its `orders_restored` phase: `explained` by the fills
    it missed, `unexplained` the rest)."""
    positions = []
    for instrument in sorted(instruments):
        symbol = venue_symbol(instrument)
        was, now = before.positions.get(symbol, _ZERO), after.positions.get(symbol, _ZERO)
        if was != now:
            positions.append(
                {"instrument": instrument, "before": side_and_quantity(was), "after": side_and_quantity(now)}
            )
    explained = {str(b.get("currency")): b for b in node_balances if b.get("venue") in (None, venue_name)}
    balances = []
    old, new = before.balances or {}, after.balances or {}
    for currency in sorted(set(old) | set(new)):
        was_b, now_b = old.get(currency), new.get(currency)
        line: dict[str, Any] = {
            "currency": currency,
            "before": None if was_b is None else str(was_b),
            "after": None if now_b is None else str(now_b),
            "change": None if was_b is None or now_b is None else format(now_b - was_b, "f"),
        }
        node_line = explained.get(currency)
        if node_line is not None:
            line["node_explained"] = node_line.get("explained")
            line["node_unexplained"] = node_line.get("unexplained")
        balances.append(line)
    return {"venue": venue_name, "positions": positions, "balances": balances}
