"""Table tests of trigger and crossing rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from emulator import matching


@pytest.mark.parametrize(
    ("order_type", "side", "trigger", "price", "fires"),
    [
        ("STOP_MARKET", "SELL", "100", "100", True),  # protective stop of a long: at or below
        ("STOP_MARKET", "SELL", "100", "99", True),
        ("STOP_MARKET", "SELL", "100", "101", False),
        ("STOP_MARKET", "BUY", "100", "100", True),  # protective stop of a short: at or above
        ("STOP_MARKET", "BUY", "100", "99", False),
        ("TAKE_PROFIT_MARKET", "SELL", "100", "101", True),  # take profit of a long: at or above
        ("TAKE_PROFIT_MARKET", "SELL", "100", "99", False),
        ("TAKE_PROFIT_MARKET", "BUY", "100", "99", True),  # take profit of a short: at or below
        ("TAKE_PROFIT_MARKET", "BUY", "100", "101", False),
        ("STOP", "SELL", "100", "100", True),
        ("TAKE_PROFIT", "BUY", "100", "100", True),
    ],
)
def test_is_triggered(order_type: str, side: str, trigger: str, price: str, fires: bool) -> None:
    assert matching.is_triggered(order_type, side, Decimal(trigger), Decimal(price)) is fires


def test_is_triggered_rejects_other_types() -> None:
    with pytest.raises(ValueError, match="not a stop"):
        matching.is_triggered("LIMIT", "BUY", Decimal(1), Decimal(1))


@pytest.mark.parametrize(
    ("side", "limit", "last", "crosses", "fills_resting"),
    [
        ("BUY", "101", "100", True, True),
        ("BUY", "100", "100", True, True),
        ("BUY", "99", "100", False, False),
        ("SELL", "99", "100", True, True),
        ("SELL", "101", "100", False, False),
    ],
)
def test_limit_rules(side: str, limit: str, last: str, crosses: bool, fills_resting: bool) -> None:
    assert matching.limit_crosses(side, Decimal(limit), Decimal(last)) is crosses
    assert matching.resting_limit_fills(side, Decimal(limit), Decimal(last)) is fills_resting


def test_trailing_stop_follows_the_best_price() -> None:
    extreme = Decimal(100)
    for price in ("105", "110", "108"):
        extreme = matching.update_extreme("SELL", extreme, Decimal(price))
    assert extreme == Decimal(110)
    assert matching.trailing_trigger("SELL", extreme, Decimal(1)) == Decimal("108.9")
    assert not matching.trailing_fires("SELL", extreme, Decimal(1), Decimal(109))
    assert matching.trailing_fires("SELL", extreme, Decimal(1), Decimal("108.9"))
    assert matching.trailing_activated("SELL", Decimal(105), Decimal(105))
    assert not matching.trailing_activated("BUY", Decimal(95), Decimal(96))


@pytest.mark.parametrize(
    ("side", "qty", "level", "limit", "trades"),
    [
        ("BUY", "0.020", None, None, [("100.0", "0.020")]),  # one unlimited level
        ("BUY", "0.010", "0.010", None, [("100.0", "0.010")]),  # fits the first level
        ("BUY", "0.020", "0.010", None, [("100.0", "0.010"), ("100.1", "0.010")]),  # a reversal, two levels
        ("SELL", "0.025", "0.010", None, [("100.0", "0.010"), ("99.9", "0.010"), ("99.8", "0.005")]),
        ("BUY", "0.030", "0.010", "100.1", [("100.0", "0.010"), ("100.1", "0.020")]),  # never past the limit
    ],
)
def test_sweep_walks_levels_one_tick_worse_for_the_taker(
    side: str, qty: str, level: str | None, limit: str | None, trades: list[tuple[str, str]]
) -> None:
    swept = matching.sweep(
        side,
        Decimal(qty),
        Decimal("100.0"),
        tick=Decimal("0.1"),
        level_qty=Decimal(level) if level else None,
        limit=Decimal(limit) if limit else None,
    )
    assert swept == [(Decimal(p), Decimal(q)) for p, q in trades]
