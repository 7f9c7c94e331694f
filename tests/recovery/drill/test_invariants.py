"""The drill's checks, given the venue's and the cache's values (no servers)."""

from __future__ import annotations

from decimal import Decimal

from recovery.drill.invariants import (
    DUPLICATE,
    FILLS,
    INVENTED,
    POSITION,
    PROTECTIVE,
    READY,
    STATE,
    OpenProtective,
    StateRecord,
    VenueBook,
    book_violations,
    protective_of,
    ready_violations,
    restored_states,
    state_violations,
)
from recovery.drill.values import CachedFill, CachedOrder, CachedPosition, CachedState

BTC = "BTCUSDT-PERP.BINANCE"
SL = "SL-BTCUSDT-PERP-abcdef-g1"
TP = "TP-BTCUSDT-PERP-abcdef-g1"
ENTRY = "O-20250101-000000-001-001-1"


def order(
    cid: str,
    *fills: tuple[str, str],
    strategy: str = "EmaCross-001",
    tags: tuple[str, ...] = (),
    inferred: bool = False,
) -> CachedOrder:
    return CachedOrder(
        client_order_id=cid,
        strategy_id=strategy,
        status="FILLED" if fills else "ACCEPTED",
        order_type="MARKET",
        venue_order_id="1",
        tags=tags,
        fills=tuple(CachedFill(t, Decimal(q), Decimal(60000), inferred) for t, q in fills),
        avg_px=None,
        instrument_id=BTC,
    )


def cache(net: str, *orders: CachedOrder) -> CachedState:
    positions = (
        [CachedPosition("P-1", BTC, "EmaCross-001", "LONG", Decimal(net), Decimal(60000), Decimal(0), True)]
        if Decimal(net) != 0
        else []
    )
    return CachedState(orders={o.client_order_id: o for o in orders}, positions=positions, balances={})


def stop(cid: str, side: str = "SELL", qty: str = "0.010") -> OpenProtective:
    return OpenProtective(client_id=cid, symbol="BTCUSDT", kind=cid[:2], side=side, quantity=Decimal(qty))


def venue(
    net: str,
    *protective: OpenProtective,
    fills: dict[str, tuple[tuple[str, Decimal], ...]] | None = None,
    accepted: dict[str, int] | None = None,
) -> VenueBook:
    return VenueBook(
        positions={"BTCUSDT": Decimal(net)} if Decimal(net) != 0 else {},
        open_protective=protective,
        fills={ENTRY: (("11", Decimal("0.010")),)} if fills is None else fills,
        accepted={ENTRY: 1, SL: 1, TP: 1} if accepted is None else accepted,
    )


def checks(book: VenueBook, state: CachedState) -> list[tuple[str, str]]:
    return [(v.check, v.message) for v in book_violations("n", [BTC], book, state)]


PROTECTED = venue("0.010", stop(SL), stop(TP))
CACHED = cache("0.010", order(ENTRY, ("11", "0.010")))


def test_a_node_equal_to_the_venue_has_no_violation() -> None:
    assert checks(PROTECTED, CACHED) == []


def test_a_position_that_differs_from_the_venue_is_a_violation() -> None:
    found = book_violations("n", [BTC], venue("0.020", stop(SL, qty="0.020"), stop(TP, qty="0.020")), CACHED)
    assert [(v.check, v.evidence) for v in found if v.check == POSITION] == [
        (POSITION, {"instrument": BTC, "venue": "0.020", "cache": "0.010"})
    ]


def test_a_position_only_the_cache_holds_is_a_violation() -> None:
    assert [c for c, _ in checks(venue("0"), CACHED)] == [POSITION]


def test_a_protected_position_needs_exactly_one_of_each_kind_it_uses() -> None:
    missing = checks(venue("0.010", stop(TP)), CACHED)
    assert missing == [(PROTECTIVE, "BTCUSDT position 0.010: 0 open SL orders, expected exactly one")]
    doubled = checks(venue("0.010", stop(SL), stop("SL-BTCUSDT-PERP-abcdef-g2"), stop(TP)), CACHED)
    assert doubled == [(PROTECTIVE, "BTCUSDT position 0.010: 2 open SL orders, expected exactly one")]


def test_a_stop_must_cover_the_whole_position_on_the_closing_side() -> None:
    assert checks(venue("0.010", stop(SL, qty="0.005"), stop(TP)), CACHED) == [
        (PROTECTIVE, f"BTCUSDT position 0.010: SL {SL} is SELL 0.005, expected SELL 0.010")
    ]
    assert checks(venue("0.010", stop(SL, side="BUY"), stop(TP)), CACHED)[0][0] == PROTECTIVE


def test_a_flat_instrument_has_no_protective_order() -> None:
    flat_cache = cache("0", order(ENTRY, ("11", "0.010")))
    assert checks(venue("0", stop(TP)), flat_cache) == [(PROTECTIVE, f"BTCUSDT is flat, yet {TP} open")]
    assert checks(venue("0"), flat_cache) == []


def test_a_strategy_that_never_protects_an_instrument_is_not_asked_to() -> None:
    assert checks(venue("0.010", accepted={ENTRY: 1}), CACHED) == []


def test_a_client_order_id_accepted_twice_is_a_violation() -> None:
    found = book_violations(
        "n", [BTC], venue("0.010", stop(SL), stop(TP), accepted={ENTRY: 1, SL: 2, TP: 1}), CACHED
    )
    assert [(v.check, v.evidence) for v in found] == [(DUPLICATE, {"client_order_id": SL, "accepted": 2})]


def test_fills_must_match_the_venue_order_by_order() -> None:
    other_fill = venue("0.010", stop(SL), stop(TP), fills={ENTRY: (("12", Decimal("0.010")),)})
    assert [c for c, _ in checks(other_fill, CACHED)] == [FILLS]
    never_made = venue("0.010", stop(SL), stop(TP), fills={})
    assert checks(never_made, CACHED) == [
        (FILLS, f"order {ENTRY}: the cache has fills [['11', '0.010']] the venue never made")
    ]


def test_an_invented_order_is_a_violation() -> None:
    invented = order("S-1", ("S-1-fill", "0.010"), strategy="EXTERNAL", inferred=True)
    state = cache("0.020", order(ENTRY, ("11", "0.010")), invented)
    book = venue("0.020", stop(SL, qty="0.020"), stop(TP, qty="0.020"))
    assert [c for c, _ in checks(book, state)] == [FILLS, INVENTED]
    # The same order with the venue's own trade (another client's order, adopted) is not invented.
    adopted = order("drill-1", ("12", "0.010"))
    fills: dict[str, tuple[tuple[str, Decimal], ...]] = {
        ENTRY: (("11", Decimal("0.010")),),
        "drill-1": (("12", Decimal("0.010")),),
    }
    assert (
        checks(
            venue("0.020", stop(SL, qty="0.020"), stop(TP, qty="0.020"), fills=fills),
            cache("0.020", order(ENTRY, ("11", "0.010")), adopted),
        )
        == []
    )


def test_protective_of_reads_only_the_strategy_protective_ids() -> None:
    row = {"clientAlgoId": SL, "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.010"}
    assert protective_of(row) == stop(SL)
    assert protective_of({**row, "clientAlgoId": "my-own-stop"}) is None


REPORT = {
    "result": "ready",
    "phases": [
        {"phase": "reconciled", "detail": {}},
        {
            "phase": "state_restored",
            "detail": {
                "strategies": {"EmaCross-001": {"path": "restored", "state": "loaded", "state_seq": 7}}
            },
        },
    ],
}
AT_KILL = {"EmaCross-001": StateRecord(seq=7, fields={"entries": 2})}


def test_state_restored_must_be_the_last_acknowledged_write() -> None:
    restored = restored_states(REPORT)
    assert state_violations("n", AT_KILL, restored, AT_KILL) == []
    # The strategy wrote again after it restored (a missed fill): fine.
    assert state_violations("n", AT_KILL, restored, {"EmaCross-001": StateRecord(seq=8, fields={})}) == []
    older = state_violations(
        "n", {"EmaCross-001": StateRecord(seq=8, fields={"entries": 3})}, restored, AT_KILL
    )
    assert [(v.check, v.message) for v in older] == [
        (STATE, "EmaCross-001: restored state loaded seq 7, but the last acknowledged write was seq 8")
    ]


def test_a_state_record_changed_without_a_new_seq_is_a_violation() -> None:
    changed = {"EmaCross-001": StateRecord(seq=7, fields={"entries": 3})}
    found = state_violations("n", AT_KILL, restored_states(REPORT), changed)
    assert [v.check for v in found] == [STATE]
    assert found[0].evidence["now"] == {"seq": 7, "fields": {"entries": 3}}


def test_a_state_restored_where_none_was_written_or_none_reported_is_a_violation() -> None:
    assert [v.check for v in state_violations("n", {}, restored_states(REPORT), AT_KILL)] == [STATE]
    assert [v.check for v in state_violations("n", AT_KILL, {}, AT_KILL)] == [STATE]


def test_a_recovery_that_is_not_ready_is_a_violation() -> None:
    assert ready_violations("n", REPORT) == []
    failed = ready_violations("n", {**REPORT, "result": "failed", "error": "reconcile_failed: diff"})
    assert [(v.check, v.message) for v in failed] == [
        (READY, "recovery ended failed: reconcile_failed: diff")
    ]
