"""The audit's decisions as tables: the exact diff of node and venue, the downtime changes, the cached
order decoding, the jitter. Pure: no Redis, no venue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from supervisor.audit.compare import compare, downtime_changes, position_kind
from supervisor.audit.holdings import ConditionalOrder, Holdings, order_from_events, signed_quantity
from supervisor.audit.scheduler import next_delay, node_balance_explanation
from supervisor.audit.venue_view import VenueRequest, VenueView, venue_symbol
from supervisor.events import PhaseMark, RecoveryReport
from supervisor.secrets import Secret

BTC, ETH = "BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"
D = Decimal


def stop(cid: str, instrument: str, **changes: Any) -> ConditionalOrder:
    values: dict[str, Any] = {
        "client_order_id": cid,
        "instrument": instrument,
        "order_type": "STOP_MARKET",
        "side": "SELL",
        "quantity": D("0.010"),
        "trigger_price": D("55100.0"),
    }
    return ConditionalOrder(**{**values, **changes})


def held(positions: dict[str, str], *orders: ConditionalOrder) -> Holdings:
    return Holdings(
        positions={k: D(v) for k, v in positions.items()}, orders={o.client_order_id: o for o in orders}
    )


def venue(
    positions: dict[str, str], *orders: ConditionalOrder, balances: dict[str, str] | None = None
) -> VenueView:
    return VenueView(
        positions={k: D(v) for k, v in positions.items()},
        orders={o.client_order_id: o for o in orders},
        balances=None if balances is None else {k: D(v) for k, v in balances.items()},
        used_weight=None,
    )


@pytest.mark.parametrize(
    ("node", "there", "kind"),
    [
        ("0.010", "0.010", None),
        ("0.010", "0.015", "quantity"),
        ("0.010", "-0.010", "side"),
        ("0", "0.010", "missing_in_node"),
        ("-0.5", "0", "missing_at_venue"),
        ("0", "0", None),
    ],
)
def test_position_kind(node: str, there: str, kind: str | None) -> None:
    assert position_kind(D(node), D(there)) == kind


def test_a_matching_node_has_no_differences() -> None:
    sl = stop("SL-BTCUSDT-PERP-abcdef-g1", BTC)
    tp = stop("TP-BTCUSDT-PERP-abcdef-g1", BTC, order_type="TAKE_PROFIT_MARKET", trigger_price=D("65100.0"))
    node = held({BTC: "0.010"}, sl, tp)
    at_venue = venue(
        {"BTCUSDT": "0.010"},
        stop(sl.client_order_id, "BTCUSDT"),
        stop(tp.client_order_id, "BTCUSDT", order_type="TAKE_PROFIT_MARKET", trigger_price=D("65100.0")),
    )
    assert compare("emu", node, at_venue, [BTC, ETH]) == []


def test_a_position_changed_behind_the_nodes_back_is_the_exact_diff() -> None:
    diff = compare("emu", held({BTC: "0.010"}), venue({"BTCUSDT": "0.025", "ETHUSDT": "-1"}), [BTC, ETH])
    assert diff == [
        {
            "venue": "emu",
            "what": "position",
            "instrument": BTC,
            "kind": "quantity",
            "node": {"side": "LONG", "quantity": "0.010"},
            "venue_holds": {"side": "LONG", "quantity": "0.025"},
        },
        {
            "venue": "emu",
            "what": "position",
            "instrument": ETH,
            "kind": "missing_in_node",
            "node": {"side": "FLAT", "quantity": "0"},
            "venue_holds": {"side": "SHORT", "quantity": "1"},
        },
    ]


def test_venue_positions_outside_the_scope_are_not_the_nodes() -> None:
    assert compare("emu", held({}), venue({"SOLUSDT": "3"}), [BTC]) == []


def test_protective_orders_missing_unknown_and_differing() -> None:
    missing = stop("SL-BTCUSDT-PERP-abcdef-g1", BTC)
    moved = stop("TP-BTCUSDT-PERP-abcdef-g1", BTC, order_type="TAKE_PROFIT_MARKET", trigger_price=D("65100"))
    node = held({BTC: "0.010"}, missing, moved)
    at_venue = venue(
        {"BTCUSDT": "0.010"},
        stop(
            "TP-BTCUSDT-PERP-abcdef-g1", "BTCUSDT", order_type="TAKE_PROFIT_MARKET", trigger_price=D("64000")
        ),
        stop("manual-1", "BTCUSDT", quantity=None),
    )
    diff = compare("emu", node, at_venue, [BTC])
    assert [(d["client_order_id"], d["kind"], d.get("fields")) for d in diff] == [
        ("SL-BTCUSDT-PERP-abcdef-g1", "missing_at_venue", None),
        ("TP-BTCUSDT-PERP-abcdef-g1", "differs", ["trigger_price"]),
        ("manual-1", "unknown_to_node", None),
    ]
    assert diff[0]["venue_holds"] is None and diff[0]["node"]["trigger_price"] == "55100.0"
    assert diff[2]["node"] is None and diff[2]["venue_holds"]["quantity"] is None
    assert diff[2]["instrument"] == BTC  # the venue's symbol, named as the node names it


def test_a_close_position_stop_matches_any_quantity() -> None:
    sl = stop("SL-1", BTC)
    assert (
        compare(
            "emu",
            held({BTC: "0.010"}, sl),
            venue({"BTCUSDT": "0.010"}, stop("SL-1", "BTCUSDT", quantity=None)),
            [BTC],
        )
        == []
    )


def test_downtime_changes_next_to_the_nodes_explanation() -> None:
    before = venue({"BTCUSDT": "0.010"}, balances={"USDT": "10000", "BNB": "1"})
    after = venue({}, balances={"USDT": "9950.5", "BNB": "1"})
    node_explanation = [
        {"venue": "emu", "currency": "USDT", "explained": "-49.5", "unexplained": "0.0"},
        {"venue": "other", "currency": "BNB", "explained": "1", "unexplained": "0"},
    ]
    assert downtime_changes("emu", before, after, [BTC, ETH], node_explanation) == {
        "venue": "emu",
        "positions": [
            {
                "instrument": BTC,
                "before": {"side": "LONG", "quantity": "0.010"},
                "after": {"side": "FLAT", "quantity": "0"},
            }
        ],
        "balances": [
            {"currency": "BNB", "before": "1", "after": "1", "change": "0"},
            {
                "currency": "USDT",
                "before": "10000",
                "after": "9950.5",
                "change": "-49.5",
                "node_explained": "-49.5",
                "node_unexplained": "0.0",
            },
        ],
    }


class _Init(msgspec.Struct):
    type: str
    client_order_id: str
    instrument_id: str
    order_side: str
    order_type: str
    quantity: str
    options: dict[str, Any]


class _Updated(msgspec.Struct):
    type: str
    client_order_id: str
    quantity: str
    trigger_price: str | None


def _init(order_type: str = "STOP_MARKET") -> _Init:
    return _Init("OrderInitialized", "SL-1", BTC, "SELL", order_type, "0.010", {"trigger_price": "55100.0"})


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([msgspec.msgpack.encode(_init())], stop("SL-1", BTC)),
        ([msgspec.json.encode(_init())], stop("SL-1", BTC)),
        (
            [msgspec.msgpack.encode(_init("MARKET_IF_TOUCHED"))],
            stop("SL-1", BTC, order_type="TAKE_PROFIT_MARKET"),
        ),
        (
            [
                msgspec.msgpack.encode(_init()),
                msgspec.msgpack.encode(msgspec.structs.replace(_init(), type="OrderSubmitted")),
                msgspec.msgpack.encode(_Updated("OrderUpdated", "SL-1", "0.020", "54000")),
            ],
            stop("SL-1", BTC, quantity=D("0.020"), trigger_price=D("54000")),
        ),
        ([msgspec.msgpack.encode(_init("MARKET"))], None),
        ([b"\xc1 not msgpack"], None),
    ],
    ids=["msgpack", "json", "take-profit", "updated", "not-conditional", "corrupt"],
)
def test_cached_order_events(events: list[bytes], expected: ConditionalOrder | None) -> None:
    assert order_from_events(events) == expected


@pytest.mark.parametrize(
    ("side", "quantity", "signed"),
    [("LONG", "0.010", "0.010"), ("SHORT", "2", "-2"), ("FLAT", "0", "0"), ("", "x", "0")],
)
def test_position_hash_as_a_signed_quantity(side: str, quantity: str, signed: str) -> None:
    assert signed_quantity(side, quantity) == D(signed)


def test_instrument_to_venue_symbol() -> None:
    assert [venue_symbol(i) for i in (BTC, "ETHUSDT.BINANCE", "SOLUSDT-PERP")] == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
    ]


@pytest.mark.parametrize(
    ("symbols", "orders", "balances", "weight"),
    [(2, True, False, 7), (2, True, True, 12), (50, True, False, 45), (3, False, True, 10)],
)
def test_request_weight(symbols: int, orders: bool, balances: bool, weight: int) -> None:
    request = VenueRequest(
        base_url=None,
        testnet=False,
        api_key=Secret("k"),
        api_secret=Secret("s"),
        symbols=tuple(f"S{i}USDT" for i in range(symbols)),
        orders=orders,
        balances=balances,
    )
    assert request.weight() == weight


@pytest.mark.parametrize(("draw", "delay"), [(0.0, 270.0), (0.5, 300.0), (0.999999, 330.0)])
def test_next_audit_is_jittered_ten_percent(draw: float, delay: float) -> None:
    assert next_delay(300.0, draw) == pytest.approx(delay, abs=1e-3)


def test_the_nodes_balance_explanation_is_found_per_strategy_once() -> None:
    line = {"venue": "emu", "currency": "USDT", "explained": "-1", "unexplained": "0"}
    restored = PhaseMark(
        name="orders_restored",
        epoch_ns=0,
        mono_ns=0,
        ms_since_detection=None,
        detail={"strategies": {"A-001": {"balances": [line]}, "B-001": {"balances": [dict(line)]}}},
    )
    report = RecoveryReport(
        node="n",
        trader_id="T-1",
        venues=("emu",),
        attempt=2,
        reason="signal",
        detected_at=None,
        phases=(restored,),
        position_recovery_ms=None,
        full_recovery_ms=None,
        discrepancies=(),
        actions=(),
        result="ready",
    )
    assert node_balance_explanation(report) == [line]
