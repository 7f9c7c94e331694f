"""The protective-order diff: keep, place once, cancel orphans (table tests, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from recovery.client_ids import Owner, ProtectiveKind, protective_client_order_id
from recovery.protective import (
    CancelReason,
    IntendedOrder,
    LedgerEntry,
    OpenOrder,
    ProtectivePlan,
    ledger_from_builtins,
    ledger_to_builtins,
    plan_protective,
)

OWNER = Owner("EMA-001", "EMACross-001")
BTC = "BTCUSDT-PERP.BINANCE"
ETH = "ETHUSDT-PERP.BINANCE"
SL = ProtectiveKind.STOP_LOSS
TP = ProtectiveKind.TAKE_PROFIT

SL_BTC = IntendedOrder(BTC, SL, "SELL", Decimal("0.010"), Decimal("60000.0"))
TP_BTC = IntendedOrder(BTC, TP, "SELL", Decimal("0.010"), Decimal("70000.0"))


def cid(kind: ProtectiveKind, generation: int, instrument: str = BTC, owner: Owner = OWNER) -> str:
    return protective_client_order_id(owner, instrument, kind, generation)


def venue_order(intent: IntendedOrder, generation: int, **changes: object) -> OpenOrder:
    order = OpenOrder(
        client_order_id=cid(intent.kind, generation, intent.instrument_id),
        instrument_id=intent.instrument_id,
        side=intent.side,
        order_type="STOP_MARKET" if intent.kind is SL else "TAKE_PROFIT_MARKET",
        quantity=intent.quantity,
        trigger_price=intent.trigger_price,
        reduce_only=True,
        venue_order_id=f"algo-{generation}",
    )
    return replace(order, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    name: str
    intents: tuple[IntendedOrder, ...]
    open_orders: tuple[OpenOrder, ...]
    ledger: dict[tuple[str, ProtectiveKind], LedgerEntry]
    cached: dict[str, str]
    relinked: tuple[str, ...]
    placed: tuple[tuple[str, bool, str | None], ...]  # (cid, new_generation, cached_status)
    cancelled: tuple[tuple[str, CancelReason], ...]


def entry(intent: IntendedOrder, generation: int) -> LedgerEntry:
    return LedgerEntry(generation, intent.fingerprint)


CASES = [
    Case(
        "fresh position: both placed at generation 1, ledger written first",
        (SL_BTC, TP_BTC),
        (),
        {},
        {},
        relinked=(),
        placed=((cid(SL, 1), True, None), (cid(TP, 1), True, None)),
        cancelled=(),
    ),
    Case(
        "plain restart: both at the venue, re-linked, nothing sent",
        (SL_BTC, TP_BTC),
        (venue_order(SL_BTC, 3), venue_order(TP_BTC, 1)),
        {SL_BTC.key: entry(SL_BTC, 3), TP_BTC.key: entry(TP_BTC, 1)},
        {cid(SL, 3): "ACCEPTED", cid(TP, 1): "ACCEPTED"},
        relinked=(cid(SL, 3), cid(TP, 1)),
        placed=(),
        cancelled=(),
    ),
    Case(
        "venue formats quantity and price differently: still the same order",
        (SL_BTC,),
        (venue_order(SL_BTC, 1, quantity=Decimal("0.01"), trigger_price=Decimal("60000")),),
        {SL_BTC.key: entry(SL_BTC, 1)},
        {},
        relinked=(cid(SL, 1),),
        placed=(),
        cancelled=(),
    ),
    Case(
        "crash before the request reached the venue: same id again, cache record resolved first",
        (SL_BTC,),
        (),
        {SL_BTC.key: entry(SL_BTC, 2)},
        {cid(SL, 2): "SUBMITTED", cid(SL, 1): "CANCELED"},
        relinked=(),
        placed=((cid(SL, 2), False, "SUBMITTED"),),
        cancelled=(),
    ),
    Case(
        "crash right after the ledger write (cache lost the order): same id, nothing to resolve",
        (SL_BTC,),
        (),
        {SL_BTC.key: entry(SL_BTC, 2)},
        {},
        relinked=(),
        placed=((cid(SL, 2), False, None),),
        cancelled=(),
    ),
    Case(
        "crash right after the venue's ACK (cache still SUBMITTED): the venue has it, re-linked",
        (SL_BTC,),
        (venue_order(SL_BTC, 2),),
        {SL_BTC.key: entry(SL_BTC, 2)},
        {cid(SL, 2): "SUBMITTED"},
        relinked=(cid(SL, 2),),
        placed=(),
        cancelled=(),
    ),
    Case(
        "our earlier attempt was rejected (or denied): the same id may be used again",
        (SL_BTC,),
        (),
        {SL_BTC.key: entry(SL_BTC, 1)},
        {cid(SL, 1): "REJECTED"},
        relinked=(),
        placed=((cid(SL, 1), False, "REJECTED"),),
        cancelled=(),
    ),
    Case(
        "the stop was cancelled at the venue while down: a new generation, never a known id",
        (SL_BTC,),
        (),
        {SL_BTC.key: entry(SL_BTC, 1)},
        {cid(SL, 1): "CANCELED"},
        relinked=(),
        placed=((cid(SL, 2), True, None),),
        cancelled=(),
    ),
    Case(
        "position grew while down: new intent, new generation, old stop cancelled after",
        (replace(SL_BTC, quantity=Decimal("0.020")),),
        (venue_order(SL_BTC, 1),),
        {SL_BTC.key: entry(SL_BTC, 1)},
        {cid(SL, 1): "ACCEPTED"},
        relinked=(),
        placed=((cid(SL, 2), True, None),),
        cancelled=((cid(SL, 1), CancelReason.SUPERSEDED),),
    ),
    Case(
        "crash after the ledger moved to the new intent, before its submit: reuse it, cancel the old one",
        (replace(SL_BTC, trigger_price=Decimal("61000")),),
        (venue_order(SL_BTC, 4),),
        {SL_BTC.key: entry(replace(SL_BTC, trigger_price=Decimal("61000")), 5)},
        {cid(SL, 4): "ACCEPTED"},
        relinked=(),
        placed=((cid(SL, 5), False, None),),
        cancelled=((cid(SL, 4), CancelReason.SUPERSEDED),),
    ),
    Case(
        "lost ledger and cache (Redis flushed): the venue's stop is recognised by its id and kept",
        (SL_BTC,),
        (venue_order(SL_BTC, 7),),
        {},
        {},
        relinked=(cid(SL, 7),),
        placed=(),
        cancelled=(),
    ),
    Case(
        "lost ledger, venue stop at another price: the next generation above the venue's",
        (SL_BTC,),
        (venue_order(SL_BTC, 7, trigger_price=Decimal("59000")),),
        {},
        {},
        relinked=(),
        placed=((cid(SL, 8), True, None),),
        cancelled=((cid(SL, 7), CancelReason.SUPERSEDED),),
    ),
    Case(
        "generation above every id the cache knows, even one the ledger never recorded",
        (SL_BTC,),
        (),
        {SL_BTC.key: LedgerEntry(2, "old")},
        {cid(SL, 2): "FILLED", cid(SL, 6): "EXPIRED"},
        relinked=(),
        placed=((cid(SL, 7), True, None),),
        cancelled=(),
    ),
    Case(
        "position closed while down: its remaining protective orders are orphans",
        (),
        (venue_order(SL_BTC, 1), venue_order(TP_BTC, 1)),
        {SL_BTC.key: entry(SL_BTC, 1)},
        {},
        relinked=(),
        placed=(),
        cancelled=((cid(SL, 1), CancelReason.ORPHAN), (cid(TP, 1), CancelReason.ORPHAN)),
    ),
    Case(
        "strategy no longer wants a take-profit: that kind is an orphan, the stop stays",
        (SL_BTC,),
        (venue_order(SL_BTC, 1), venue_order(TP_BTC, 2)),
        {},
        {},
        relinked=(cid(SL, 1),),
        placed=(),
        cancelled=((cid(TP, 2), CancelReason.ORPHAN),),
    ),
    Case(
        "two of ours match the same intent: keep the newest, cancel the other as a duplicate",
        (SL_BTC,),
        (venue_order(SL_BTC, 1), venue_order(SL_BTC, 2)),
        {},
        {},
        relinked=(cid(SL, 2),),
        placed=(),
        cancelled=((cid(SL, 1), CancelReason.DUPLICATE),),
    ),
    Case(
        "other traders', other strategies' and manual orders are never touched",
        (SL_BTC,),
        (
            venue_order(SL_BTC, 1, client_order_id=cid(SL, 1, owner=Owner("EMA-002", "EMACross-001"))),
            venue_order(SL_BTC, 1, client_order_id="manual-stop-1"),
            venue_order(SL_BTC, 1, client_order_id="O-20260101-000000-001-001-4"),
        ),
        {},
        {},
        relinked=(),
        placed=((cid(SL, 1), True, None),),
        cancelled=(),
    ),
    Case(
        "a stop that is not reduce-only, or closes the position, is not what we intend: replaced",
        (SL_BTC, TP_BTC),
        (venue_order(SL_BTC, 1, reduce_only=False), venue_order(TP_BTC, 1, close_position=True)),
        {},
        {},
        relinked=(),
        placed=((cid(SL, 2), True, None), (cid(TP, 2), True, None)),
        cancelled=((cid(SL, 1), CancelReason.SUPERSEDED), (cid(TP, 1), CancelReason.SUPERSEDED)),
    ),
    Case(
        "wrong side or wrong order type under our id: replaced",
        (SL_BTC, TP_BTC),
        (venue_order(SL_BTC, 1, side="BUY"), venue_order(TP_BTC, 1, order_type="LIMIT")),
        {},
        {},
        relinked=(),
        placed=((cid(SL, 2), True, None), (cid(TP, 2), True, None)),
        cancelled=((cid(SL, 1), CancelReason.SUPERSEDED), (cid(TP, 1), CancelReason.SUPERSEDED)),
    ),
    Case(
        "nautilus' name for a take-profit (MARKET_IF_TOUCHED, from the cache) matches too",
        (TP_BTC,),
        (venue_order(TP_BTC, 1, order_type="MARKET_IF_TOUCHED"),),
        {},
        {},
        relinked=(cid(TP, 1),),
        placed=(),
        cancelled=(),
    ),
    Case(
        "two instruments are independent",
        (SL_BTC, replace(SL_BTC, instrument_id=ETH, trigger_price=Decimal("3000"))),
        (venue_order(SL_BTC, 1),),
        {},
        {},
        relinked=(cid(SL, 1),),
        placed=((cid(SL, 1, ETH), True, None),),
        cancelled=(),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan(case: Case) -> None:
    plan = plan_protective(OWNER, case.intents, case.open_orders, case.ledger, case.cached)
    assert tuple(r.order.client_order_id for r in plan.relinks) == case.relinked
    assert tuple((p.client_order_id, p.new_generation, p.cached_status) for p in plan.places) == case.placed
    assert tuple((c.order.client_order_id, c.reason) for c in plan.cancels) == case.cancelled
    # The ledger always records what was kept or placed, for the intent it was chosen for.
    for relink in plan.relinks:
        assert plan.ledger[relink.intended.key].fingerprint == relink.intended.fingerprint
    for place in plan.places:
        assert plan.ledger[place.intended.key] == LedgerEntry(place.generation, place.intended.fingerprint)
    # Never plan to submit an id the cache holds in a state that could not be resubmitted.
    for place in plan.places:
        assert place.cached_status in (None, "INITIALIZED", "SUBMITTED", "REJECTED", "DENIED")


def test_plan_is_idempotent_once_carried_out() -> None:
    """After the places are at the venue and the cancels gone, planning again changes nothing."""
    intents = (replace(SL_BTC, quantity=Decimal("0.020")), TP_BTC)
    first = plan_protective(OWNER, intents, (venue_order(SL_BTC, 1), venue_order(TP_BTC, 1)), {}, {})
    assert first.changes_venue
    now_open = [r.order for r in first.relinks] + [
        venue_order(p.intended, p.generation) for p in first.places
    ]
    cached = {o.client_order_id: "ACCEPTED" for o in now_open}
    second = plan_protective(OWNER, intents, now_open, first.ledger, cached)
    assert not second.changes_venue
    assert isinstance(second, ProtectivePlan)
    assert len(second.relinks) == 2


def test_fingerprint_ignores_formatting_but_not_values() -> None:
    assert (
        SL_BTC.fingerprint
        == replace(SL_BTC, quantity=Decimal("0.01"), trigger_price=Decimal("6E+4")).fingerprint
    )
    assert SL_BTC.fingerprint != replace(SL_BTC, trigger_price=Decimal("60000.1")).fingerprint
    assert SL_BTC.fingerprint != replace(SL_BTC, side="BUY").fingerprint
    assert SL_BTC.fingerprint != replace(SL_BTC, kind=TP).fingerprint


def test_two_intents_for_one_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="two intents"):
        plan_protective(OWNER, (SL_BTC, replace(SL_BTC, trigger_price=Decimal("1"))), (), {}, {})


def test_ledger_roundtrip_and_rejects_garbage() -> None:
    ledger = {SL_BTC.key: entry(SL_BTC, 3), TP_BTC.key: entry(TP_BTC, 1)}
    assert ledger_from_builtins(ledger_to_builtins(ledger)) == ledger
    with pytest.raises(ValueError, match="expected"):
        ledger_from_builtins({BTC: {"SL": ["3", "x"]}})
    with pytest.raises(ValueError):
        ledger_from_builtins({BTC: {"XX": [1, "x"]}})
