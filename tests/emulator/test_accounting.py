"""Table tests of one-way position accounting: entry averaging, realized PnL, flips, fees, margins."""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import accounting
from emulator.symbols import make_brackets


@pytest.mark.parametrize(
    ("amount", "entry", "side", "qty", "price", "new_amount", "new_entry", "realized"),
    [
        # open from flat
        ("0", "0", "BUY", "1", "100", "1", "100", "0"),
        ("0", "0", "SELL", "2", "100", "-2", "100", "0"),
        # add to a long: quantity-weighted average entry
        ("1", "100", "BUY", "1", "110", "2", "105", "0"),
        ("1", "100", "BUY", "3", "120", "4", "115", "0"),
        # add to a short
        ("-1", "100", "SELL", "1", "90", "-2", "95", "0"),
        # partial close of a long keeps the entry, realizes on the closed part
        ("2", "100", "SELL", "1", "110", "1", "100", "10"),
        ("2", "100", "SELL", "0.5", "90", "1.5", "100", "-5"),
        # partial close of a short
        ("-2", "100", "BUY", "1", "90", "-1", "100", "10"),
        ("-2", "100", "BUY", "1", "130", "-1", "100", "-30"),
        # full close
        ("1", "100", "SELL", "1", "150", "0", "0", "50"),
        ("-1", "100", "BUY", "1", "150", "0", "0", "-50"),
        # flip: realize the old position, open the rest at the fill price
        ("1", "100", "SELL", "3", "120", "-2", "120", "20"),
        ("-1", "100", "BUY", "2", "80", "1", "80", "20"),
    ],
)
def test_apply_fill(
    amount: str, entry: str, side: str, qty: str, price: str, new_amount: str, new_entry: str, realized: str
) -> None:
    effect = accounting.apply_fill(Decimal(amount), Decimal(entry), side, Decimal(qty), Decimal(price))
    assert effect.amount == Decimal(new_amount)
    assert effect.entry_price == Decimal(new_entry)
    assert effect.realized_pnl == Decimal(realized)


def test_round_trip_pnl_matches_price_difference() -> None:
    """Open in three fills, close in two: the realized total equals proceeds minus cost."""
    amount, entry, realized = Decimal(0), Decimal(0), Decimal(0)
    fills = [
        ("BUY", "0.5", "100"),
        ("BUY", "0.3", "104"),
        ("BUY", "0.2", "110"),
        ("SELL", "0.6", "120"),
        ("SELL", "0.4", "90"),
    ]
    for side, qty, price in fills:
        effect = accounting.apply_fill(amount, entry, side, Decimal(qty), Decimal(price))
        amount, entry, realized = effect.amount, effect.entry_price, realized + effect.realized_pnl
    cost = Decimal("0.5") * 100 + Decimal("0.3") * 104 + Decimal("0.2") * 110
    proceeds = Decimal("0.6") * 120 + Decimal("0.4") * 90
    assert amount == 0
    assert realized == proceeds - cost


@pytest.mark.parametrize(
    ("qty", "price", "rate", "fee"),
    [
        ("0.010", "65000.0", "0.0005", "0.32500000"),
        ("0.010", "65000.0", "0.0002", "0.13000000"),
        ("3", "0.12345", "0.0005", "0.00018518"),  # rounded half-even to 8 places
    ],
)
def test_commission(qty: str, price: str, rate: str, fee: str) -> None:
    assert accounting.commission(Decimal(qty), Decimal(price), Decimal(rate)) == Decimal(fee)


@pytest.mark.parametrize(
    ("amount", "side", "qty", "allowed"),
    [
        ("1", "SELL", "0.4", "0.4"),
        ("1", "SELL", "2", "1"),  # cut to the position size
        ("-1", "BUY", "0.4", "0.4"),
        ("1", "BUY", "0.4", "0"),  # would increase
        ("-1", "SELL", "0.4", "0"),
        ("0", "SELL", "1", "0"),  # nothing to reduce
    ],
)
def test_reduce_only_quantity(amount: str, side: str, qty: str, allowed: str) -> None:
    assert accounting.reduce_only_quantity(Decimal(amount), side, Decimal(qty)) == Decimal(allowed)


@pytest.mark.parametrize(
    ("amount", "side", "qty", "extra"),
    [("0", "BUY", "1", "1"), ("1", "BUY", "1", "1"), ("1", "SELL", "0.5", "0"), ("1", "SELL", "3", "2")],
)
def test_increases_exposure(amount: str, side: str, qty: str, extra: str) -> None:
    assert accounting.increases_exposure(Decimal(amount), side, Decimal(qty)) == Decimal(extra)


def test_unrealized_pnl_sign() -> None:
    assert accounting.unrealized_pnl(Decimal(2), Decimal(100), Decimal(110)) == Decimal(20)
    assert accounting.unrealized_pnl(Decimal(-2), Decimal(100), Decimal(110)) == Decimal(-20)


def test_maintenance_margin_is_continuous_across_brackets() -> None:
    brackets = make_brackets(125, Decimal(50_000))
    for bracket in brackets[1:]:
        below = accounting.maint_margin(bracket.notional_floor - Decimal("0.01"), brackets)
        at = accounting.maint_margin(bracket.notional_floor, brackets)
        assert abs(at - below) < Decimal("0.01")
    assert accounting.maint_margin(Decimal(10_000), brackets) == Decimal(10_000) * Decimal("0.004")
    assert accounting.maint_margin(Decimal(0), brackets) == 0


def test_liquidation_price_is_below_entry_for_longs_and_above_for_shorts() -> None:
    long_liq = accounting.liquidation_price(Decimal(1), Decimal(100), Decimal(50), Decimal("0.004"))
    short_liq = accounting.liquidation_price(Decimal(-1), Decimal(100), Decimal(50), Decimal("0.004"))
    assert 0 < long_liq < 100 < short_liq
    # at the liquidation price, wallet + upnl equals the maintenance margin
    assert abs(Decimal(50) + Decimal(1) * (long_liq - 100) - Decimal("0.004") * long_liq) < Decimal("1e-9")
    assert accounting.liquidation_price(Decimal(0), Decimal(0), Decimal(50), Decimal("0.004")) == 0


def test_break_even_price_covers_the_closing_fee() -> None:
    assert accounting.break_even_price(Decimal(1), Decimal(100), Decimal("0.0005")) == Decimal("100.05")
    assert accounting.break_even_price(Decimal(-1), Decimal(100), Decimal("0.0005")) == Decimal("99.95")
