"""Carry out a `ProtectivePlan` against the venue, through the strategy, idempotently.

Order of effects, chosen so that a crash at any point converges to exactly one order per intent:
1. the ledger (generations) is written and acknowledged before any submit;
2. an id the cache still holds as INITIALIZED/SUBMITTED (a crash before the request reached the venue) is
   resolved locally (denied/rejected), then purged, so the SAME id can be submitted again; nautilus corrupts
   the cache if an id it already knows is submitted (research 0.4), so that is checked again right before;
3. places, each awaited until the venue accepted or rejected it;
4. cancels last (superseded stops go only once their replacement is accepted; orphans any time).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from recovery.client_ids import ProtectiveKind
from recovery.journal import DurableJournal
from recovery.order_watch import (
    ACCEPTED_OR_BEYOND,
    ENDED,
    SETTLED_AFTER_CANCEL,
    SETTLED_AFTER_SUBMIT,
    OrderWatcher,
)
from recovery.pacing import SubmitPacer
from recovery.protective import (
    NAUTILUS_ORDER_TYPE,
    Cancel,
    CancelReason,
    LedgerEntry,
    Place,
    ProtectivePlan,
    ledger_from_builtins,
    ledger_to_builtins,
)
from recovery.strategy_errors import StateDecodeError
from supervisor.status.shapes import ActionKind, RecoveryAction

log = logging.getLogger(__name__)

UNSENT = frozenset({"INITIALIZED", "SUBMITTED"})
RESUBMITTABLE = frozenset({"REJECTED", "DENIED"})
_CONCURRENCY = 8


class _Room(enum.Enum):
    FREE = "free"  # the cache does not know the id: submit it
    ALREADY_THERE = "already_there"  # the venue has it after all
    BLOCKED = "blocked"  # cannot be submitted now (reported as a failure)


class ProtectivePort(Protocol):
    """What the executor needs from the strategy (implemented by RecoverableStrategy)."""

    def order_status(self, client_order_id: str) -> str | None: ...
    def order_reason(self, client_order_id: str) -> str: ...
    def submit_protective(self, place: Place) -> None: ...
    def resolve_unsent(self, client_order_id: str) -> None: ...
    def purge_order(self, client_order_id: str) -> None: ...
    def cancel_protective(self, client_order_id: str) -> bool: ...
    def close_position_at_market(self, instrument_id: str) -> str | None: ...


@dataclass
class ExecutionResult:
    actions: list[RecoveryAction] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    # Positions closed at market because their stop/take-profit level was already crossed.
    closed: list[dict[str, str]] = field(default_factory=list)


class ProtectiveExecutor:
    def __init__(
        self,
        port: ProtectivePort,
        watcher: OrderWatcher,
        journal: DurableJournal,
        *,
        ledger_key: str,
        venue_of: Callable[[str], str],
        ack_timeout: float,
        close_when_crossed: bool = True,
        pacer: SubmitPacer | None = None,
    ) -> None:
        self._port = port
        self._watcher = watcher
        self._journal = journal
        self.ledger_key = ledger_key
        self._venue_of = venue_of
        self._ack_timeout = ack_timeout
        self._close_when_crossed = close_when_crossed
        self.ledger: dict[tuple[str, ProtectiveKind], LedgerEntry] = {}
        self._limit = asyncio.Semaphore(_CONCURRENCY)
        self._pacer = pacer

    def load_ledger(self, data: bytes | None, redis_key: str) -> None:
        """Restore the ledger persisted by an earlier run; undecodable is fatal, as for strategy state."""
        if data is None:
            self.ledger = {}
            return
        try:
            self.ledger = ledger_from_builtins(msgspec.json.decode(data))
        except (msgspec.DecodeError, ValueError, TypeError, AttributeError) as exc:
            raise StateDecodeError(redis_key, f"protective ledger: {exc}") from exc

    async def execute(self, plan: ProtectivePlan) -> ExecutionResult:
        result = ExecutionResult()
        for relink in plan.relinks:
            cid = relink.order.client_order_id
            status = self._port.order_status(cid)
            if status is None:
                result.failures.append(
                    f"{cid} is open at the venue but unknown to the cache after reconciliation"
                )
                continue
            result.actions.append(
                self._action(
                    ActionKind.PROTECTIVE_RELINKED,
                    relink.intended.instrument_id,
                    cid,
                    relink.intended.kind,
                    f"generation kept; cache {status}",
                )
            )
        if dict(plan.ledger) != self.ledger:
            # Before any submit: a crash after this write retries the same ids, never new ones.
            await self._journal.write(self.ledger_key, _encode_ledger(plan.ledger))
            self.ledger = dict(plan.ledger)
        placed = await asyncio.gather(*(self._place(p, result) for p in plan.places))
        replaced_ok = all(placed)
        for cancel in plan.cancels:
            if cancel.reason is not CancelReason.ORPHAN and not replaced_ok:
                # Keep the old stop while its replacement is not confirmed: never leave a position bare.
                result.failures.append(
                    f"kept {cancel.order.client_order_id}: its replacement was not confirmed"
                )
                continue
            await self._cancel(cancel, result)
        return result

    async def _place(self, place: Place, result: ExecutionResult) -> bool:
        cid = place.client_order_id
        async with self._limit:
            room = await self._clear_cached_record(place, result)
            if room is not _Room.FREE:
                return room is _Room.ALREADY_THERE
            if self._pacer is not None:
                await self._pacer.wait()
            self._port.submit_protective(place)
            try:
                status = await self._wait(cid, SETTLED_AFTER_SUBMIT)
            except TimeoutError:
                result.failures.append(f"{cid}: no answer from the venue within {self._ack_timeout:g}s")
                return False
        return await self._placed(place, status, result)

    async def _clear_cached_record(self, place: Place, result: ExecutionResult) -> _Room:
        """Make sure the cache does not know the id before it is submitted (research 0.4)."""
        cid = place.client_order_id
        status = self._port.order_status(cid)
        if status in UNSENT:
            # A crash before the request reached the venue: the venue does not list it (else the plan would
            # have re-linked it). Resolve the record so that the same id can be sent again.
            self._port.resolve_unsent(cid)
            try:
                status = await self._wait(cid, RESUBMITTABLE | ACCEPTED_OR_BEYOND)
            except TimeoutError:
                result.failures.append(f"{cid}: stale {status} record could not be resolved")
                return _Room.BLOCKED
            if status in ACCEPTED_OR_BEYOND:  # the venue's late answer won the race: it is there
                detail = f"late acknowledgement ({status})"
                result.actions.append(
                    self._action(
                        ActionKind.PROTECTIVE_RELINKED,
                        place.intended.instrument_id,
                        cid,
                        place.intended.kind,
                        detail,
                    )
                )
                return _Room.ALREADY_THERE
        if status in RESUBMITTABLE:
            self._port.purge_order(cid)
            status = self._port.order_status(cid)
        if status is not None:
            result.failures.append(f"{cid}: the cache still knows it ({status}); not submitted again")
            return _Room.BLOCKED
        return _Room.FREE

    async def _placed(self, place: Place, status: str, result: ExecutionResult) -> bool:
        cid = place.client_order_id
        instrument = place.intended.instrument_id
        if status in ACCEPTED_OR_BEYOND:
            detail = (
                f"generation {place.generation}; {place.intended.side} {place.intended.quantity} "
                f"trigger {place.intended.trigger_price}"
            )
            result.actions.append(
                self._action(ActionKind.PROTECTIVE_PLACED, instrument, cid, place.intended.kind, detail)
            )
            return True
        reason = self._port.order_reason(cid)
        if _is_duplicate(reason):
            result.actions.append(
                self._action(ActionKind.DUPLICATE_REJECTED, instrument, cid, place.intended.kind, reason)
            )
        elif self._close_when_crossed and _would_trigger(reason):
            # The price is already past the level (it moved while the order was missing): do what the order
            # would have done, close the position at market.
            return await self._close_crossed(place, reason, result)
        result.failures.append(f"{cid}: {status}: {reason}")
        return False

    async def _close_crossed(self, place: Place, reason: str, result: ExecutionResult) -> bool:
        instrument = place.intended.instrument_id
        close_cid = self._port.close_position_at_market(instrument)
        if close_cid is None:
            return True  # the position is already gone
        try:
            status = await self._wait(close_cid, ENDED)
        except TimeoutError:
            result.failures.append(f"{instrument}: market close {close_cid} not confirmed")
            return False
        if status != "FILLED":
            result.failures.append(
                f"{instrument}: market close {close_cid} {status}: {self._port.order_reason(close_cid)}"
            )
            return False
        result.closed.append(
            {
                "instrument": instrument,
                "client_order_id": close_cid,
                "because": f"{place.intended.kind.name} at {place.intended.trigger_price} already crossed",
                "venue_said": reason,
            }
        )
        return True

    async def _cancel(self, cancel: Cancel, result: ExecutionResult) -> None:
        cid = cancel.order.client_order_id
        if not self._port.cancel_protective(cid):
            result.failures.append(f"{cid}: open at the venue but not cancellable from the cache")
            return
        try:
            status = await self._wait(cid, SETTLED_AFTER_CANCEL)
        except TimeoutError:
            result.failures.append(f"{cid}: cancel not confirmed within {self._ack_timeout:g}s")
            return
        detail = f"{cancel.reason}; {status}"
        result.actions.append(
            self._action(
                ActionKind.PROTECTIVE_CANCELLED, cancel.order.instrument_id, cid, cancel.kind, detail
            )
        )

    async def _wait(self, cid: str, statuses: frozenset[str]) -> str:
        async with asyncio.timeout(self._ack_timeout):
            return await self._watcher.wait(cid, statuses)

    def _action(
        self, kind: ActionKind, instrument: str, cid: str, protective: ProtectiveKind, detail: str
    ) -> RecoveryAction:
        return RecoveryAction(
            action=kind.value,
            venue=self._venue_of(instrument),
            instrument=instrument,
            client_order_id=cid,
            order_type=NAUTILUS_ORDER_TYPE[protective],
            detail=detail,
        )


def _encode_ledger(ledger: Mapping[tuple[str, ProtectiveKind], LedgerEntry]) -> bytes:
    return msgspec.json.encode(ledger_to_builtins(ledger))


def _would_trigger(reason: str) -> bool:
    # Binance: -2021 "Order would immediately trigger." (the stop level is already crossed).
    return "-2021" in reason or "immediately trigger" in reason.lower()


def _is_duplicate(reason: str) -> bool:
    # Binance: -4116 "ClientOrderId is duplicated." (the venue already has this id among open orders).
    return "-4116" in reason or "duplicat" in reason.lower()
