"""Missed-fill ordering/once-only and the FR-003 balance explanation (table tests, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recovery.balances import FillEffect, explain_balances, replay_realized
from recovery.missed import FillRecord, delivery_key, pending_missed, prune_delivered

BTC = "BTCUSDT-PERP.BINANCE"
ETH = "ETHUSDT-PERP.BINANCE"


def rec(trade_id: str, ts: int, *, instrument: str = BTC, reconciliation: bool = True) -> FillRecord[str]:
    return FillRecord(instrument, trade_id, ts, reconciliation, payload=f"{instrument}/{trade_id}")


@pytest.mark.parametrize(
    ("fills", "delivered", "expected"),
    [
        ([], set(), []),
        # Live fills (not from reconciliation) were seen by on_order_filled already.
        ([rec("1", 10, reconciliation=False), rec("2", 20)], set(), [f"{BTC}/2"]),
        # Venue order: time first, then numeric trade id (not text order: 9 < 10).
        ([rec("10", 5), rec("9", 5), rec("3", 1)], set(), [f"{BTC}/3", f"{BTC}/9", f"{BTC}/10"]),
        # Already delivered before a crash: not again.
        ([rec("1", 1), rec("2", 2)], {delivery_key(BTC, "1")}, [f"{BTC}/2"]),
        # The same fill reported on two orders' event lists counts once.
        ([rec("7", 1), rec("7", 1)], set(), [f"{BTC}/7"]),
        # Same trade id on two symbols are two fills.
        ([rec("7", 2, instrument=ETH), rec("7", 1)], set(), [f"{BTC}/7", f"{ETH}/7"]),
        # Inferred fills (non-numeric ids) sort after numeric ones at the same time.
        ([rec("abc-inferred", 5), rec("4", 5)], set(), [f"{BTC}/4", f"{BTC}/abc-inferred"]),
    ],
)
def test_pending_missed(fills: list[FillRecord[str]], delivered: set[str], expected: list[str]) -> None:
    assert [r.payload for r in pending_missed(fills, delivered)] == expected


def test_prune_delivered_keeps_only_fills_still_cached() -> None:
    delivered = {delivery_key(BTC, "1"), delivery_key(BTC, "2"), delivery_key(BTC, "purged")}
    fills = [rec("1", 1), rec("2", 2), rec("3", 3, reconciliation=False)]
    assert prune_delivered(delivered, fills) == {delivery_key(BTC, "1"), delivery_key(BTC, "2")}


def fill(key: str, side: str, qty: str, px: str, fee: str = "0", ccy: str = "USDT") -> FillEffect:
    return FillEffect(key, BTC, side, Decimal(qty), Decimal(px), Decimal(fee), ccy, "USDT")


@pytest.mark.parametrize(
    ("fills", "realized", "final_qty", "final_avg"),
    [
        ([fill("a", "BUY", "0.010", "60000")], {"a": "0"}, "0.010", "60000"),
        # The stop triggered while down: long 0.010 @ 60000 sold at 49900 -> -101 (the venue's realizedPnl).
        (
            [fill("a", "BUY", "0.010", "60000"), fill("b", "SELL", "0.010", "49900")],
            {"a": "0", "b": "-101"},
            "0",
            "0",
        ),
        # Averaging in, then a partial close.
        (
            [fill("a", "BUY", "1", "100"), fill("b", "BUY", "1", "200"), fill("c", "SELL", "0.5", "250")],
            {"a": "0", "b": "0", "c": "50"},
            "1.5",
            "150",
        ),
        # Short, closed at a loss.
        ([fill("a", "SELL", "2", "100"), fill("b", "BUY", "2", "110")], {"a": "0", "b": "-20"}, "0", "0"),
        # Flip through zero: closes 1 (pnl 10), opens short 1 at the flip price.
        ([fill("a", "BUY", "1", "100"), fill("b", "SELL", "2", "110")], {"a": "0", "b": "10"}, "-1", "110"),
    ],
)
def test_replay_realized(
    fills: list[FillEffect], realized: dict[str, str], final_qty: str, final_avg: str
) -> None:
    replay = replay_realized(fills)
    assert {k: Decimal(v) for k, v in realized.items()} == dict(replay.realized)
    assert replay.signed_quantity == Decimal(final_qty)
    assert replay.average_price == Decimal(final_avg)


def test_stop_triggered_while_down_is_fully_explained() -> None:
    """The research run: 9999.76 -> 9898.5604 = -101 realized - 0.1996 commission."""
    fills = [fill("a", "BUY", "0.010", "60000", "0.24"), fill("b", "SELL", "0.010", "49900", "0.1996")]
    replay = replay_realized(fills)
    lines = explain_balances(
        "emulator", {"USDT": "9999.76"}, {"USDT": "9898.5604"}, fills[1:], replay.realized
    )
    assert lines == [
        {
            "venue": "emulator",
            "currency": "USDT",
            "before": "9999.76",
            "after": "9898.5604",
            "change": "-101.1996",
            "realized_pnl": "-101",
            "commission": "0.1996",
            "explained": "-101.1996",
            "unexplained": "0",
            "fills": 1,
        }
    ]


def test_funding_shows_as_unexplained_and_other_currencies_are_listed() -> None:
    fills = [fill("b", "SELL", "0.010", "61000", "0.01", ccy="BNB")]
    lines = explain_balances(
        "emulator",
        {"USDT": "1000", "BNB": "1"},
        {"USDT": "1009.5", "BNB": "0.99"},
        fills,
        {"b": Decimal("10")},
    )
    by_ccy = {line["currency"]: line for line in lines}
    assert by_ccy["USDT"]["explained"] == "10"
    assert by_ccy["USDT"]["unexplained"] == "-0.5"  # e.g. funding paid while down
    assert by_ccy["BNB"]["commission"] == "0.01"
    assert by_ccy["BNB"]["unexplained"] == "0"


def test_no_previous_balance_means_no_change_claimed() -> None:
    lines = explain_balances("emulator", {}, {"USDT": "100000"}, [], {})
    assert lines[0]["before"] is None
    assert lines[0]["change"] is None
    assert lines[0]["unexplained"] is None


def test_incomplete_history_is_said() -> None:
    lines = explain_balances("emulator", {"USDT": "1"}, {"USDT": "2"}, [], {}, incomplete=[BTC])
    assert "incomplete" in lines[0].get("note", "")
