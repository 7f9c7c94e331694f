"""The seed schema's readable position summary, kept beside nautilus' own cache:
`positions:{trader_id}:{venue}:{instrument_id}` -> hash of instrument_id, side, quantity, avg_entry_price,
unrealized_pnl, realized_pnl, ts_opened, ts_last_updated (strings; timestamps in ns).

Written on every position event and fully re-synced after reconciliation (events can be lost in a crash and
reconciliation's own events arrive before anything else runs); deleted when the position closes. One
writer task applies the changes in the order they happened, each bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from recovery.venue import side_of

log = logging.getLogger(__name__)

FIELDS = (
    "instrument_id",
    "side",
    "quantity",
    "avg_entry_price",
    "unrealized_pnl",
    "realized_pnl",
    "ts_opened",
    "ts_last_updated",
)


def hash_key(trader_id: str, venue: str, instrument_id: str) -> str:
    return f"positions:{trader_id}:{venue}:{instrument_id}"


@dataclass(frozen=True, kw_only=True)
class PositionPart:
    """One open nautilus position (several strategies may hold the same instrument)."""

    instrument_id: str
    signed_qty: Decimal
    avg_px_open: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    ts_opened: int
    ts_last: int


@dataclass(frozen=True, kw_only=True)
class PositionRecord:
    instrument_id: str
    side: str
    quantity: Decimal
    avg_entry_price: Decimal
    unrealized_pnl: Decimal | None  # None: not known (no price yet)
    realized_pnl: Decimal
    ts_opened: int
    ts_last_updated: int

    def fields(self) -> dict[str, str]:
        return {
            "instrument_id": self.instrument_id,
            "side": self.side,
            "quantity": _text(self.quantity),
            "avg_entry_price": _text(self.avg_entry_price),
            "unrealized_pnl": "" if self.unrealized_pnl is None else _text(self.unrealized_pnl),
            "realized_pnl": _text(self.realized_pnl),
            "ts_opened": str(self.ts_opened),
            "ts_last_updated": str(self.ts_last_updated),
        }


def _text(value: Decimal) -> str:
    """Plain notation ("60000", never "6E+4")."""
    return format(value, "f")


def aggregate(instrument_id: str, parts: Iterable[PositionPart]) -> PositionRecord | None:
    """The instrument's net position, or None when flat (the hash is then deleted). The entry price is the
    quantity-weighted average of the parts on the net side."""
    parts = [p for p in parts if p.instrument_id == instrument_id and p.signed_qty != 0]
    net = sum((p.signed_qty for p in parts), Decimal(0))
    if net == 0:
        return None
    side = side_of(net)
    same_side = [p for p in parts if side_of(p.signed_qty) == side]
    if len(same_side) == 1:
        avg = same_side[0].avg_px_open
    else:
        weight = sum((abs(p.signed_qty) for p in same_side), Decimal(0))
        avg = sum((abs(p.signed_qty) * p.avg_px_open for p in same_side), Decimal(0)) / weight
    unrealized = (
        None
        if any(p.unrealized_pnl is None for p in parts)
        else sum((p.unrealized_pnl or Decimal(0) for p in parts), Decimal(0))
    )
    return PositionRecord(
        instrument_id=instrument_id,
        side=side,
        quantity=abs(net),
        avg_entry_price=avg,
        unrealized_pnl=unrealized,
        realized_pnl=sum((p.realized_pnl for p in parts), Decimal(0)),
        ts_opened=min(p.ts_opened for p in parts),
        ts_last_updated=max(p.ts_last for p in parts),
    )


@dataclass(frozen=True)
class _Put:
    record: PositionRecord


@dataclass(frozen=True)
class _Delete:
    instrument_id: str


@dataclass(frozen=True)
class _Sync:
    records: tuple[PositionRecord, ...]


_Change = _Put | _Delete | _Sync


class PositionsHash:
    """Owns the writes to `positions:{trader_id}:{venue}:*`. `update`/`sync` may be called from synchronous
    nautilus handlers (on the loop); the writer task applies them in order."""

    def __init__(self, *, redis: Any, trader_id: str, venue: str, timeout_s: float) -> None:
        self._redis = redis
        self._trader_id = trader_id
        self._venue = venue
        self._timeout_s = timeout_s
        self._queue: asyncio.Queue[_Change] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def key(self, instrument_id: str) -> str:
        return hash_key(self._trader_id, self._venue, instrument_id)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"positions-hash[{self._trader_id}]"
        )

    def update(self, instrument_id: str, record: PositionRecord | None) -> None:
        self._queue.put_nowait(_Put(record) if record is not None else _Delete(instrument_id))

    def sync(self, records: Iterable[PositionRecord]) -> None:
        self._queue.put_nowait(_Sync(tuple(records)))

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queued change is written (bounded); True when drained."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout_s: float = 2.0) -> None:
        if self._task is None:
            return
        await self.drain(timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            change = await self._queue.get()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._apply(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a readable summary: log and go on, nautilus' cache is the truth
                self.failures += 1
                log.warning("positions hash: %s failed: %s", type(change).__name__.strip("_"), exc)
            finally:
                self._queue.task_done()

    async def _apply(self, change: _Change) -> None:
        if isinstance(change, _Put):
            await self._redis.hset(self.key(change.record.instrument_id), mapping=change.record.fields())
        elif isinstance(change, _Delete):
            await self._redis.delete(self.key(change.instrument_id))
        else:
            wanted = {self.key(r.instrument_id): r for r in change.records}
            stale = [
                k.decode() if isinstance(k, bytes) else k
                async for k in self._redis.scan_iter(match=hash_key(self._trader_id, self._venue, "*"))
            ]
            pipe = self._redis.pipeline(transaction=True)
            for key in stale:
                if key not in wanted:
                    pipe.delete(key)
            for key, record in wanted.items():
                pipe.delete(key)  # fields of an older shape must not linger
                pipe.hset(key, mapping=record.fields())
            await pipe.execute()
