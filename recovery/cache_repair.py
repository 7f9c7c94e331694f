"""Fills the cache holds on an order but not on its position: a kill -9 between nautilus' two writes.

nautilus applies a fill in two steps, each written to Redis at once: the order (`cache.update_order`), then
the position (open, update, or a flip's close and re-open). A node killed between them comes back with the
order filled and the position as it was before the fill. Reconciliation then finds the order report equal to
the cache (nothing to apply) and the position off by the fill, and nautilus invents a fill on an EXTERNAL
order to close the gap (at a made-up price; for a reversal only its closing half, measured on 1.231: the node
then fails its post-check once).

Before nautilus reconciles, the node finds such fills (newer than the position's last applied fill, absent
from it) and, only when applying them makes every affected instrument's cached net equal to the venue's
position just fetched, applies them through nautilus' own fill handling: the position gets the real trade,
price and commission. Anything else is left to nautilus' reconciliation and the node's post-check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nautilus_trader.model.events import OrderFilled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnappliedFill:
    order: Any  # nautilus Order
    fill: Any  # nautilus OrderFilled, as the order holds it

    @property
    def instrument_id(self) -> str:
        return str(self.fill.instrument_id)

    @property
    def signed_qty(self) -> Decimal:
        qty = Decimal(str(self.fill.last_qty))
        return qty if self.fill.order_side.name == "BUY" else -qty

    def detail(self) -> dict[str, str]:
        return {
            "instrument": self.instrument_id,
            "client_order_id": self.fill.client_order_id.value,
            "trade_id": self.fill.trade_id.value,
            "position_id": self.fill.position_id.value,
            "fill": f"{self.fill.order_side.name} {self.fill.last_qty} @ {self.fill.last_px}",
        }


def unapplied_fills(orders: Iterable[Any], position_of: Callable[[Any], Any]) -> list[UnappliedFill]:
    """Fills recorded on an order after its position's last applied fill, in the order they happened.

    A fill is unapplied when its position exists, does not hold its trade, and the fill is newer than the
    position's last one; at the same timestamp (trades of one order share the venue's transaction time) only
    fills listed after the position's last trade on the same order count, so that the closing trades of a
    reversal that swept several levels (kept in the previous lifecycle) are not taken for missing ones."""
    found: list[tuple[int, int, UnappliedFill]] = []
    for order in orders:
        fills = [e for e in order.events if isinstance(e, OrderFilled)]
        for index, fill in enumerate(fills):
            if fill.position_id is None:
                continue
            position = position_of(fill.position_id)
            if position is None or fill.trade_id in position.trade_ids:
                continue
            newer = fill.ts_event > position.ts_last
            same_time_after_last = fill.ts_event == position.ts_last and any(
                earlier.trade_id == position.last_trade_id for earlier in fills[:index]
            )
            if newer or same_time_after_last:
                found.append((fill.ts_event, index, UnappliedFill(order=order, fill=fill)))
    return [item for _, _, item in sorted(found, key=lambda entry: (entry[0], entry[1]))]


def completes_to_venue(
    unapplied: list[UnappliedFill], cached_net: dict[str, Decimal], venue_net: dict[str, Decimal]
) -> bool:
    """Would applying every unapplied fill make each affected instrument's cached net the venue's?"""
    after = dict(cached_net)
    for item in unapplied:
        after[item.instrument_id] = after.get(item.instrument_id, Decimal(0)) + item.signed_qty
    return bool(unapplied) and all(
        after.get(instrument, Decimal(0)) == venue_net.get(instrument, Decimal(0))
        for instrument in {item.instrument_id for item in unapplied}
    )


def repair_positions(engine: Any, cache: Any, venue_net: dict[str, Decimal]) -> list[dict[str, str]]:
    """Apply the unapplied fills through nautilus' engine when they complete the cache to the venue's
    positions; the details of what was applied (empty when nothing was, or when it would not match)."""
    unapplied = unapplied_fills(cache.orders(), cache.position)
    if not unapplied:
        return []
    cached_net: dict[str, Decimal] = {}
    for position in cache.positions_open():
        key = str(position.instrument_id)
        cached_net[key] = cached_net.get(key, Decimal(0)) + Decimal(str(position.signed_decimal_qty()))
    details = [item.detail() for item in unapplied]
    if not completes_to_venue(unapplied, cached_net, venue_net):
        log.warning(
            "fills on orders but not on their positions do not explain the venue's positions; "
            "left to reconciliation: %s",
            details,
        )
        return []
    for item in unapplied:
        engine._handle_order_fill(item.order, item.fill, engine._determine_oms_type(item.fill))
    log.warning("applied fills the cache held on orders but not on their positions: %s", details)
    return details
