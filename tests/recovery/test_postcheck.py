"""The node's own check after reconciliation (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recovery.postcheck import (
    Mismatch,
    classify,
    discrepancies,
    mismatches,
    net_by_instrument,
    order_history_discrepancies,
)
from supervisor.status.shapes import DiscrepancyKind as K

BTC, ETH = "BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"


@pytest.mark.parametrize(
    ("cached", "venue", "kind"),
    [
        ("0.01", "0.01", None),
        ("0", "0.01", K.MISSING_IN_CACHE),
        ("0.01", "0", K.MISSING_AT_VENUE),
        ("0.01", "-0.01", K.SIDE),
        ("-0.02", "-0.01", K.QUANTITY),
    ],
)
def test_classify(cached: str, venue: str, kind: K | None) -> None:
    assert classify(Decimal(cached), Decimal(venue)) == kind


def test_net_sums_strategies_and_drops_flat() -> None:
    assert net_by_instrument(
        [(BTC, Decimal("0.01")), (BTC, Decimal("-0.01")), (ETH, Decimal("1")), (ETH, Decimal("0.5"))]
    ) == {ETH: Decimal("1.5")}


def test_mismatches_name_instrument_and_both_quantities() -> None:
    found = mismatches({BTC: Decimal("0")}, {BTC: Decimal("0.010"), ETH: Decimal("-1")})
    assert found == [
        Mismatch(BTC, Decimal("0"), Decimal("0.010")),
        Mismatch(ETH, Decimal("0"), Decimal("-1")),
    ]
    assert str(found[0]) == f"{BTC}: cached 0, venue 0.010"
    assert found[1].as_dict() == {"instrument": ETH, "cached_qty": "0", "venue_qty": "-1"}


def run(**kw: object) -> list[dict[str, object]]:
    args: dict[str, object] = {
        "venue_name": "v",
        "before": {},
        "venue": {},
        "after": {},
        "after_external": {},
    }
    args.update(kw)
    return [dict(d) for d in discrepancies(**args)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # Nothing changed: no discrepancy.
        ({"before": {BTC: Decimal(1)}, "venue": {BTC: Decimal(1)}, "after": {BTC: Decimal(1)}}, []),
        # A stop filled while down: the venue's fills close it.
        (
            {"before": {BTC: Decimal(1)}, "venue": {}, "after": {}},
            [("missing_at_venue", "1", "0", True, "fills_applied")],
        ),
        # A silent change nautilus had to invent an order for.
        (
            {
                "before": {BTC: Decimal(1)},
                "venue": {BTC: Decimal(2)},
                "after": {BTC: Decimal(2)},
                "synthetic": [BTC],
            },
            [("quantity", "1", "2", True, "synthetic_fill")],
        ),
        # Lost cache, claimed: adopted. Unclaimed: aligned but EXTERNAL.
        (
            {"venue": {BTC: Decimal(1)}, "after": {BTC: Decimal(1)}, "lost_cache": True},
            [("missing_in_cache", "0", "1", True, "adopted_venue")],
        ),
        (
            {
                "venue": {BTC: Decimal(1)},
                "after": {BTC: Decimal(1)},
                "after_external": {BTC: Decimal(1)},
                "lost_cache": True,
            },
            [("missing_in_cache", "0", "1", False, "external_unclaimed")],
        ),
        # Still different after reconciliation.
        (
            {"before": {BTC: Decimal(1)}, "venue": {BTC: Decimal(-1)}, "after": {BTC: Decimal(1)}},
            [("side", "1", "-1", False, "unresolved")],
        ),
        # Matched at load, wrong after (the stock client's duplicated fills): reported, unresolved.
        (
            {"before": {BTC: Decimal(1)}, "venue": {BTC: Decimal(1)}, "after": {}},
            [("missing_in_cache", "0", "1", False, "diverged_in_reconciliation")],
        ),
    ],
)
def test_discrepancies(kw: dict[str, object], expected: list[tuple[object, ...]]) -> None:
    got = [(d["kind"], d["cached_qty"], d["venue_qty"], d["resolved"], d["resolution"]) for d in run(**kw)]
    assert got == expected


def test_an_order_history_shorter_at_the_venue_is_resolved_only_where_the_position_agrees() -> None:
    withheld = [
        {
            "client_order_id": "EN001-35-120",
            "venue_order_id": "4360190962",
            "instrument": BTC,
            "cached_filled": "0.020",
            "venue_filled": "0.010",
        },
        {
            "client_order_id": "EN001-35-121",
            "venue_order_id": "4360190963",
            "instrument": ETH,
            "cached_filled": "0.5",
            "venue_filled": "0.4",
        },
    ]
    wrong = [Mismatch(ETH, Decimal("0.5"), Decimal("0.4"))]
    found = order_history_discrepancies(venue_name="binance", withheld=withheld, mismatched=wrong)
    assert [
        (d["instrument"], d["kind"], d["client_order_id"], d["cached_qty"], d["venue_qty"], d["resolution"])
        for d in found
    ] == [
        (BTC, "order_history", "EN001-35-120", "0.020", "0.010", "kept_cache"),
        (ETH, "order_history", "EN001-35-121", "0.5", "0.4", "unresolved"),
    ]
    assert [d["resolved"] for d in found] == [True, False]
