"""One-way (net) position accounting: average entry, realized PnL, commission, margins. Pure functions.

Conventions (Binance USD-M, one-way mode): a position is a signed amount; a fill that adds to it moves the
entry price to the quantity-weighted average; a fill against it realizes `closed * (price - entry)` (sign by
side) and keeps the entry; a fill that flips it realizes the closed part and opens the rest at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from emulator.numbers import ZERO, round_balance
from emulator.symbols import Bracket


@dataclass(frozen=True, slots=True)
class FillEffect:
    amount: Decimal  # signed position after the fill
    entry_price: Decimal  # average entry after the fill (0 when flat)
    realized_pnl: Decimal  # PnL realized by this fill (before commission)


def signed(side: str, qty: Decimal) -> Decimal:
    return qty if side == "BUY" else -qty


def apply_fill(amount: Decimal, entry_price: Decimal, side: str, qty: Decimal, price: Decimal) -> FillEffect:
    """The position after filling `qty` at `price` on `side`, and the PnL that fill realizes."""
    delta = signed(side, qty)
    if amount == 0 or (amount > 0) == (delta > 0):
        new_amount = amount + delta
        entry = (abs(amount) * entry_price + qty * price) / abs(new_amount)
        return FillEffect(new_amount, entry, ZERO)
    closed = min(abs(amount), qty)
    direction = Decimal(1) if amount > 0 else Decimal(-1)
    realized = closed * (price - entry_price) * direction
    new_amount = amount + delta
    if new_amount == 0:
        return FillEffect(ZERO, ZERO, realized)
    if (new_amount > 0) == (amount > 0):
        return FillEffect(new_amount, entry_price, realized)
    return FillEffect(new_amount, price, realized)


def commission(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    return round_balance(qty * price * rate)


def unrealized_pnl(amount: Decimal, entry_price: Decimal, mark: Decimal) -> Decimal:
    return amount * (mark - entry_price)


def bracket_for(notional: Decimal, brackets: tuple[Bracket, ...]) -> Bracket:
    for bracket in brackets:
        if notional < bracket.notional_cap:
            return bracket
    return brackets[-1]


def maint_margin(notional: Decimal, brackets: tuple[Bracket, ...]) -> Decimal:
    """Maintenance margin of a position with `notional` (absolute, at mark): `notional * mmr - cum`."""
    if notional == 0:
        return ZERO
    bracket = bracket_for(notional, brackets)
    return max(ZERO, notional * bracket.maint_margin_ratio - bracket.cum)


def initial_margin(notional: Decimal, leverage: int) -> Decimal:
    return notional / leverage


def reduce_only_quantity(amount: Decimal, side: str, qty: Decimal) -> Decimal:
    """How much of a reduce-only order may execute now: 0 when it would not reduce the position."""
    if amount == 0 or (amount > 0) == (side == "BUY"):
        return ZERO
    return min(qty, abs(amount))


def increases_exposure(amount: Decimal, side: str, qty: Decimal) -> Decimal:
    """The part of an order that would open or extend a position (what needs fresh initial margin)."""
    delta = signed(side, qty)
    if amount == 0 or (amount > 0) == (delta > 0):
        return qty
    return max(ZERO, qty - abs(amount))


def liquidation_price(
    amount: Decimal, entry_price: Decimal, wallet_for_position: Decimal, mmr: Decimal
) -> Decimal:
    """Cross-margin estimate, whole wallet behind one position: where `wallet + upnl = mmr * notional`."""
    if amount == 0:
        return ZERO
    denominator = mmr * abs(amount) - amount
    if denominator == 0:
        return ZERO
    price = (wallet_for_position - amount * entry_price) / denominator
    return max(ZERO, price)


def break_even_price(amount: Decimal, entry_price: Decimal, taker_rate: Decimal) -> Decimal:
    """Entry moved by the taker fee of closing: what the mark must reach for a zero-PnL exit."""
    if amount == 0:
        return ZERO
    factor = (1 + taker_rate) if amount > 0 else (1 - taker_rate)
    return entry_price * factor
