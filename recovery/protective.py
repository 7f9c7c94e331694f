"""Which protective orders to keep, place or cancel (pure).

Inputs are plain values: what the strategy intends for each open position (`IntendedOrder`), the orders open
at the venue (`OpenOrder`; conditional ones included), the generation ledger persisted before every submit
(`LedgerEntry`) and the status of every client order id the nautilus cache knows. The output is a
`ProtectivePlan`; `recovery.protective_exec` carries it out.

Rules:
- An open order of ours (by its derived client order id, `recovery.client_ids`) that matches the intent in
  side, quantity, trigger price and type is kept (re-linked). Nothing is placed for that intent.
- Otherwise the intent is placed. Its generation is the ledger's when the ledger records this very intent and
  that id has not ended at the venue (absent from the cache, or only INITIALIZED/SUBMITTED/REJECTED/DENIED
  there): a restart retries the same id and never doubles the stop. A changed intent, or an id that has
  ended (filled, cancelled, expired), gets a generation above every one seen, so an id the cache knows is
  never submitted again.
- Our other orders for that position and kind are cancelled after the placement ("superseded"), so the
  position is never left without its stop while the stop is replaced.
- Our orders for a position or kind with no intent are cancelled ("orphan").
- Orders that are not ours (another strategy's, manual ones) are never touched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from recovery.client_ids import (
    Owner,
    ProtectiveId,
    ProtectiveKind,
    owned_protective_id,
    protective_client_order_id,
)

# Cache statuses of an id that never became a live venue order: the same id may be submitted again once the
# cache record is resolved and purged (see `recovery.protective_exec`).
REUSABLE_STATUSES = frozenset({"INITIALIZED", "SUBMITTED", "REJECTED", "DENIED"})

# The venue's and nautilus' names for the conditional order type of each kind.
_ORDER_TYPES: dict[ProtectiveKind, frozenset[str]] = {
    ProtectiveKind.STOP_LOSS: frozenset({"STOP_MARKET"}),
    ProtectiveKind.TAKE_PROFIT: frozenset({"TAKE_PROFIT_MARKET", "MARKET_IF_TOUCHED"}),
}
NAUTILUS_ORDER_TYPE: dict[ProtectiveKind, str] = {
    ProtectiveKind.STOP_LOSS: "STOP_MARKET",
    ProtectiveKind.TAKE_PROFIT: "MARKET_IF_TOUCHED",
}


@dataclass(frozen=True, slots=True)
class ProtectiveIntent:
    """What a strategy declares for a position: the kind of order and where it triggers.

    Side (opposite to the position), quantity (the position's), reduce-only and the order type are derived;
    the strategy says only what it means. `trigger_type` is a nautilus TriggerType name: "DEFAULT" and
    "LAST_PRICE" trigger on the last price (Binance CONTRACT_PRICE), "MARK_PRICE" on the mark price.
    """

    kind: ProtectiveKind
    trigger_price: Decimal
    trigger_type: str = "DEFAULT"

    @classmethod
    def stop_loss(cls, trigger_price: object, trigger_type: str = "DEFAULT") -> ProtectiveIntent:
        return cls(ProtectiveKind.STOP_LOSS, Decimal(str(trigger_price)), trigger_type)

    @classmethod
    def take_profit(cls, trigger_price: object, trigger_type: str = "DEFAULT") -> ProtectiveIntent:
        return cls(ProtectiveKind.TAKE_PROFIT, Decimal(str(trigger_price)), trigger_type)


class CancelReason(enum.StrEnum):
    ORPHAN = "orphan"  # no open position (or no such kind intended) for it any more
    SUPERSEDED = "superseded"  # replaced by an order for the current intent
    DUPLICATE = "duplicate"  # a second order of ours matching the same intent


@dataclass(frozen=True, slots=True)
class IntendedOrder:
    """A protective order the strategy wants for one open position (reduce-only, quantity = position's)."""

    instrument_id: str
    kind: ProtectiveKind
    side: str  # "BUY" or "SELL": opposite to the position
    quantity: Decimal
    trigger_price: Decimal
    trigger_type: str = "DEFAULT"

    @property
    def key(self) -> tuple[str, ProtectiveKind]:
        return (self.instrument_id, self.kind)

    @property
    def fingerprint(self) -> str:
        """What identifies the intent across restarts: a new fingerprint means a new generation."""
        return "|".join(
            (
                self.side,
                _dec(self.quantity),
                _dec(self.trigger_price),
                NAUTILUS_ORDER_TYPE[self.kind],
                self.trigger_type,
            )
        )


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order open at the venue (or, in live trading, open or in flight in the cache)."""

    client_order_id: str
    instrument_id: str
    side: str
    order_type: str
    quantity: Decimal
    trigger_price: Decimal | None
    reduce_only: bool
    venue_order_id: str | None = None
    close_position: bool = False


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The generation last chosen for a position and kind, and the intent it was chosen for."""

    generation: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Relink:
    intended: IntendedOrder
    order: OpenOrder


@dataclass(frozen=True, slots=True)
class Place:
    intended: IntendedOrder
    client_order_id: str
    generation: int
    new_generation: bool  # the ledger must be written (and acknowledged) before the submit
    cached_status: str | None  # the cache's record of this id, which must be resolved before the submit


@dataclass(frozen=True, slots=True)
class Cancel:
    order: OpenOrder
    reason: CancelReason
    kind: ProtectiveKind


@dataclass(frozen=True, slots=True)
class ProtectivePlan:
    relinks: tuple[Relink, ...] = ()
    places: tuple[Place, ...] = ()
    cancels: tuple[Cancel, ...] = ()
    ledger: Mapping[tuple[str, ProtectiveKind], LedgerEntry] = field(default_factory=dict)

    @property
    def changes_venue(self) -> bool:
        return bool(self.places or self.cancels)


def plan_protective(
    owner: Owner,
    intents: Iterable[IntendedOrder],
    open_orders: Iterable[OpenOrder],
    ledger: Mapping[tuple[str, ProtectiveKind], LedgerEntry],
    cached_status: Mapping[str, str],
) -> ProtectivePlan:
    """Diff the intended protective orders against the open ones. See the module docstring for the rules."""
    ours: dict[tuple[str, ProtectiveKind], list[tuple[ProtectiveId, OpenOrder]]] = {}
    for order in open_orders:
        parsed = owned_protective_id(order.client_order_id, owner, order.instrument_id)
        if parsed is not None:
            ours.setdefault((order.instrument_id, parsed.kind), []).append((parsed, order))

    relinks: list[Relink] = []
    places: list[Place] = []
    cancels: list[Cancel] = []
    new_ledger = dict(ledger)
    seen_keys: set[tuple[str, ProtectiveKind]] = set()
    for intent in intents:
        if intent.key in seen_keys:
            raise ValueError(f"two intents for {intent.instrument_id} {intent.kind.name}")
        seen_keys.add(intent.key)
        existing = sorted(ours.pop(intent.key, []), key=lambda pair: pair[0].generation, reverse=True)
        matching = [pair for pair in existing if _matches(pair[1], intent)]
        if matching:
            kept_id, kept = matching[0]
            relinks.append(Relink(intent, kept))
            new_ledger[intent.key] = LedgerEntry(kept_id.generation, intent.fingerprint)
            for parsed, order in existing:
                if order is not kept:
                    reason = CancelReason.DUPLICATE if _matches(order, intent) else CancelReason.SUPERSEDED
                    cancels.append(Cancel(order, reason, parsed.kind))
            continue
        place = _place(owner, intent, ledger.get(intent.key), existing, cached_status)
        places.append(place)
        new_ledger[intent.key] = LedgerEntry(place.generation, intent.fingerprint)
        cancels.extend(Cancel(order, CancelReason.SUPERSEDED, parsed.kind) for parsed, order in existing)
    for pairs in ours.values():
        cancels.extend(Cancel(order, CancelReason.ORPHAN, parsed.kind) for parsed, order in pairs)
    return ProtectivePlan(tuple(relinks), tuple(places), tuple(cancels), new_ledger)


def _place(
    owner: Owner,
    intent: IntendedOrder,
    entry: LedgerEntry | None,
    existing: Sequence[tuple[ProtectiveId, OpenOrder]],
    cached_status: Mapping[str, str],
) -> Place:
    open_generations = {parsed.generation for parsed, _ in existing}
    if (
        entry is not None
        and entry.fingerprint == intent.fingerprint
        and entry.generation not in open_generations
    ):
        cid = protective_client_order_id(owner, intent.instrument_id, intent.kind, entry.generation)
        status = cached_status.get(cid)
        if status is None or status in REUSABLE_STATUSES:
            return Place(intent, cid, entry.generation, new_generation=False, cached_status=status)
    known = set(open_generations)
    if entry is not None:
        known.add(entry.generation)
    for cid in cached_status:
        parsed = owned_protective_id(cid, owner, intent.instrument_id)
        if parsed is not None and parsed.kind is intent.kind:
            known.add(parsed.generation)
    generation = max(known, default=0) + 1
    cid = protective_client_order_id(owner, intent.instrument_id, intent.kind, generation)
    return Place(intent, cid, generation, new_generation=True, cached_status=cached_status.get(cid))


def _matches(order: OpenOrder, intent: IntendedOrder) -> bool:
    return (
        order.side == intent.side
        and order.order_type in _ORDER_TYPES[intent.kind]
        and order.reduce_only
        and not order.close_position
        and order.quantity == intent.quantity
        and order.trigger_price is not None
        and order.trigger_price == intent.trigger_price
    )


def _dec(value: Decimal) -> str:
    # 0.010 and 0.01 are the same quantity; the fingerprint must not change with the venue's formatting.
    text = format(value.normalize(), "f")
    return text


def ledger_to_builtins(
    ledger: Mapping[tuple[str, ProtectiveKind], LedgerEntry],
) -> dict[str, dict[str, list[object]]]:
    """The ledger as JSON-ready builtins: {instrument: {kind: [generation, fingerprint]}}."""
    out: dict[str, dict[str, list[object]]] = {}
    for (instrument, kind), entry in sorted(ledger.items()):
        out.setdefault(instrument, {})[kind.value] = [entry.generation, entry.fingerprint]
    return out


def ledger_from_builtins(
    data: Mapping[str, Mapping[str, Sequence[object]]],
) -> dict[tuple[str, ProtectiveKind], LedgerEntry]:
    """Inverse of `ledger_to_builtins`; raises ValueError on anything malformed."""
    ledger: dict[tuple[str, ProtectiveKind], LedgerEntry] = {}
    for instrument, kinds in data.items():
        for kind, value in kinds.items():
            if len(value) != 2 or not isinstance(value[0], int) or not isinstance(value[1], str):
                raise ValueError(
                    f"ledger entry {instrument} {kind}: expected [generation, fingerprint], got {value!r}"
                )
            ledger[(instrument, ProtectiveKind(kind))] = LedgerEntry(value[0], value[1])
    return ledger
