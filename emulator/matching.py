"""Matching rules as pure functions of prices.

By default the book is one level deep with no spread: every order trades against unlimited liquidity at the
last price. With a level size set for a symbol (`sweep`), each price level holds that much: a taker order
walks the book one tick at a time and fills in several trades in one transaction time, as a real market order
does.
- MARKET fills at the last price (taker).
- LIMIT crosses when a buy's limit is at or above the last price (a sell's at or below): it fills at the
  last price as taker; otherwise it rests and fills at its own limit (maker) once the last price reaches it.
- Conditional orders trigger on the last price (CONTRACT_PRICE) or the mark price (MARK_PRICE):
  STOP / STOP_MARKET buy at or above the trigger, sell at or below; TAKE_PROFIT(_MARKET) the other way.
"""

from __future__ import annotations

from decimal import Decimal

STOP_TYPES = frozenset({"STOP", "STOP_MARKET"})
TAKE_PROFIT_TYPES = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_MARKET"})
CONDITIONAL_TYPES = STOP_TYPES | TAKE_PROFIT_TYPES | {"TRAILING_STOP_MARKET"}
MARKET_CHILD_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})


def limit_crosses(side: str, limit_price: Decimal, last: Decimal) -> bool:
    """Would a new LIMIT order take liquidity at once?"""
    return limit_price >= last if side == "BUY" else limit_price <= last


def sweep(
    side: str,
    qty: Decimal,
    last: Decimal,
    *,
    tick: Decimal,
    level_qty: Decimal | None,
    limit: Decimal | None = None,
) -> list[tuple[Decimal, Decimal]]:
    """The (price, quantity) trades of a taker order of `qty`: one at `last`, or, with `level_qty`, a trade
    per level, each one tick worse for the taker and never beyond a limit price (the rest trades there)."""
    if level_qty is None or level_qty <= 0 or qty <= level_qty:
        return [(last, qty)]
    step = tick if side == "BUY" else -tick
    trades: list[tuple[Decimal, Decimal]] = []
    price, left = last, qty
    while left > 0:
        at_limit = limit is not None and (price + step > limit if side == "BUY" else price + step < limit)
        take = left if at_limit else min(left, level_qty)
        trades.append((price, take))
        left -= take
        price += step
    return trades


def resting_limit_fills(side: str, limit_price: Decimal, last: Decimal) -> bool:
    """Has the last price reached a resting LIMIT order?"""
    return last <= limit_price if side == "BUY" else last >= limit_price


def is_triggered(order_type: str, side: str, trigger_price: Decimal, reference: Decimal) -> bool:
    """Has `reference` (last or mark price) reached the trigger of a conditional order?"""
    if order_type in STOP_TYPES:
        return reference >= trigger_price if side == "BUY" else reference <= trigger_price
    if order_type in TAKE_PROFIT_TYPES:
        return reference <= trigger_price if side == "BUY" else reference >= trigger_price
    raise ValueError(f"not a stop or take-profit type: {order_type}")


def trailing_trigger(side: str, extreme: Decimal, callback_rate_pct: Decimal) -> Decimal:
    """Trigger of a trailing stop from the best price since activation (high for sells, low for buys)."""
    rate = callback_rate_pct / 100
    return extreme * (1 - rate) if side == "SELL" else extreme * (1 + rate)


def trailing_activated(side: str, activation_price: Decimal, reference: Decimal) -> bool:
    return reference >= activation_price if side == "SELL" else reference <= activation_price


def update_extreme(side: str, extreme: Decimal, reference: Decimal) -> Decimal:
    return max(extreme, reference) if side == "SELL" else min(extreme, reference)


def trailing_fires(side: str, extreme: Decimal, callback_rate_pct: Decimal, reference: Decimal) -> bool:
    trigger = trailing_trigger(side, extreme, callback_rate_pct)
    return reference <= trigger if side == "SELL" else reference >= trigger
