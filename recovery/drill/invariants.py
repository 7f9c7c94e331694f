"""What must hold after every recovery, as pure functions of what the venue and the node's cache hold (plain
values in, violations with their evidence out). The drill reads the values (`observe.py`); the tests call
these with values they make.

- position: for every instrument the node trades or holds, the venue's net position equals the cache's;
- protective: an instrument that is flat at the venue has no open stop-loss/take-profit of the strategy's;
  an open position has exactly one of each kind the strategy uses for that instrument (a kind the venue has
  ever accepted for it), for the position's whole quantity on the closing side;
- duplicate_client_id: the venue accepted no client order id twice;
- fills: every order's fills in the cache (trade ids and quantities) are the venue's, and the cache holds no
  fill the venue never made (a triggered stop's fills belong to the stop);
- invented: reconciliation invented no order (a synthetic fill); an order another client of the account made
  while the node was down is the venue's, with its own trades, and is adopted as it is, not invented;
- state: the strategy restored the last acknowledged write of its state (the `state_seq` of its
  `state_restored` phase equals the record in Redis at the kill), and the key still holds that write unless
  the strategy wrote a newer one since;
- ready: the recovery ended READY.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from recovery.client_ids import parse_protective_id
from recovery.drill.fleet_copy import symbol_of
from recovery.drill.values import CachedState

POSITION = "position"
PROTECTIVE = "protective"
DUPLICATE = "duplicate_client_id"
FILLS = "fills"
INVENTED = "invented"
STATE = "state"
READY = "ready"
CHECKS = (POSITION, PROTECTIVE, DUPLICATE, FILLS, INVENTED, STATE, READY)


@dataclass(frozen=True, kw_only=True)
class Violation:
    check: str
    node: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "node": self.node, "message": self.message, "evidence": self.evidence}


@dataclass(frozen=True, kw_only=True)
class OpenProtective:
    """An open conditional order at the venue whose client id is a RecoverableStrategy protective id."""

    client_id: str
    symbol: str  # the venue's ("BTCUSDT")
    kind: str  # "SL" / "TP"
    side: str  # "BUY" / "SELL"
    quantity: Decimal


@dataclass(frozen=True, kw_only=True)
class VenueBook:
    """One account at the venue, limited to the node's symbols."""

    positions: dict[str, Decimal]  # symbol -> signed amount, non-zero only
    open_protective: tuple[OpenProtective, ...]
    fills: dict[str, tuple[tuple[str, Decimal], ...]]  # client order id -> (trade id, quantity), sorted
    accepted: dict[str, int]  # client order id -> times the venue accepted it


@dataclass(frozen=True, kw_only=True)
class StateRecord:
    """A strategy's state record in Redis (`trader-{id}:general:recovery:{strategy}:state`)."""

    seq: int
    fields: dict[str, Any]


def protective_of(algo: Mapping[str, Any]) -> OpenProtective | None:
    """An open algo order row of the emulator's admin API as an `OpenProtective` (None: not ours)."""
    client_id = str(algo.get("clientAlgoId", ""))
    parsed = parse_protective_id(client_id)
    if parsed is None:
        return None
    return OpenProtective(
        client_id=client_id,
        symbol=str(algo["symbol"]),
        kind=parsed.kind.value,
        side=str(algo["side"]),
        quantity=Decimal(str(algo["quantity"])),
    )


def kinds_used(accepted: Iterable[str], symbol: str) -> set[str]:
    """The protective kinds the venue has ever accepted for `symbol` on this account."""
    kinds = set()
    for client_id in accepted:
        parsed = parse_protective_id(client_id)
        if parsed is not None and parsed.symbol.removesuffix("-PERP") == symbol:
            kinds.add(parsed.kind.value)
    return kinds


def position_violations(
    node: str, instruments: Iterable[str], venue: VenueBook, cache: CachedState
) -> list[Violation]:
    net = cache.net()
    found = []
    for instrument in sorted(set(instruments) | set(net)):
        at_venue = venue.positions.get(symbol_of(instrument), Decimal(0))
        cached = net.get(instrument, Decimal(0))
        if at_venue != cached:
            found.append(
                Violation(
                    check=POSITION,
                    node=node,
                    message=f"{instrument}: the venue holds {at_venue}, the node's cache {cached}",
                    evidence={"instrument": instrument, "venue": str(at_venue), "cache": str(cached)},
                )
            )
    return found


def protective_violations(node: str, symbols: Iterable[str], venue: VenueBook) -> list[Violation]:
    found = []
    for symbol in sorted(set(symbols)):
        amount = venue.positions.get(symbol, Decimal(0))
        here = [p for p in venue.open_protective if p.symbol == symbol]
        evidence: dict[str, Any] = {
            "symbol": symbol,
            "position": str(amount),
            "open_protective": [
                {"client_id": p.client_id, "side": p.side, "quantity": str(p.quantity)} for p in here
            ],
        }
        if amount == 0:
            if here:
                ids = ", ".join(p.client_id for p in here)
                found.append(
                    Violation(
                        check=PROTECTIVE,
                        node=node,
                        message=f"{symbol} is flat, yet {ids} open",
                        evidence=evidence,
                    )
                )
            continue
        closing_side = "SELL" if amount > 0 else "BUY"
        for kind in sorted(kinds_used(venue.accepted, symbol) | {p.kind for p in here}):
            mine = [p for p in here if p.kind == kind]
            if len(mine) != 1:
                message = f"{symbol} position {amount}: {len(mine)} open {kind} orders, expected exactly one"
            elif mine[0].quantity != abs(amount) or mine[0].side != closing_side:
                order = mine[0]
                message = (
                    f"{symbol} position {amount}: {kind} {order.client_id} is {order.side} {order.quantity}, "
                    f"expected {closing_side} {abs(amount)}"
                )
            else:
                continue
            found.append(Violation(check=PROTECTIVE, node=node, message=message, evidence=evidence))
    return found


def duplicate_violations(node: str, venue: VenueBook) -> list[Violation]:
    return [
        Violation(
            check=DUPLICATE,
            node=node,
            message=f"client order id {client_id} accepted {count} times by the venue",
            evidence={"client_order_id": client_id, "accepted": count},
        )
        for client_id, count in sorted(venue.accepted.items())
        if count > 1
    ]


def fill_violations(node: str, venue: VenueBook, cache: CachedState) -> list[Violation]:
    found = []
    for client_id, fills in sorted(venue.fills.items()):
        order = cache.orders.get(client_id)
        cached = tuple(sorted((f.trade_id, f.qty) for f in order.fills)) if order is not None else None
        if cached != tuple(sorted(fills)):
            found.append(
                Violation(
                    check=FILLS,
                    node=node,
                    message=f"order {client_id}: cached fills {_fills(cached)}, the venue's {_fills(fills)}",
                    evidence={"client_order_id": client_id, "cache": _fills(cached), "venue": _fills(fills)},
                )
            )
    for client_id, order in sorted(cache.orders.items()):
        if order.fills and client_id not in venue.fills:
            cached = tuple(sorted((f.trade_id, f.qty) for f in order.fills))
            found.append(
                Violation(
                    check=FILLS,
                    node=node,
                    message=f"order {client_id}: the cache has fills {_fills(cached)} the venue never made",
                    evidence={"client_order_id": client_id, "cache": _fills(cached), "venue": []},
                )
            )
    return found


def _fills(fills: Iterable[tuple[str, Decimal]] | None) -> list[list[str]] | None:
    return None if fills is None else [[trade_id, str(qty)] for trade_id, qty in fills]


def invented_violations(node: str, cache: CachedState) -> list[Violation]:
    return [
        Violation(
            check=INVENTED,
            node=node,
            message=f"order {client_id} was invented by reconciliation ({'; '.join(reasons)})",
            evidence={
                "client_order_id": client_id,
                "reasons": reasons,
                "instrument": cache.orders[client_id].instrument_id,
            },
        )
        for client_id, reasons in sorted(cache.synthetic_orders().items())
    ]


def restored_states(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per strategy id, the `state_restored` detail of a recovery report."""
    for phase in report.get("phases") or ():
        if phase.get("phase") == "state_restored":
            strategies = (phase.get("detail") or {}).get("strategies") or {}
            return {str(k): dict(v) for k, v in strategies.items() if isinstance(v, dict)}
    return {}


def state_violations(
    node: str,
    at_kill: Mapping[str, StateRecord],
    restored: Mapping[str, Mapping[str, Any]],
    now: Mapping[str, StateRecord],
) -> list[Violation]:
    """`at_kill`/`now`: the strategies' records in Redis at the kill and after READY; `restored`: what each
    strategy's `state_restored` phase says it restored."""
    found = []
    for strategy, before in sorted(at_kill.items()):
        detail = restored.get(strategy)
        evidence: dict[str, Any] = {
            "strategy": strategy,
            "at_kill": {"seq": before.seq, "fields": before.fields},
            "restored": dict(detail) if detail is not None else None,
        }
        after = now.get(strategy)
        evidence["now"] = {"seq": after.seq, "fields": after.fields} if after is not None else None
        if detail is None:
            message = f"{strategy}: no state_restored phase in the recovery report"
        elif detail.get("state") != "loaded" or detail.get("state_seq") != before.seq:
            message = (
                f"{strategy}: restored state {detail.get('state')} seq {detail.get('state_seq')}, "
                f"but the last acknowledged write was seq {before.seq}"
            )
        elif after is None:
            message = f"{strategy}: the state record is gone from Redis"
        elif after.seq < before.seq or (after.seq == before.seq and after.fields != before.fields):
            message = (
                f"{strategy}: Redis holds seq {after.seq} with other fields than the last acknowledged write "
                f"(seq {before.seq})"
            )
        else:
            continue
        found.append(Violation(check=STATE, node=node, message=message, evidence=evidence))
    for strategy, detail in sorted(restored.items()):
        if strategy not in at_kill and detail.get("state") == "loaded":
            found.append(
                Violation(
                    check=STATE,
                    node=node,
                    message=f"{strategy}: restored state seq {detail.get('state_seq')}, but none was written",
                    evidence={"strategy": strategy, "at_kill": None, "restored": dict(detail)},
                )
            )
    return found


def ready_violations(node: str, report: Mapping[str, Any]) -> list[Violation]:
    if report.get("result") == "ready":
        return []
    return [
        Violation(
            check=READY,
            node=node,
            message=f"recovery ended {report.get('result')}: {report.get('error') or 'no error given'}",
            evidence={
                "attempt": report.get("attempt"),
                "reason": report.get("reason"),
                "error": report.get("error"),
                "phases": [p.get("phase") for p in report.get("phases") or ()],
            },
        )
    ]


def book_violations(
    node: str,
    instruments: Iterable[str],
    venue: VenueBook,
    cache: CachedState,
) -> list[Violation]:
    """Every check that compares the venue with the cache (the ones that may need a moment to settle)."""
    instruments = tuple(instruments)
    return [
        *position_violations(node, instruments, venue, cache),
        *protective_violations(node, [symbol_of(i) for i in instruments], venue),
        *duplicate_violations(node, venue),
        *fill_violations(node, venue, cache),
        *invented_violations(node, cache),
    ]
