"""Decimal helpers: the venue keeps every amount as an exact Decimal and prints it the way Binance does."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
BALANCE_PLACES = 8


def places(step: Decimal) -> int:
    """Decimal places of a step as written: 0.001 has 3, 0.010 has 3 (the venue's precision), 10 has 0."""
    exponent = step.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def decimals_in(text: str) -> int:
    """Decimal places written in a numeric string ("1.2300" has 4)."""
    _, _, frac = text.partition(".")
    return len(frac)


def quantize_to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Round `value` to a multiple of `step`."""
    units = (value / step).to_integral_value(rounding=rounding)
    return (units * step).quantize(Decimal(1).scaleb(-places(step)))


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


def fixed(value: Decimal, decimals: int) -> str:
    """Print with exactly `decimals` places (the venue's style for prices and quantities)."""
    quantum = Decimal(1).scaleb(-decimals)
    return str(value.quantize(quantum, rounding=ROUND_HALF_EVEN))


def balance(value: Decimal) -> str:
    """Balances and PnL are printed with 8 places."""
    return fixed(value, BALANCE_PLACES)


def round_balance(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-BALANCE_PLACES), rounding=ROUND_HALF_EVEN)


def truncate(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)


def plain(value: Decimal) -> str:
    """Shortest exact text without exponent ("60000.1", "0", "0.00012")."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def average_price(value: Decimal, price_decimals: int) -> str:
    """An average price: at tick precision when exact, otherwise at 8 places."""
    at_tick = value.quantize(Decimal(1).scaleb(-price_decimals))
    if at_tick == value:
        return fixed(value, price_decimals)
    return fixed(value, BALANCE_PLACES)
