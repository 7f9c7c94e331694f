"""Fills the cache holds on an order but not on its position: a kill -9 between nautilus' two writes.

nautilus applies a fill in two steps, each written to Redis at once: the order (`cache.update_order`), then
the position (open, update, or a flip's close and re-open). A node killed between them comes back with the
order filled and the position as it was before the fill, or with no position at all when the fill opened it (a
strategy's first order, found by `fleet drill`: every start then failed its post-check). Reconciliation then
finds the order report equal to the cache (nothing to apply) and the position off by the fill, and nautilus
invents a fill on an EXTERNAL order to close the gap (at a made-up price; for a reversal only its closing
half, measured on 1.231: the node then fails its post-check once).

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

from recovery.venue import VenueFill

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnappliedFill:
    order: Any  # nautilus Order
    fill: Any  # nautilus OrderFilled, as the order holds it
    # A reversal whose closing half reached the position and whose opening half did not (a kill between
    # nautilus' close-and-reopen writes): the quantity still to open. None: the whole fill is missing.
    open_half: Decimal | None = None

    @property
    def instrument_id(self) -> str:
        return str(self.fill.instrument_id)

    @property
    def signed_qty(self) -> Decimal:
        qty = self.open_half if self.open_half is not None else Decimal(str(self.fill.last_qty))
        return qty if self.fill.order_side.name == "BUY" else -qty

    def detail(self) -> dict[str, str]:
        detail = {
            "instrument": self.instrument_id,
            "client_order_id": self.fill.client_order_id.value,
            "trade_id": self.fill.trade_id.value,
            "position_id": self.fill.position_id.value,
            "fill": f"{self.fill.order_side.name} {self.fill.last_qty} @ {self.fill.last_px}",
        }
        if self.open_half is not None:
            detail["open_half"] = str(self.open_half)
        return detail


def unapplied_fills(
    orders: Iterable[Any], position_of: Callable[[Any], Any], last_activity: Callable[[Any], int]
) -> list[UnappliedFill]:
    """Fills recorded on an order after its position's last applied fill, in the order they happened.

    A fill is unapplied when its position does not hold its trade and the fill is newer than the position's
    last one (or, for a reversal, when the position holds only its closing half). At the same timestamp
    (trades of one order share the venue's transaction time) only fills listed after the position's last
    trade on the same order count, so that the closing trades of a reversal that swept several levels (kept
    in the previous lifecycle) are not taken for missing ones. A fill whose position the cache does not hold
    at all counts only when it is newer than anything the cache holds of its instrument (`last_activity`,
    ns): an older one may belong to a closed position the cache purged."""
    found: list[tuple[int, int, UnappliedFill]] = []
    for order in orders:
        fills = [e for e in order.events if isinstance(e, OrderFilled)]
        for index, fill in enumerate(fills):
            if fill.position_id is None:
                continue
            position = position_of(fill.position_id)
            if position is None:
                if fill.ts_event > last_activity(fill.instrument_id):
                    found.append((fill.ts_event, index, UnappliedFill(order=order, fill=fill)))
                continue
            if fill.trade_id in position.trade_ids:
                half = _missing_open_half(position, fill)
                if half is not None:
                    found.append(
                        (fill.ts_event, index, UnappliedFill(order=order, fill=fill, open_half=half))
                    )
                continue
            newer = fill.ts_event > position.ts_last
            same_time_after_last = fill.ts_event == position.ts_last and any(
                earlier.trade_id == position.last_trade_id for earlier in fills[:index]
            )
            if newer or same_time_after_last:
                found.append((fill.ts_event, index, UnappliedFill(order=order, fill=fill)))
    return [item for _, _, item in sorted(found, key=lambda entry: (entry[0], entry[1]))]


def _missing_open_half(position: Any, fill: Any) -> Decimal | None:
    """The opening half of a reversal fill the position lacks: the position holds the fill's trade only as
    the close of its last lifecycle (closed, by less than the fill's quantity, at the fill's time)."""
    if not position.is_closed or fill.ts_event < position.ts_last:
        return None
    applied = sum(
        (
            Decimal(str(e.last_qty))
            for e in position.events
            if isinstance(e, OrderFilled) and e.trade_id == fill.trade_id
        ),
        Decimal(0),
    )
    rest = Decimal(str(fill.last_qty)) - applied
    return rest if applied > 0 and rest > 0 else None


def completes_to_venue(
    unapplied: list[UnappliedFill],
    cached_net: dict[str, Decimal],
    venue_net: dict[str, Decimal],
    to_come: dict[str, Decimal] | None = None,
) -> bool:
    """Would applying every unapplied fill, then the venue's fills reconciliation brings (`to_come`, per
    instrument), make each affected instrument's cached net the venue's?"""
    after = dict(cached_net)
    for instrument, qty in (to_come or {}).items():
        after[instrument] = after.get(instrument, Decimal(0)) + qty
    for item in unapplied:
        after[item.instrument_id] = after.get(item.instrument_id, Decimal(0)) + item.signed_qty
    return bool(unapplied) and all(
        after.get(instrument, Decimal(0)) == venue_net.get(instrument, Decimal(0))
        for instrument in {item.instrument_id for item in unapplied}
    )


def fills_to_come(cache: Any, venue_fills: Iterable[VenueFill]) -> dict[str, Decimal]:
    """Per instrument, the venue's trades of orders the cache holds that those orders lack: nautilus applies
    them when it reconciles (a reversal that swept two levels, killed after its first trade was written to
    the order only: the second trade is still to come)."""
    from nautilus_trader.model.identifiers import ClientOrderId, VenueOrderId

    to_come: dict[str, Decimal] = {}
    for fill in venue_fills:
        cid = (
            ClientOrderId(fill.client_order_id)
            if fill.client_order_id is not None
            else cache.client_order_id(VenueOrderId(fill.venue_order_id))
        )
        order = cache.order(cid) if cid is not None else None
        if order is None or fill.trade_id in {t.value for t in order.trade_ids}:
            continue
        to_come[fill.instrument_id] = to_come.get(fill.instrument_id, Decimal(0)) + fill.signed_qty
    return to_come


def repair_positions(
    engine: Any, cache: Any, venue_net: dict[str, Decimal], venue_fills: Iterable[VenueFill] = ()
) -> list[dict[str, str]]:
    """Apply the unapplied fills through nautilus' engine when they, with the venue's fills still to come,
    complete the cache to the venue's positions; the details of what was applied (empty when nothing was, or
    when it would not match)."""
    latest: dict[str, int] = {}
    for position in cache.positions():
        key = str(position.instrument_id)
        latest[key] = max(latest.get(key, 0), int(position.ts_last))
    unapplied = unapplied_fills(cache.orders(), cache.position, lambda i: latest.get(str(i), 0))
    if not unapplied:
        return []
    cached_net: dict[str, Decimal] = {}
    for position in cache.positions_open():
        key = str(position.instrument_id)
        cached_net[key] = cached_net.get(key, Decimal(0)) + Decimal(str(position.signed_decimal_qty()))
    details = [item.detail() for item in unapplied]
    if not completes_to_venue(unapplied, cached_net, venue_net, fills_to_come(cache, venue_fills)):
        log.warning(
            "fills on orders but not on their positions do not explain the venue's positions; "
            "left to reconciliation: %s",
            details,
        )
        return []
    for item in unapplied:
        oms_type = engine._determine_oms_type(item.fill)
        if item.open_half is None:
            engine._handle_order_fill(item.order, item.fill, oms_type)
        else:
            # What nautilus' flip does after closing: open the new lifecycle with the rest of the fill.
            instrument = cache.instrument(item.fill.instrument_id)
            engine._open_position(instrument, None, _open_half_fill(item.fill, item.open_half), oms_type)
    # nautilus publishes the position events this causes with the next order event it handles (reconciliation
    # makes some; the node re-syncs its positions summary from the cache after reconciliation anyway).
    log.warning("applied fills the cache held on orders but not on their positions: %s", details)
    return details


def _open_half_fill(fill: Any, quantity: Decimal) -> Any:
    """The fill's opening part, as nautilus splits a reversal (same trade id, the rest of its commission)."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.objects import Money, Quantity

    share = quantity / Decimal(str(fill.last_qty))
    commission = Money(fill.commission.as_decimal() * share, fill.commission.currency)
    return OrderFilled(
        trader_id=fill.trader_id,
        strategy_id=fill.strategy_id,
        instrument_id=fill.instrument_id,
        client_order_id=fill.client_order_id,
        venue_order_id=fill.venue_order_id,
        account_id=fill.account_id,
        trade_id=fill.trade_id,
        position_id=fill.position_id,
        order_side=fill.order_side,
        order_type=fill.order_type,
        last_qty=Quantity(quantity, fill.last_qty.precision),
        last_px=fill.last_px,
        currency=fill.currency,
        commission=commission,
        liquidity_side=fill.liquidity_side,
        event_id=UUID4(),
        ts_event=fill.ts_event,
        ts_init=fill.ts_init,
    )
